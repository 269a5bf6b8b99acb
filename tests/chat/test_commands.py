"""`/aistatus` parsing: what users type, what it means, and one clear line when it is wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog_file import load_catalog
from bot.chat.commands import (
    HELP_LINES,
    SEVERITY_FLAGS,
    USAGE,
    BadDuration,
    BadFlag,
    Command,
    ExtraArgument,
    MissingArgument,
    UnknownSurface,
    UnknownVerb,
    Verb,
    closest,
    complete,
    parse,
    resolve_surface,
)
from bot.core.duration import humanize, parse_duration
from bot.core.model import Status
from bot.errors import CommandError

CATALOG = load_catalog()
V = Verb

VALID = [
    ("", Command(V.STATUS)),
    ("status", Command(V.STATUS)),
    ("  STATUS  ", Command(V.STATUS)),
    ("status api", Command(V.STATUS, surfaces=("api",))),
    ("status Claude Code", Command(V.STATUS, surfaces=("code",))),
    ("status all", Command(V.STATUS)),
    ("api", Command(V.STATUS, surfaces=("api",))),
    ("claude", Command(V.STATUS, surfaces=("claude.ai",))),
    ("subscribe api", Command(V.SUBSCRIBE, surfaces=("api",))),
    ("Subscribe API, CODE", Command(V.SUBSCRIBE, surfaces=("api", "code"))),
    ("subscribe api,code,api", Command(V.SUBSCRIBE, surfaces=("api", "code"))),
    ("subscribe web cc", Command(V.SUBSCRIBE, surfaces=("claude.ai", "code"))),
    ("subscribe claude-ai claude-code", Command(V.SUBSCRIBE, surfaces=("claude.ai", "code"))),
    ("subscribe Claude Console", Command(V.SUBSCRIBE, surfaces=("console",))),
    ("subscribe all", Command(V.SUBSCRIBE, all_surfaces=True)),
    (
        "subscribe all --min partial --maintenance",
        Command(
            V.SUBSCRIBE, all_surfaces=True, min_severity=Status.PARTIAL_OUTAGE, maintenance=True
        ),
    ),
    (
        "subscribe api --min=major",
        Command(V.SUBSCRIBE, surfaces=("api",), min_severity=Status.MAJOR_OUTAGE),
    ),
    (
        "subscribe api —min degraded",
        Command(V.SUBSCRIBE, surfaces=("api",), min_severity=Status.DEGRADED),
    ),
    (
        "subscribe --MIN Partial api",
        Command(V.SUBSCRIBE, surfaces=("api",), min_severity=Status.PARTIAL_OUTAGE),
    ),
    ("unsubscribe code", Command(V.UNSUBSCRIBE, surfaces=("code",))),
    ("unsubscribe all", Command(V.UNSUBSCRIBE, all_surfaces=True)),
    ("list", Command(V.LIST)),
    ("mute 30m", Command(V.MUTE, duration=timedelta(minutes=30))),
    ("mute 2h", Command(V.MUTE, duration=timedelta(hours=2))),
    ("mute 1d", Command(V.MUTE, duration=timedelta(days=1))),
    ("mute 1h30m", Command(V.MUTE, duration=timedelta(minutes=90))),
    ("mute 1h 30m", Command(V.MUTE, duration=timedelta(minutes=90))),
    ("mute 2 hours", Command(V.MUTE, duration=timedelta(hours=2))),
    ("mute for 45min", Command(V.MUTE, duration=timedelta(minutes=45))),
    ("unmute", Command(V.UNMUTE)),
    ("report claude.ai", Command(V.REPORT, surfaces=("claude.ai",))),
    ("report Claude API", Command(V.REPORT, surfaces=("api",))),
    ("history", Command(V.HISTORY)),
    ("history code", Command(V.HISTORY, surfaces=("code",))),
    ("history --days 30", Command(V.HISTORY, days=30)),
    ("history api --days=90", Command(V.HISTORY, surfaces=("api",), days=90)),
    ("help", Command(V.HELP)),
    ("-h", Command(V.HELP)),
    ("--help", Command(V.HELP)),
    ("?", Command(V.HELP)),
    ("help mute", Command(V.HELP, topic=V.MUTE)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t or "<empty>" for t, _ in VALID])
def test_valid_commands_parse(text: str, expected: Command) -> None:
    assert parse(text, CATALOG) == expected


INVALID = [
    ("stauts", UnknownVerb, "Unknown command 'stauts'. Did you mean 'status'?", None),
    ("subscirbe api", UnknownVerb, "Did you mean 'subscribe'?", None),
    ("zzzz", UnknownVerb, "Try 'help'", None),
    (
        "status claud.ai",
        UnknownSurface,
        "Unknown surface 'claud.ai'. Did you mean 'claude.ai'?",
        V.STATUS,
    ),
    ("subscribe nope", UnknownSurface, "Unknown surface 'nope'", V.SUBSCRIBE),
    ("report apu", UnknownSurface, "Did you mean 'api'?", V.REPORT),
    ("subscribe", MissingArgument, "Say which surfaces", V.SUBSCRIBE),
    ("unsubscribe", MissingArgument, "Say which surfaces", V.UNSUBSCRIBE),
    ("subscribe api --min", MissingArgument, "'--min' needs a value", V.SUBSCRIBE),
    ("subscribe api --min huge", BadFlag, "use degraded, partial or major", V.SUBSCRIBE),
    ("subscribe api --loud", BadFlag, "Unknown option '--loud'", V.SUBSCRIBE),
    ("subscribe api --maintenance=yes", BadFlag, "takes no value", V.SUBSCRIBE),
    ("subscribe all api", ExtraArgument, "not both", V.SUBSCRIBE),
    ("status --min major", BadFlag, "Unknown option '--min'", V.STATUS),
    ("mute", MissingArgument, "Say how long", V.MUTE),
    ("mute 2x", BadDuration, "'2x' is not a duration: try 30m, 2h or 1d", V.MUTE),
    ("mute 30", BadDuration, "is not a duration", V.MUTE),
    ("mute 30s", BadDuration, "too short", V.MUTE),
    ("mute 31d", BadDuration, "too long", V.MUTE),
    ("mute 99999999999999999999d", BadDuration, "too long", V.MUTE),
    ("report", MissingArgument, "Say which surface", V.REPORT),
    ("report api code", ExtraArgument, "one surface at a time", V.REPORT),
    ("report all", ExtraArgument, "one surface at a time", V.REPORT),
    ("history api code", ExtraArgument, "one surface", V.HISTORY),
    ("history --days 0", BadFlag, "from 1 to 90", V.HISTORY),
    ("history --days 91", BadFlag, "from 1 to 90", V.HISTORY),
    ("history --days ٣", BadFlag, "from 1 to 90", V.HISTORY),
    ("list everything", ExtraArgument, "takes nothing after it", V.LIST),
    ("unmute now", ExtraArgument, "takes nothing after it", V.UNMUTE),
    ("help me please", ExtraArgument, "one command at a time", V.HELP),
    ("help stauts", UnknownVerb, "Did you mean 'status'?", V.HELP),
]


@pytest.mark.parametrize(("text", "error", "says", "verb"), INVALID, ids=[t for t, *_ in INVALID])
def test_bad_commands_get_one_line_and_the_usage(
    text: str, error: type[CommandError], says: str, verb: Verb | None
) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text, CATALOG)
    err = caught.value
    assert type(err) is error
    assert says in err.user_message
    assert "\n" not in err.user_message
    if verb is None:
        assert "/aistatus" in err.usage and "help" in err.usage
    else:
        assert err.usage == USAGE[verb]


def test_a_long_unknown_word_is_shortened_in_the_answer() -> None:
    with pytest.raises(UnknownSurface) as caught:
        parse("status " + "x" * 500, CATALOG)
    assert len(caught.value.user_message) < 120


def test_every_verb_has_a_usage_line_and_help_covers_them_all() -> None:
    assert set(USAGE) == set(Verb)
    assert [u for u, _ in HELP_LINES] == [USAGE[v] for v in Verb]
    assert SEVERITY_FLAGS == {
        "degraded": Status.DEGRADED,
        "partial": Status.PARTIAL_OUTAGE,
        "major": Status.MAJOR_OUTAGE,
    }


# -- surfaces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "surface"),
    [
        ("api", "api"),
        ("API", "api"),
        ("Claude API", "api"),
        ("claude", "claude.ai"),
        ("Claude-AI", "claude.ai"),
        ("web", "claude.ai"),
        ("cc", "code"),
        ("claude-code", "code"),
        ("bedrock", "bedrock-claude"),
        ("`console`", "console"),
    ],
)
def test_surfaces_resolve_by_id_name_or_alias(name: str, surface: str) -> None:
    assert resolve_surface(name, CATALOG) == surface


def test_an_unknown_surface_names_the_closest_one() -> None:
    assert closest("claud", CATALOG) == "claude.ai"
    assert closest("apu", CATALOG) == "api", "an id wins a tie with the alias 'app'"
    assert closest("qqqqqq", CATALOG) is None
    with pytest.raises(UnknownSurface, match="Did you mean 'code'"):
        resolve_surface("cod", CATALOG)


def test_autocomplete_offers_ids_and_names_matching_the_prefix_first() -> None:
    assert complete("cl", CATALOG)[:3] == [
        ("claude.ai", "claude.ai"),
        ("api", "Claude API"),
        ("code", "Claude Code"),
    ]
    assert complete("bedr", CATALOG) == [("bedrock-claude", "Claude on Amazon Bedrock")]
    assert complete("cc", CATALOG)[0] == ("code", "Claude Code"), "by alias"
    assert complete("xyzzy", CATALOG) == []
    everything = complete("", CATALOG)
    assert [sid for sid, _ in everything] == list(CATALOG.surfaces)[:25]
    assert len(complete("", CATALOG, limit=3)) == 3


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=47, seconds=59), "47 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=2, minutes=13), "2 h 13 min"),
        (timedelta(days=3, hours=4, minutes=5), "3 d 4 h"),
        (timedelta(days=3), "3 d"),
        (timedelta(seconds=-5), "0 s"),
    ],
    ids=["seconds", "minutes", "whole-hours", "hours", "days", "whole-days", "negative"],
)
def test_humanize_is_compact(delta: timedelta, text: str) -> None:
    assert humanize(delta) == text


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("2 Days", timedelta(days=2)),
        ("1w", timedelta(days=7)),
        ("30d", timedelta(days=30)),
    ],
)
def test_parse_duration_reads_common_forms(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


# -- untrusted input -----------------------------------------------------------------------------

SOUP = st.sampled_from(
    [
        *[v.value for v in Verb],
        *CATALOG.surfaces,
        *[s.name for s in CATALOG.surfaces.values()],
        "all",
        "claude",
        "cc",
        "web",
        ",",
        "--min",
        "--min=partial",
        "—min",
        "-min",
        "--days",
        "--days=0",
        "--maintenance",
        "--maintenance=1",
        "degraded",
        "partial",
        "major",
        "for",
        "30m",
        "2h",
        "1d",
        "1h30m",
        "2",
        "hours",
        "0",
        "91",
        "-h",
        "?",
        "--",
        "-",
        "=",
        "",
    ]
)


def _only_command_or_command_error(text: str) -> None:
    try:
        result = parse(text, CATALOG)
    except CommandError as e:
        assert e.user_message and "\n" not in e.user_message
        return
    assert isinstance(result, Command)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_gives_a_command_or_a_command_error(text: str) -> None:
    _only_command_or_command_error(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(SOUP, max_size=8), st.sampled_from([" ", ", ", "  ", "\t"]))
def test_token_soups_give_a_command_or_a_command_error(words: list[str], sep: str) -> None:
    _only_command_or_command_error(sep.join(words))

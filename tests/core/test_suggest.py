"""Backups: only alternatives that are up now, same-model routes first, then catalog fit, then
stability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.catalog_file import load_catalog
from bot.core.model import Signal, Status, SurfaceState, Transition
from bot.core.suggest import (
    NO_BACKUPS_TEXT,
    no_backups_text,
    suggest,
    suggest_many,
    unchecked_many,
)
from tests.helpers import make_transition

CATALOG = load_catalog()
NOW = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)


def states(**status: Status) -> dict[str, SurfaceState]:
    """Every catalog surface operational, except the ones given another status."""
    return {
        sid: SurfaceState(surface=sid, status=status.get(sid, Status.OPERATIONAL))
        for sid in CATALOG.surfaces
    }


def flips(surface: str, count: int, *, hours_ago: float) -> list[Transition]:
    at = NOW - timedelta(hours=hours_ago)
    up, down = Status.OPERATIONAL, Status.PARTIAL_OUTAGE
    return [
        make_transition(
            surface,
            version=i,
            status=down if i % 2 == 0 else up,
            prev=up if i % 2 == 0 else down,
            source=Signal.PROBE,
            outage_id=f"{surface}-{i // 2}",
            incident=None,
            at=at,
        )
        for i in range(count)
    ]


def ids(backups: tuple) -> list[str]:
    return [b.surface for b in backups]


def test_same_model_routes_come_first_then_other_assistants_in_catalog_order() -> None:
    got = suggest("claude.ai", states(), CATALOG, now=NOW)
    assert ids(got) == ["console", "code", "api", "bedrock-claude", "vertex-claude"]
    assert all(b.same_model for b in got)
    more = suggest("claude.ai", states(), CATALOG, now=NOW, limit=10)
    assert ids(more)[5:] == ["chatgpt", "gemini", "perplexity", "copilot", "deepl"]
    assert not any(b.same_model for b in more[5:])


def test_a_backup_carries_the_catalog_name_url_and_note() -> None:
    first = suggest("api", states(), CATALOG, now=NOW)[0]
    assert first.surface == "bedrock-claude"
    assert first.name == "Claude on Amazon Bedrock"
    assert first.url == "https://console.aws.amazon.com/bedrock"
    assert first.note == "same models via Amazon Bedrock"
    assert first.status is Status.OPERATIONAL
    assert first.backs_up == ("api",)


@pytest.mark.parametrize(
    "status",
    [
        Status.DEGRADED,
        Status.PARTIAL_OUTAGE,
        Status.MAJOR_OUTAGE,
        Status.MAINTENANCE,
        Status.UNKNOWN,
    ],
    ids=["degraded", "partial", "major", "maintenance", "unknown"],
)
def test_an_alternative_that_is_not_operational_is_never_recommended(status: Status) -> None:
    got = suggest("api", states(**{"bedrock-claude": status}), CATALOG, now=NOW)
    assert "bedrock-claude" not in ids(got)
    assert ids(got)[0] == "vertex-claude"


def test_an_alternative_never_observed_is_left_out() -> None:
    live = states()
    del live["vertex-claude"]
    assert "vertex-claude" not in ids(suggest("api", live, CATALOG, now=NOW))


def test_nothing_up_means_no_backups() -> None:
    down = {sid: Status.MAJOR_OUTAGE for sid in CATALOG.surfaces}
    assert suggest("claude.ai", states(**down), CATALOG, now=NOW) == ()
    assert suggest("claude.ai", {}, CATALOG, now=NOW) == ()


def test_a_surface_without_alternatives_has_no_backups() -> None:
    assert suggest("no-such-surface", states(), CATALOG, now=NOW) == ()


@pytest.mark.parametrize("surface", ["chatgpt", "gemini", "perplexity", "deepl"])
def test_a_backup_assistant_that_is_down_gets_claude_as_its_backup(surface: str) -> None:
    got = suggest(surface, states(**{surface: Status.MAJOR_OUTAGE}), CATALOG, now=NOW)
    assert ids(got)[0] == "claude.ai", "Claude surfaces that are up come first"
    assert got[0].same_model


def test_every_backup_tool_has_backups_itself() -> None:
    for sid, spec in CATALOG.surfaces.items():
        assert spec.alternatives, f"{sid} has no alternatives"


def test_unknown_alternatives_are_named_as_unchecked_not_as_down() -> None:
    live = states(chatgpt=Status.MAJOR_OUTAGE, **{"claude.ai": Status.MAJOR_OUTAGE})
    live["gemini"] = SurfaceState("gemini")  # never observed: unknown
    del live["perplexity"]  # not stored at all
    live["console"] = SurfaceState("console", status=Status.PARTIAL_OUTAGE)
    live["copilot"] = SurfaceState("copilot", status=Status.DEGRADED)
    assert suggest("chatgpt", live, CATALOG, now=NOW) == ()
    unchecked = unchecked_many(["chatgpt"], live, CATALOG)
    assert ids(unchecked) == ["gemini", "perplexity"]
    assert all(b.status is Status.UNKNOWN for b in unchecked)
    assert no_backups_text(unchecked) == (
        "No backup we could check is up right now (couldn't check: Gemini, Perplexity)."
    )
    assert no_backups_text(()) == NO_BACKUPS_TEXT


def test_a_long_unchecked_list_names_five_and_counts_the_rest() -> None:
    every = unchecked_many(["claude.ai", "api", "code"], {}, CATALOG, limit=50)
    assert len(every) > 5
    text = no_backups_text(every)
    assert text.endswith(f" and {len(every) - 5} more).")
    assert text.count(", ") == 4


def test_grouped_suggestions_exclude_every_affected_surface_and_appear_once() -> None:
    affected = ["claude.ai", "api", "code", "cowork"]
    got = suggest_many(affected, states(), CATALOG, now=NOW, limit=20)
    assert not set(ids(got)) & set(affected)
    assert len(ids(got)) == len(set(ids(got)))
    assert ids(got)[:3] == ["console", "bedrock-claude", "vertex-claude"]
    bedrock = got[1]
    assert bedrock.backs_up == ("claude.ai", "api", "code")
    assert bedrock.note == "same models via Amazon Bedrock", "the note of its best fit"


def test_among_equal_fit_the_steadier_backup_ranks_higher() -> None:
    # claude.ai lists console first and code lists api first: both fit 0 for the group.
    calm = suggest_many(["claude.ai", "code"], states(), CATALOG, now=NOW)
    assert ids(calm)[:2] == ["console", "api"]
    flappy = {"console": flips("console", 4, hours_ago=3)}
    shaken = suggest_many(["claude.ai", "code"], states(), CATALOG, now=NOW, history=flappy)
    assert ids(shaken)[:2] == ["api", "console"]


def test_transitions_older_than_a_day_do_not_count_against_stability() -> None:
    old = {"console": flips("console", 4, hours_ago=30)}
    got = suggest_many(["claude.ai", "code"], states(), CATALOG, now=NOW, history=old)
    assert ids(got)[:2] == ["console", "api"]


def test_stability_never_beats_a_better_fit() -> None:
    flappy = {"bedrock-claude": flips("bedrock-claude", 10, hours_ago=1)}
    got = suggest("api", states(), CATALOG, now=NOW, history=flappy)
    assert ids(got)[0] == "bedrock-claude"


def test_limit_caps_the_list() -> None:
    assert len(suggest("claude.ai", states(), CATALOG, now=NOW, limit=2)) == 2
    assert suggest("claude.ai", states(), CATALOG, now=NOW, limit=0) == ()

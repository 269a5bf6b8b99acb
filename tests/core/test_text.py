"""The shared text rules: the one status-page normaliser (rule by rule, and as a property over
untrusted input), the one word-boundary cut, and the one clock format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.text import (
    ELLIPSIS,
    Token,
    channel_token,
    clock,
    localise,
    normalise,
    plain,
    shorten,
    stamp,
)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param(
            "Details: <https://status.example/x>",
            "Details: <https://status.example/x>",
            id="autolink",
        ),
        pytest.param(
            "error rate < 5% > baseline", "error rate < 5% > baseline", id="comparison-kept"
        ),
        pytest.param(
            "error rate &lt; 5% &gt; baseline", "error rate < 5% > baseline", id="entities"
        ),
        pytest.param("&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>", id="escaped-tag-is-text"),
        pytest.param('<a href="https://x.y">the post</a>', "the post", id="link-text-kept"),
        pytest.param("<ul><li>one</li><li>two</li></ul>", "- one\n- two", id="list-items"),
        pytest.param("a\r\n\r\n\r\n\r\nb\rc", "a\n\nb\nc", id="line-ends"),
        pytest.param("  tabs\tand\u00a0 spaces  ", "tabs and spaces", id="spaces"),
        pytest.param("bell\x07 and nul\x00", "bell and nul", id="control-characters"),
    ],
)
def test_status_page_text_is_normalised_once_to_plain_text(raw: str, text: str) -> None:
    assert normalise(raw) == text


@given(st.text())
def test_any_input_becomes_tidy_text(raw: str) -> None:
    text = normalise(raw)
    assert not any(ord(c) < 32 and c != "\n" for c in text)
    assert "\n\n\n" not in text and text == text.strip()


_WORD = st.text(
    st.characters(exclude_characters="<&", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
)


@given(st.lists(_WORD, min_size=1))
def test_plain_words_pass_unchanged(words: list[str]) -> None:
    text = " ".join(words)
    assert normalise(text) == text


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_a_shortened_text_fits_its_limit_and_says_it_was_cut(text: str, limit: int) -> None:
    cut = shorten(text, limit)
    assert len(cut) <= limit
    assert cut == text or cut.endswith(ELLIPSIS)


def test_a_long_text_is_cut_between_words() -> None:
    text = "We are investigating elevated errors on requests to Claude. " * 20
    cut = shorten(text, 100)
    assert cut == text[: text.rfind(" ", 0, 99)] + ELLIPSIS
    assert text[len(cut) - 1] == " "


NOW = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "now", "shown"),
    [
        pytest.param(datetime(2026, 11, 18, 14, 2, tzinfo=UTC), NOW, "14:02 UTC", id="same-day"),
        pytest.param(
            datetime(2026, 11, 8, 9, 5, tzinfo=UTC), NOW, "Nov 8 09:05 UTC", id="other-day"
        ),
        pytest.param(
            datetime(2026, 11, 18, 23, 30, tzinfo=timezone(timedelta(hours=10))),
            NOW,
            "13:30 UTC",
            id="offset-in-utc",
        ),
        pytest.param(
            datetime(2026, 11, 18, 14, 2, tzinfo=UTC), None, "Nov 18 14:02 UTC", id="no-now"
        ),
    ],
)
def test_times_read_in_utc_with_the_date_when_it_is_not_today(
    at: datetime, now: datetime | None, shown: str
) -> None:
    assert clock(at, now) == shown


def test_a_stamp_reads_as_its_utc_clock_where_no_platform_localises_it() -> None:
    now = datetime(2026, 9, 22, 10, 0, tzinfo=UTC)
    at = datetime(2026, 9, 22, 9, 2, tzinfo=UTC)
    text = f"since {stamp(at, now)}, in {channel_token('C1')}"
    assert plain(text) == "since 09:02 UTC, in #C1"
    seen: list[Token] = []
    assert localise(text, lambda t: seen.append(t) or "X") == "since X, in X"
    assert seen == [Token("time", "09:02 UTC", at=at), Token("channel", "#C1", channel="C1")]
    assert localise(stamp(at), lambda t: t.kind) == "dated"  # no `now`: the date is shown


def test_status_page_text_cannot_forge_a_token() -> None:
    forged = "\ue000c\ue001here\ue001#x\ue002 and \ue000t\ue0011\ue001a\ue002"
    assert localise(normalise(forged), lambda t: "TOKEN") == "chere#x and t1a"

"""The text rules every stage shares: status-page markup to plain text (`normalise`, applied once
where the text enters), the one word-boundary cut (`shorten`) and the one clock format (`clock`).
Pure: strings and datetimes in, strings out; no clock reads.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

ELLIPSIS = "…"

_BREAK_TAGS = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|h[1-6]|tr|blockquote|pre))\s*>", re.I)
_LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.I)
# Only real HTML tag names are stripped: `a < b` and Markdown autolinks `<https://...>` survive.
_TAG = re.compile(
    r"<\s*/?\s*(?:a|abbr|b|blockquote|br|code|del|div|em|h[1-6]|hr|i|img|ins|li|ol|p|pre|s|small|"
    r"span|strike|strong|sub|sup|table|tbody|td|th|thead|tr|u|ul)\b[^<>]*>",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\ue002]")  # and token marks
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """Status-page text (an update body, an incident name) as plain text. Rules, in order:

    1. Line ends become `\\n`; `<br>` and the end of a block (`</p>`, `</div>`, ...) start a new
       line; `<li>` starts a `- ` line.
    2. Real HTML tags are dropped, their text kept (`<a href=..>the post</a>` -> `the post`).
       Anything else in angle brackets is text and stays: Markdown autolinks
       `<https://status.example/x>`, comparisons `error rate < 5% > baseline`.
    3. Entities are decoded (`&lt;` -> `<`, `&amp;` -> `&`), after the tags are gone, so an
       escaped `&lt;b&gt;` reads as the text `<b>`.
    4. Control characters (and the private-use marks of tokens, below) are dropped, runs of
       spaces collapse, lines are trimmed, at most one blank line in a row. Markdown
       and Unicode (curly quotes, U+2236, emoji) stay as they are.

    The result is plain text, not safe markup: each renderer escapes it for its platform.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BREAK_TAGS.sub("\n", text)
    text = _LIST_ITEM.sub("\n- ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut on a word boundary (when one is in the second
    half) and ended with an ellipsis when it is longer."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" \n,;:-") + ELLIPSIS


def clock(at: datetime, now: datetime | None = None) -> str:
    """`14:02 UTC` on `now`'s UTC day, else `Nov 8 14:02 UTC` (always with the date when there
    is no `now` to compare with)."""
    at_utc = at.astimezone(UTC)
    if now is not None and _same_day(at, now):
        return f"{at_utc:%H:%M} UTC"
    return f"{at_utc:%b} {at_utc.day} {at_utc:%H:%M} UTC"


def _same_day(at: datetime, now: datetime) -> bool:
    return at.astimezone(UTC).date() == now.astimezone(UTC).date()


# -- tokens: a time or a channel that each chat platform shows in its own form ---------------------
# A reply names a time as `stamp(at, now)` and a channel as `channel_token(id)`: the token keeps a
# plain fallback (`plain`: the web board, the JSON API, the console and notifications read it),
# and each chat renderer turns it into the reader's local time or a channel mention (`localise`).
# The delimiters are private-use characters; `normalise` drops them from status-page text, so no
# page can forge a token.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"
_TOKEN = re.compile(f"{_OPEN}([tdcv]){_SEP}([0-9A-Za-z]+){_SEP}([^{_OPEN}{_SEP}{_CLOSE}]*){_CLOSE}")
_TOKEN_CHARS = re.compile(f"[{_OPEN}{_SEP}{_CLOSE}]")


@dataclass(frozen=True, slots=True)
class Token:
    """One token found in a text. kind: `time` (same UTC day as the reply: a time is enough),
    `dated` (a date and a time), `channel`, or `verbatim` (status-page text, shown as written:
    a renderer escapes its markup); `at` for the first two, `channel` for the third."""

    kind: str
    fallback: str
    at: datetime | None = None
    channel: str | None = None


def stamp(at: datetime, now: datetime | None = None, *, fallback: str | None = None) -> str:
    """`clock(at, now)` ("14:02 UTC", "Nov 8 14:02 UTC") as a time token: Slack and Discord
    readers see their own time zone; everything else reads `fallback` (default: that clock)."""
    text = clock(at, now) if fallback is None else fallback
    kind = "t" if now is not None and _same_day(at, now) else "d"
    return f"{_OPEN}{kind}{_SEP}{int(at.timestamp())}{_SEP}{_TOKEN_CHARS.sub('', text)}{_CLOSE}"


def time_text(
    at: datetime, now: datetime | None = None, *, local: bool, fallback: str | None = None
) -> str:
    """`stamp(at, now)` when the text is for a chat reader (`local`), else the plain clock."""
    if local:
        return stamp(at, now, fallback=fallback)
    return clock(at, now) if fallback is None else fallback


def channel_token(channel: str, fallback: str | None = None) -> str:
    """A chat channel by its id: a mention on its platform (Slack shows its name), `#id` (or
    `fallback`) elsewhere. An id that is not alphanumeric is shown as its fallback only."""
    text = _TOKEN_CHARS.sub("", fallback if fallback is not None else f"#{channel}")
    if not re.fullmatch(r"[0-9A-Za-z]+", channel):
        return text
    return f"{_OPEN}c{_SEP}{channel}{_SEP}{text}{_CLOSE}"


def verbatim(text: str) -> str:
    """Status-page text (`normalise`d) in a reply, as a token: each chat renderer shows it as
    written, escaping what its markup would read (a page's `[text](url)` never becomes a masked
    link on Discord); everything else reads the text itself."""
    return f"{_OPEN}v{_SEP}0{_SEP}{_TOKEN_CHARS.sub('', text)}{_CLOSE}"


def localise(text: str, render: Callable[[Token], str]) -> str:
    """`text` with each token replaced by `render(token)` (a platform's local-time form)."""

    def one(m: re.Match[str]) -> str:
        kind, value, fallback = m.groups()
        if kind == "c":
            return render(Token("channel", fallback, channel=value))
        if kind == "v":
            return render(Token("verbatim", fallback))
        at = datetime.fromtimestamp(int(value), UTC)
        return render(Token("time" if kind == "t" else "dated", fallback, at=at))

    return _TOKEN.sub(one, text)


def plain(text: str) -> str:
    """`text` with every token as its plain fallback ("14:02 UTC", "#C123")."""
    return _TOKEN.sub(lambda m: m.group(3), text)

"""The text rules every stage shares: status-page markup to plain text (`normalise`, applied once
where the text enters), the one word-boundary cut (`shorten`) and the one clock format (`clock`).
Pure: strings and datetimes in, strings out; no clock reads.
"""

from __future__ import annotations

import html
import re
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
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
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
    4. Control characters are dropped, runs of spaces collapse, lines are trimmed, at most one
       blank line in a row. Markdown and Unicode (curly quotes, U+2236, emoji) stay as they are.

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
    if now is not None and at_utc.date() == now.astimezone(UTC).date():
        return f"{at_utc:%H:%M} UTC"
    return f"{at_utc:%b} {at_utc.day} {at_utc:%H:%M} UTC"

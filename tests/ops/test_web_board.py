"""The web board in a real headless Chromium (Debian's `chromium`), against the product replaying
the recorded incident: at each step the DOM shows the right states, the incident's latest
official text and the backups; screenshots (wide and phone width) are kept for people to look at.
Plus the page's own manners: escaping, language, viewport, refresh, landmarks."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.core.catalog import Catalog
from bot.core.model import Incident, Signal, SignalState, Status, SurfaceState
from bot.core.text import normalise
from bot.ops.board import build_board
from bot.ops.web import render_board
from tests.helpers import catalog_for
from tests.ops.conftest import (
    IDENTIFIED,
    INCIDENT,
    INVESTIGATING,
    OPERATIONAL,
    RECOVERED,
    TITLE,
    UPDATE,
    BoardRig,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEPT = Path(__file__).resolve().parents[2] / "bench" / "out"  # screenshots for the closing note
BROWSER_TIMEOUT = 90.0


@dataclass
class Dom(HTMLParser):
    """What a reader sees: each surface card's status, the headline, incidents and backups."""

    statuses: dict[str, str] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    _open: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-surface") and a.get("data-status"):
            self.statuses[str(a["data-surface"])] = str(a["data-status"])
        key = a.get("id") or (tag if tag in {"blockquote", "h3", "ol", "title"} else None)
        self._open.append(key or "")

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in {k for k in self._open if k}:
            self.texts.setdefault(key, []).append(data)

    def text(self, key: str) -> str:
        return " ".join(" ".join(self.texts.get(key, [])).split())


async def chromium(*args: str, profile: Path) -> bytes:
    """Run the browser once, with a profile of its own: no cached page (the board allows a
    5 s cache) is ever shown for a newer step."""
    assert CHROMIUM is not None
    profile = profile / str(len(list(profile.parent.glob(profile.name + "/*"))))
    profile.mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--hide-scrollbars", f"--user-data-dir={profile}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(BROWSER_TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return out


async def dom_of(url: str, profile: Path) -> Dom:
    dom = Dom()
    dom.feed((await chromium("--dump-dom", url, profile=profile)).decode())
    return dom


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (scripts/test installs Debian's `chromium` as root)",
)
async def test_the_web_board_in_a_browser_follows_the_incident(rig: BoardRig, tmp_path: Path):
    profile = tmp_path / "chromium-profile"
    url = rig.base + "/"

    await rig.play_until(OPERATIONAL)
    dom = await dom_of(url, profile)
    assert dom.text("title") == "Claude status — aistatus"
    assert dom.text("headline") == "All Claude surfaces are operational."
    for sid in ("claude.ai", "api", "code", "console", "cowork", "mobile"):
        assert dom.statuses[sid] == "operational", sid
    assert dom.statuses["gemini"] == "unknown"
    assert dom.text("incidents-h") == "Active incidents" and "No active incidents." in dom.text(
        "main"
    )
    assert "Backups up now" not in dom.text("main")
    assert dom.text("updated").startswith("Last update 00:45 UTC")

    await rig.play_until(INCIDENT)
    dom = await dom_of(url, profile)
    for sid in ("claude.ai", "api", "code", "cowork", "mobile"):
        assert dom.statuses[sid] == "partial_outage", sid
    assert dom.statuses["console"] == "operational"
    assert dom.text("h3") == TITLE
    assert dom.text("blockquote").startswith(INVESTIGATING)
    assert dom.text("ol").startswith("Claude Console — Console Workbench")
    assert "Claude on Amazon Bedrock" in dom.text("ol")
    assert "partial outage since 01:01 UTC" in dom.text("main")
    shots = []
    for name, size in (("web-board-wide.png", "1280,1000"), ("web-board-phone.png", "390,1600")):
        shot = tmp_path / name
        await chromium(f"--screenshot={shot}", f"--window-size={size}", url, profile=profile)
        assert shot.stat().st_size > 10_000, "a real picture, not a blank page"
        KEPT.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, KEPT / name)
        shots.append(KEPT / name)
    print("web board screenshots:", *shots)

    await rig.play_until(UPDATE)
    dom = await dom_of(url, profile)
    assert dom.text("blockquote") == IDENTIFIED
    assert dom.statuses["api"] == "partial_outage"

    await rig.play_until(RECOVERED)
    dom = await dom_of(url, profile)
    assert {dom.statuses[s] for s in ("claude.ai", "api", "code", "cowork", "mobile")} == {
        "operational"
    }
    assert "No active incidents." in dom.text("main") and not dom.text("blockquote")


# -- the page itself (pure) ------------------------------------------------------------------------

NOW = datetime(2026, 9, 22, 1, 5, tzinfo=UTC)


def _catalog() -> Catalog:
    return catalog_for("http://127.0.0.1:9")


def _hostile_states() -> dict[str, SurfaceState]:
    """A page's hostile text as the parser hands it on (`normalise`: tags it knows dropped,
    entities decoded, anything else kept as text for the renderers to escape)."""
    inc = Incident(
        "inc1",
        normalise("<script>alert(1)</script> & errors"),
        "investigating",
        "major",
        url='https://stspg.io/x"><script>',
        update_body=normalise("We see <b>errors</b> &amp; <img src=x onerror=alert(2)> timeouts"),
        update_status="investigating",
        update_at=NOW,
    )
    sig = {"official": SignalState(Status.MAJOR_OUTAGE, 1, Status.MAJOR_OUTAGE, NOW, inc)}
    api = SurfaceState(
        "api", Status.MAJOR_OUTAGE, Signal.OFFICIAL, incident=inc, since=NOW, signals=sig
    )
    return {"api": api}


def test_official_text_is_escaped_never_markup():
    html = render_board(build_board(_hostile_states(), _catalog(), now=NOW), now=NOW)
    assert "<script>" not in html and "onerror" not in html.replace("onerror=alert", "")
    assert (
        "<h3><a href=" in html
        and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; errors</a></h3>" in html
    )
    assert "We see errors &amp; timeouts" in html, "entities decoded by the parser, re-escaped"
    assert 'href="https://stspg.io/x&quot;&gt;&lt;script&gt;"' in html


def test_the_page_is_readable_by_people_and_phones():
    html = render_board(build_board(_hostile_states(), _catalog(), now=NOW), now=NOW, refresh_s=20)
    assert html.startswith('<!doctype html><html lang="en">')
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta http-equiv="refresh" content="20">' in html
    for landmark in ("<header>", '<main id="main">', "<footer", "<h1>", "<h2 "):
        assert landmark in html, landmark
    # The state is said in words next to the colour, and the symbol is hidden from readers.
    assert '<span class="sym" aria-hidden="true">✕</span> major outage' in html
    assert "<script" not in html.lower(), "no script at all: the refresh is a meta tag"


def test_a_blind_board_says_so_first():
    board = build_board(_hostile_states(), _catalog(), now=NOW, blind=True)
    html = render_board(board, now=NOW)
    assert html.index('role="alert">aistatus cannot reach the internet') < html.index("<main")

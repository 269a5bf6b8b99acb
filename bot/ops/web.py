"""The web board behind `GET /`: one server-rendered HTML page for a wall screen or a phone, built
from the board document; refreshes itself with a meta refresh, no script, no build step. Pure:
the Board and `now` in, an HTML string out; every text from outside is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from bot.core.duration import humanize
from bot.core.freshness import BLIND_TEXT
from bot.core.model import Backup, Status
from bot.core.suggest import NO_BACKUPS_TEXT
from bot.core.text import clock
from bot.ops.board import Board, IncidentView, SurfaceView

REFRESH_S = 30
API_PATH = "/api/v1/status"

# Status -> CSS class; the colour only repeats what the label and the symbol already say.
_TONE = {
    Status.OPERATIONAL: "ok",
    Status.MAINTENANCE: "maint",
    Status.DEGRADED: "warn",
    Status.PARTIAL_OUTAGE: "bad",
    Status.MAJOR_OUTAGE: "worst",
    Status.UNKNOWN: "unknown",
}
_SYMBOL = {  # text symbols, not emoji: they read the same in every font and screen reader
    Status.OPERATIONAL: "✓",
    Status.MAINTENANCE: "⚒",
    Status.DEGRADED: "!",
    Status.PARTIAL_OUTAGE: "!!",
    Status.MAJOR_OUTAGE: "✕",
    Status.UNKNOWN: "?",
}

_CSS = """
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#16181d;--muted:#4a5160;
--line:#d5d9e0;--ok:#14692d;--ok-bg:#e3f4e8;--warn:#7a4d00;--warn-bg:#fff1cc;--bad:#9a3412;
--bad-bg:#ffe4d5;--worst:#a0111f;--worst-bg:#fde2e4;--maint:#1e4e8c;--maint-bg:#e1ecfb;
--unknown:#464c57;--unknown-bg:#e8eaee;--link:#0b57d0}
@media (prefers-color-scheme:dark){:root{--bg:#111318;--card:#1b1e25;--fg:#eef0f4;
--muted:#b4bac6;--line:#343946;--ok:#7ee2a0;--ok-bg:#12301e;--warn:#ffd66b;--warn-bg:#3a2d08;
--bad:#ffb38a;--bad-bg:#3d1d0e;--worst:#ff9aa5;--worst-bg:#431218;--maint:#a9c8ff;
--maint-bg:#142640;--unknown:#c9ced8;--unknown-bg:#2a2e37;--link:#a8c7fa}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
a{color:var(--link)}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--card);padding:.5rem}
header,main,footer{max-width:72rem;margin:0 auto;padding:1rem}
header{padding-top:1.5rem;padding-bottom:0}
main{padding-top:0}
main>section:first-child h2{margin-top:.75rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:1.05rem;margin:0 0 .25rem}
.headline{font-size:1.25rem;font-weight:600;margin:.25rem 0}
.meta,.muted{color:var(--muted)}
.blind{border:2px solid var(--worst);background:var(--worst-bg);color:var(--fg);padding:.75rem 1rem;
border-radius:.5rem;font-weight:600}
.grid{list-style:none;padding:0;margin:0;display:grid;gap:.75rem;
grid-template-columns:repeat(auto-fill,minmax(min(100%,17rem),1fr))}
.card{background:var(--card);border:1px solid var(--line);border-left-width:.5rem;
border-radius:.5rem;padding:.75rem 1rem}
.card .name{font-weight:600;font-size:1.05rem}
.state{display:inline-block;margin:.25rem 0;padding:.1rem .5rem;border-radius:1rem;font-weight:600}
.sym{display:inline-block;min-width:1.2em;text-align:center}
.ok{border-left-color:var(--ok)}.ok .state{background:var(--ok-bg);color:var(--ok)}
.warn{border-left-color:var(--warn)}.warn .state{background:var(--warn-bg);color:var(--warn)}
.bad{border-left-color:var(--bad)}.bad .state{background:var(--bad-bg);color:var(--bad)}
.worst{border-left-color:var(--worst)}.worst .state{background:var(--worst-bg);color:var(--worst)}
.maint{border-left-color:var(--maint)}.maint .state{background:var(--maint-bg);color:var(--maint)}
.unknown{border-left-color:var(--unknown)}.unknown .state{background:var(--unknown-bg);
color:var(--unknown)}
.incident{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;
margin-bottom:.75rem}
blockquote{margin:.5rem 0;padding:.25rem 0 .25rem .75rem;border-left:3px solid var(--line)}
.backups{padding-left:1.25rem;margin:.25rem 0}
.backups li{margin:.2rem 0}
footer{font-size:.9rem}
@media (max-width:30rem){body{font-size:15px}h1{font-size:1.35rem}.headline{font-size:1.1rem}
header,main,footer{padding:.75rem}}
"""


def _time(at: datetime, now: datetime) -> str:
    return f'<time datetime="{escape(at.isoformat())}">{escape(clock(at, now))}</time>'


def _since(v: SurfaceView, now: datetime) -> str:
    if v.since is None:
        return '<span class="muted">no data yet</span>' if v.freshness.signal is None else ""
    return f"since {_time(v.since, now)} ({escape(humanize(now - v.since))} ago)"


def _backup_items(backups: Sequence[Backup]) -> str:
    if not backups:
        return f"<p>{escape(NO_BACKUPS_TEXT)}</p>"
    items = []
    for b in backups:
        name = escape(b.name)
        link = f'<a href="{escape(b.url)}">{name}</a>' if b.url else name
        note = f" — {escape(b.note)}" if b.note else ""
        items.append(f"<li>{link}{note}</li>")
    return f'<ol class="backups">{"".join(items)}</ol>'


def _card(v: SurfaceView, now: datetime) -> str:
    tone = _TONE[v.status]
    source = f"source: {escape(v.source.value)}" if v.source else ""
    stale = " · <strong>stale</strong>" if v.freshness.stale and v.freshness.signal else ""
    incident = (
        f'<div class="muted">Incident: {escape(v.incident.title)}</div>' if v.incident else ""
    )
    return (
        f'<li class="card {tone}" data-surface="{escape(v.id)}" data-status="{v.status.value}">'
        f'<div class="name">{escape(v.name)}</div>'
        f'<div class="state"><span class="sym" aria-hidden="true">{_SYMBOL[v.status]}</span> '
        f"{escape(v.label)}</div>"
        f'<div class="meta">{_since(v, now)}</div>'
        f'<div class="meta">{source}{stale}</div>{incident}</li>'
    )


def _incident(inc: IncidentView, names: dict[str, str], now: datetime) -> str:
    title = escape(inc.title)
    head = f'<a href="{escape(inc.url)}">{title}</a>' if inc.url else title
    affected = ", ".join(escape(names.get(s, s)) for s in inc.surfaces)
    update = ""
    if inc.update_text:
        at = f" at {_time(inc.update_at, now)}" if inc.update_at else ""
        label = escape(inc.update_status or "update")
        update = (
            f"<p>Latest official update ({label}){at}:</p>"
            f"<blockquote>{escape(inc.update_text)}</blockquote>"
        )
    return (
        f'<article class="incident" data-incident="{escape(inc.id)}">'
        f"<h3>{head}</h3>"
        f'<p class="meta">{escape(inc.status)} · impact {escape(inc.impact)} · '
        f"affects {affected}</p>{update}</article>"
    )


def render_board(board: Board, *, now: datetime, refresh_s: int = REFRESH_S) -> str:
    """The page: headline (blindness first), active incidents with their latest official text,
    the backups up now, every Claude surface, then the other tools; last update time."""
    names = {v.id: v.name for v in board.surfaces}
    claude = "".join(_card(v, now) for v in board.surfaces if v.claude)
    others = "".join(_card(v, now) for v in board.surfaces if not v.claude)
    blind = ""
    if board.monitoring_blind:
        blind = f'<p class="blind" role="alert">{escape(BLIND_TEXT)}</p>'
    if board.incidents:
        incidents = "".join(_incident(i, names, now) for i in board.incidents)
    else:
        incidents = "<p>No active incidents.</p>"
    troubled = any(v.claude and v.status.is_outage for v in board.surfaces)
    backups = (
        '<section aria-labelledby="backups-h"><h2 id="backups-h">Backups up now</h2>'
        f"{_backup_items(board.backups)}</section>"
        if troubled
        else ""
    )
    updated = (
        f"Last update {_time(board.updated_at, now)}"
        if board.updated_at
        else "No status has been read yet"
    )
    headline = "" if board.monitoring_blind else board.headline  # the alert box says it instead
    sources = "".join(
        f'<p class="{"meta" if s.answering else "blind"}" data-source="{escape(s.provider)}">'
        f"{escape(s.text)}</p>"
        for s in board.sources
        if s.provider == "claude" or not s.answering
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
        f"<title>Claude status — aistatus</title><style>{_CSS}</style></head><body>"
        '<a class="skip" href="#main">Skip to the board</a>'
        "<header><h1>Claude status</h1>"
        f'<p class="headline" id="headline">{escape(headline)}</p>'
        f'<p class="meta" id="updated">{updated} · refreshes every {int(refresh_s)} s</p>'
        f"{blind}{sources}</header>"
        '<main id="main">'
        '<section aria-labelledby="incidents-h"><h2 id="incidents-h">Active incidents</h2>'
        f"{incidents}</section>{backups}"
        '<section aria-labelledby="claude-h"><h2 id="claude-h">Claude</h2>'
        f'<ul class="grid">{claude}</ul></section>'
        '<section aria-labelledby="others-h"><h2 id="others-h">Other tools</h2>'
        f'<ul class="grid">{others}</ul></section>'
        "</main>"
        f'<footer class="meta"><p>Read-only board by aistatus · JSON: '
        f'<a href="{API_PATH}">{API_PATH}</a></p></footer>'
        "</body></html>"
    )

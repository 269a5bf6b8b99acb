"""What `aistatus status` shows: every surface decided once from one round of observations, the
terminal table and the exit code. Pure: observations and time in, rows, text and a code out."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.catalog import Catalog
from bot.core.duration import humanize
from bot.core.model import Observation, Status, SurfaceState
from bot.core.transitions import Policy, decide


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One surface's line of the table."""

    surface: str
    name: str
    claude: bool
    status: Status
    source: str
    suspected: bool
    since: datetime | None
    incident: str | None
    latency_ms: float | None
    detail: str
    state: SurfaceState | None = None  # the decided state behind the row (`status --json`)


def status_rows(
    catalog: Catalog, observations: Sequence[Observation], *, now: datetime
) -> list[StatusRow]:
    """Every surface of the catalog decided from `observations` alone, with no hysteresis (one
    poll has no history: Policy.immediate), in catalog order."""
    rows: list[StatusRow] = []
    for surface in catalog.surfaces.values():
        obs = [o for o in observations if o.surface == surface.id]
        d = decide(
            SurfaceState(surface.id),
            obs,
            provider=surface.provider,
            now=now,
            policy=Policy.immediate(),
        )
        probe = d.state.signals.get("probe")
        rows.append(
            StatusRow(
                surface=surface.id,
                name=surface.name,
                claude=surface.claude and surface.provider == "claude",
                status=d.verdict.status,
                source=d.verdict.source.value if d.verdict.source else "-",
                suspected=d.verdict.suspected,
                since=(d.verdict.incident.started_at if d.verdict.incident else None),
                incident=d.verdict.incident.name if d.verdict.incident else None,
                latency_ms=probe.latency_ms if probe else None,
                detail=d.verdict.reason,
                state=d.state,
            )
        )
    return rows


def exit_code(rows: Sequence[StatusRow]) -> int:
    """0 every Claude surface operational; 1 any is not; 2 nothing could be reached (blind)."""
    if rows and all(r.status is Status.UNKNOWN for r in rows):
        return 2
    claude = [r for r in rows if r.claude]
    if claude and all(r.status is Status.UNKNOWN for r in claude):
        return 2
    return 0 if all(r.status is Status.OPERATIONAL for r in claude) else 1


def _width(text: str) -> int:
    """Terminal columns: emoji and other wide characters take two, combining marks none."""
    cols = 0
    for i, ch in enumerate(text):
        if unicodedata.combining(ch) or ch == "\ufe0f":
            continue
        emoji_style = text[i + 1 : i + 2] == "\ufe0f"  # e.g. 🛠️: drawn wide when so selected
        cols += 2 if emoji_style or unicodedata.east_asian_width(ch) in {"W", "F"} else 1
    return cols


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(rows: Sequence[StatusRow], *, now: datetime) -> str:
    """Claude surfaces first, then backups; one line each with status, source, since, incident
    and probe latency; unknown rows say why."""
    header = ("SURFACE", "STATUS", "SOURCE", "SINCE", "LATENCY", "INCIDENT / NOTE")
    body: list[tuple[str, ...]] = []
    ordered = [r for r in rows if r.claude] + [r for r in rows if not r.claude]
    for r in ordered:
        status = f"{r.status.emoji} {r.status.label}" + (" (suspected)" if r.suspected else "")
        since = f"{humanize(now - r.since)} ago" if r.since else "-"
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        note = r.incident or (r.detail if r.status is not Status.OPERATIONAL else "")
        body.append((r.surface, status, r.source, since, latency, _cut(note, 60)))
    widths = [max(_width(x[i]) for x in [header, *body]) for i in range(len(header) - 1)]
    lines = []
    for cells in [header, *body]:
        left = "  ".join(_pad(c, w) for c, w in zip(cells[:-1], widths, strict=True))
        lines.append(f"{left}  {cells[-1]}".rstrip())
    return "\n".join(lines)

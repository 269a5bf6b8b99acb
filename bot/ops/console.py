"""The console sink: every recorded transition, and the alerts a channel would get, printed to a
terminal. IO (writes to a stream). The output of `aistatus demo`, and of `aistatus run` when no
chat platform is configured.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from bot.alerting.alert import alert_text, build_alerts
from bot.core.catalog import Catalog
from bot.core.model import SurfaceState, Transition


def transition_line(t: Transition, catalog: Catalog) -> str:
    """One line per transition: time, kind, surface, old -> new status, source, incident."""
    surface = catalog.name_of(t.surface)
    source = (t.source.value if t.source else "?") + (", suspected" if t.suspected else "")
    line = (
        f"{t.at:%Y-%m-%d %H:%M:%SZ}  {t.status.emoji} {t.kind.value.upper():8} {surface}: "
        f"{t.prev_status.label} -> {t.status.label}  [{t.reason.value}; {source}]"
    )
    if t.incident is not None:
        line += f'  "{t.incident.name}"'
    return line


@dataclass
class ConsoleSink:
    """Prints transitions, then the grouped alerts built from them (what a channel subscribed
    to every surface would read). `states` reads the live states for backup suggestions."""

    catalog: Catalog
    states: Callable[[], Awaitable[Mapping[str, SurfaceState]]]
    clock: Callable[[], datetime]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    alerts: bool = True

    async def publish(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            print(transition_line(t, self.catalog), file=self.out)
        if self.alerts:
            states = await self.states()
            for alert in build_alerts(transitions, states, self.catalog, now=self.clock()):
                body = alert_text(alert).replace("\n", "\n  │ ")
                print(f"  ┌─ alert ({alert.kind.value})\n  │ {body}\n  └─", file=self.out)
        self.out.flush()

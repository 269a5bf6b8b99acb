""" "Which route now?" behind `GET /api/v1/route?for=api`: the best way to reach Claude (or a
backup) right now, same-model routes first, for an LLM gateway or a CI job to fail over. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.chat.replies import state_label
from bot.core.catalog import Catalog
from bot.core.freshness import BLIND_TEXT
from bot.core.model import Backup, Status, SurfaceState
from bot.core.suggest import suggest
from bot.ops.board import VERSION

ITSELF_NOTE = "it is up"


@dataclass(frozen=True, slots=True)
class Route:
    """The answer: `use` is the surface id to send traffic to now (None: nothing is known up;
    keep your default); `routes` are every way known up, best first."""

    version: int
    surface: str  # the surface asked about (`for=`)
    status: Status
    label: str
    suspected: bool
    use: str | None
    reason: str
    routes: tuple[Backup, ...]
    monitoring_blind: bool


def route(
    surface: str,
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    blind: bool = False,
) -> Route:
    """Rules:

    1. The surface itself comes first while it is operational.
    2. Then its alternatives that are operational, as suggest ranks them: same-model routes
       (another Claude surface, Claude on Bedrock / Vertex) before other assistants.
    3. `use` is the first route; None when nothing is known up (unknown is "couldn't check",
       never "up").
    4. While monitoring is blind the answer says so first: every state may be old.
    Raises: KeyError for a surface the catalog does not know.
    """
    spec = catalog.surfaces[surface]
    state = states.get(surface) or SurfaceState(surface)
    itself: tuple[Backup, ...] = ()
    if state.status is Status.OPERATIONAL:
        itself = (
            Backup(surface, spec.name, spec.url, Status.OPERATIONAL, spec.claude, ITSELF_NOTE),
        )
    routes = (*itself, *suggest(surface, states, catalog, now=now))
    use = routes[0].surface if routes else None
    name = spec.name
    if itself:
        reason = f"{name} is operational."
    elif routes:
        reason = f"{name}: {state_label(state)}; {catalog.name_of(routes[0].surface)} is up."
    elif state.status is Status.UNKNOWN:
        reason = f"Couldn't check {name}, and no alternative is known up."
    else:
        reason = f"{name}: {state_label(state)}; no alternative is known up."
    return Route(
        version=VERSION,
        surface=surface,
        status=state.status,
        label=state_label(state),
        suspected=state.suspected,
        use=use,
        reason=f"{BLIND_TEXT} {reason}" if blind else reason,
        routes=routes,
        monitoring_blind=blind,
    )

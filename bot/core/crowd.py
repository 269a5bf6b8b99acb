"""Crowd reports (`/aistatus report <surface>`) turned into an observation of the CROWD signal.
Pure: reports and `now` in, an Observation out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.model import Observation, Signal, Status

if TYPE_CHECKING:
    from bot.settings import Settings

Report = tuple[str, str, float]  # (workspace, user, epoch seconds)


@dataclass(frozen=True, slots=True)
class CrowdThresholds:
    """When reports add up to a suspected outage: `users` distinct people from at least
    `workspaces` workspaces, or `users_one_workspace` people of one workspace, within `window_s`."""

    window_s: float = 600.0
    users: int = 3
    workspaces: int = 2
    users_one_workspace: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> CrowdThresholds:
        """The operator's AISTATUS_CROWD_* settings."""
        return cls(
            window_s=settings.crowd_window,
            users=settings.crowd_users,
            workspaces=settings.crowd_workspaces,
            users_one_workspace=settings.crowd_users_one_workspace,
        )


@dataclass(frozen=True, slots=True)
class CrowdCount:
    """Distinct reporters in the window: people (a user id counts per workspace), workspaces,
    and the most people any one workspace sent."""

    users: int
    workspaces: int
    most_in_one_workspace: int


def count(reports: Sequence[Report], now: datetime, window_s: float) -> CrowdCount:
    """Distinct reporters of the reports made after `now - window_s`."""
    cutoff = now.timestamp() - window_s
    people = {(ws, user) for ws, user, at in reports if at > cutoff}
    per_workspace: dict[str, int] = {}
    for ws, _user in people:
        per_workspace[ws] = per_workspace.get(ws, 0) + 1
    return CrowdCount(
        users=len(people),
        workspaces=len(per_workspace),
        most_in_one_workspace=max(per_workspace.values(), default=0),
    )


def crossed(c: CrowdCount, t: CrowdThresholds) -> bool:
    """Rules: 1) at least `users` people from at least `workspaces` workspaces, or
    2) at least `users_one_workspace` people of a single workspace."""
    spread = c.users >= t.users and c.workspaces >= t.workspaces
    one_place = c.most_in_one_workspace >= t.users_one_workspace
    return spread or one_place


def crowd_observation(
    surface: str, reports: Sequence[Report], now: datetime, t: CrowdThresholds
) -> Observation:
    """The CROWD signal's observation of `surface`: PARTIAL_OUTAGE once the reports in the window
    cross a threshold, else OPERATIONAL (crowd reports never say a surface is unknown)."""
    status = (
        Status.PARTIAL_OUTAGE if crossed(count(reports, now, t.window_s), t) else Status.OPERATIONAL
    )
    return Observation(
        surface=surface, signal=Signal.CROWD, status=status, observed_at=now, error=None
    )

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
    """When reports add up to a suspected outage, which reaches every subscribed channel: within
    `window_s`, people of at least `workspaces` workspaces, each workspace counting for at most
    `users_one_workspace` people, add up to `users`. One workspace alone never alerts other
    teams, and neither do a few accounts spread over two. `user_budget` / `workspace_budget`:
    reports one person / one workspace may make per window, across surfaces."""

    window_s: float = 600.0
    users: int = 6
    workspaces: int = 3
    users_one_workspace: int = 2
    user_budget: int = 3
    workspace_budget: int = 20

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
    per_workspace: tuple[int, ...] = ()  # people of each workspace, most first


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
        per_workspace=tuple(sorted(per_workspace.values(), reverse=True)),
    )


def crossed(c: CrowdCount, t: CrowdThresholds) -> bool:
    """Rules: 1) reports come from at least `workspaces` workspaces; 2) each workspace counts
    for at most `users_one_workspace` people; 3) the counted people reach `users`."""
    counted = sum(min(n, t.users_one_workspace) for n in c.per_workspace)
    return c.workspaces >= t.workspaces and counted >= t.users


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

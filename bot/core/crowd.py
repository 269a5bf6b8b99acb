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
    """When reports add up to a suspected outage, within `window_s`, and who is told:
    1. everyone: people of at least `workspaces` workspaces, each workspace counting for at most
       `users // workspaces` of its people, add up to `users`;
    2. else only the reporting workspaces that have `users_one_workspace` people reporting.
    A few accounts in one or two workspaces never reach a team that did not report.
    `user_budget` / `workspace_budget`: reports one person / one workspace may make per window,
    across surfaces."""

    window_s: float = 600.0
    users: int = 6
    workspaces: int = 3
    users_one_workspace: int = 3
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
    """The multi-workspace threshold (everyone is told). Rules: 1) reports come from at least
    `workspaces` workspaces; 2) each workspace counts for at most `users // workspaces` people;
    3) the counted people reach `users`."""
    cap = max(1, t.users // t.workspaces)
    counted = sum(min(n, cap) for n in c.per_workspace)
    return c.workspaces >= t.workspaces and counted >= t.users


def local_audience(reports: Sequence[Report], now: datetime, t: CrowdThresholds) -> tuple[str, ...]:
    """The workspaces with at least `users_one_workspace` people reporting in the window."""
    cutoff = now.timestamp() - t.window_s
    people: dict[str, set[str]] = {}
    for ws, user, at in reports:
        if at > cutoff:
            people.setdefault(ws, set()).add(user)
    return tuple(sorted(ws for ws, users in people.items() if len(users) >= t.users_one_workspace))


def crowd_observation(
    surface: str, reports: Sequence[Report], now: datetime, t: CrowdThresholds
) -> Observation:
    """The CROWD signal's observation of `surface`: PARTIAL_OUTAGE for everyone once the reports
    cross the multi-workspace threshold, PARTIAL_OUTAGE for the reporting workspaces (`audience`)
    past the one-workspace threshold, else OPERATIONAL (crowd reports never say unknown)."""
    audience: tuple[str, ...] = ()
    if crossed(count(reports, now, t.window_s), t):
        status = Status.PARTIAL_OUTAGE
    else:
        audience = local_audience(reports, now, t)
        status = Status.PARTIAL_OUTAGE if audience else Status.OPERATIONAL
    return Observation(
        surface=surface,
        signal=Signal.CROWD,
        status=status,
        observed_at=now,
        error=None,
        audience=audience,
    )

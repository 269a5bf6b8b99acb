"""Redis store of crowd reports: one report per user per surface per window, decayed by time.
IO; one round trip per call (crowd.lua). The threshold logic is the pure `bot.core.crowd`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from redis.asyncio import Redis

from bot.core.crowd import CrowdThresholds, Report, count, crowd_observation
from bot.core.model import Observation
from bot.store import keys

_LUA = resources.files("bot.store").joinpath("lua")


@dataclass(frozen=True, slots=True)
class CrowdReport:
    """The outcome of one report: whether it counted (False: this user already reported the
    surface in the window), the distinct people and workspaces in the window including it, and
    the CROWD observation those reports amount to."""

    recorded: bool
    users: int
    workspaces: int
    observation: Observation


class CrowdStore:
    """Crowd reports per surface in a sorted set (score = report time), under the surface's slot."""

    def __init__(self, redis: Redis, thresholds: CrowdThresholds | None = None) -> None:
        self._redis = redis
        self.thresholds = thresholds or CrowdThresholds()
        self._report = redis.register_script(_LUA.joinpath("crowd.lua").read_text("utf-8"))

    async def report(
        self,
        surface: str,
        workspace: str,
        user: str,
        now: datetime,
        *,
        thresholds: CrowdThresholds | None = None,
    ) -> CrowdReport:
        """Record `user`'s report of `surface` (once per window), drop reports older than the
        window, and return the counts and the resulting observation, in one round trip.
        `thresholds` overrides the store's own for this call."""
        t = thresholds or self.thresholds
        if not await self._within_budget(workspace, user, now, t):
            recorded, reports = False, await self.recent(surface, now, window_s=t.window_s)
        else:
            rows = await self._run(surface, workspace, user, now, t.window_s)
            recorded, reports = int(rows[0]) == 1, _reports(rows[1:])
        c = count(reports, now, t.window_s)
        return CrowdReport(
            recorded=recorded,
            users=c.users,
            workspaces=c.workspaces,
            observation=crowd_observation(surface, reports, now, t),
        )

    async def _within_budget(
        self, workspace: str, user: str, now: datetime, t: CrowdThresholds
    ) -> bool:
        """Count this report against the user's and the workspace's budget for the window (one
        round trip, one slot); False when either is spent. Guards against one account, or one
        workspace's bots, flooding reports across every surface."""
        bucket = int(now.timestamp() // t.window_s)
        ttl = max(1, math.ceil(t.window_s * 2))
        mine, theirs = (
            keys.crowd_budget(workspace, bucket, user),
            keys.crowd_budget(workspace, bucket),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(mine).expire(mine, ttl).incr(theirs).expire(theirs, ttl)
            n_user, _, n_workspace, _ = await pipe.execute()
        return int(n_user) <= t.user_budget and int(n_workspace) <= t.workspace_budget

    async def recent(
        self, surface: str, now: datetime, *, window_s: float | None = None
    ) -> list[Report]:
        """Reports of `surface` within the window before `now`, oldest first."""
        return (await self.recent_many([surface], now, window_s=window_s))[surface]

    async def recent_many(
        self, surfaces: Sequence[str], now: datetime, *, window_s: float | None = None
    ) -> dict[str, list[Report]]:
        """`recent` for several surfaces in one pipelined round trip."""
        if not surfaces:
            return {}
        window = self.thresholds.window_s if window_s is None else window_s
        cutoff = now.timestamp() - window
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in surfaces:
                pipe.zrangebyscore(keys.crowd(s), f"({cutoff!r}", "+inf", withscores=True)
            replies = await pipe.execute()
        return {
            s: [r for m, score in rows if (r := _report(m, score)) is not None]
            for s, rows in zip(surfaces, replies, strict=True)
        }

    async def _run(
        self, surface: str, workspace: str, user: str, now: datetime, window: float
    ) -> list[object]:
        return await self._report(
            keys=[keys.crowd(surface), keys.crowd_user(surface, workspace, user)],
            args=[
                f"{workspace}|{user}",
                repr(now.timestamp()),
                repr(float(window)),
                max(1, math.ceil(window)),
            ],
        )


def _reports(flat: Sequence[object]) -> list[Report]:
    out: list[Report] = []
    for i in range(0, len(flat) - 1, 2):
        r = _report(flat[i], flat[i + 1])
        if r is not None:
            out.append(r)
    return out


def _report(member: object, score: object) -> Report | None:
    text = member.decode("utf-8", "replace") if isinstance(member, bytes) else str(member)
    workspace, sep, user = text.partition("|")
    if not sep:
        return None
    try:
        at = float(score.decode() if isinstance(score, bytes) else score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (workspace, user, at)

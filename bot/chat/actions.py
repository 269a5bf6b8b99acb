"""The command layer: runs a parsed `/aistatus` command against the stores and answers with a
`Reply`; `handle` is the one place a command fails or is refused. Thin async IO glue between
`bot.chat.commands` (parsing), the stores and `bot.chat.replies`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.alerting.subscription import Subscription
from bot.chat import replies
from bot.chat.commands import USAGE, Command, Verb, parse
from bot.core.catalog import Catalog
from bot.core.crowd import CrowdThresholds, count
from bot.core.model import CommandContext, Observation, Reply, Status, SurfaceState, Transition
from bot.core.suggest import suggest, unchecked_many
from bot.errors import CommandError
from bot.store.crowd import CrowdStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore

log = logging.getLogger(__name__)

HISTORY_LIMIT = 1000  # transitions read per surface for `history` (the stored list is capped too)
_MANAGE_VERBS = frozenset({Verb.SUBSCRIBE, Verb.UNSUBSCRIBE, Verb.MUTE, Verb.UNMUTE})


@dataclass(frozen=True)
class Services:
    """Everything a command needs. `on_crowd` feeds a crowd observation into the watcher's normal
    assess/transition path (a crowd report never decides anything by itself)."""

    catalog: Catalog
    surfaces: SurfaceStore
    subscriptions: SubscriptionStore
    crowd: CrowdStore
    crowd_thresholds: CrowdThresholds
    on_crowd: Callable[[Observation], Awaitable[None]]
    providers: Mapping[str, Sequence[str]] = field(init=False)

    @classmethod
    def over(
        cls,
        redis: Redis,
        catalog: Catalog,
        *,
        on_crowd: Callable[[Observation], Awaitable[None]],
        thresholds: CrowdThresholds | None = None,
        surfaces: SurfaceStore | None = None,
    ) -> Services:
        """Every store on one Redis client (the composition root, tests and benchmarks)."""
        thresholds = thresholds or CrowdThresholds()
        return cls(
            catalog=catalog,
            surfaces=surfaces or SurfaceStore(redis),
            subscriptions=SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces()),
            crowd=CrowdStore(redis, thresholds),
            crowd_thresholds=thresholds,
            on_crowd=on_crowd,
        )

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", self.catalog.surfaces_by_provider())


async def handle(text: str, ctx: CommandContext, svc: Services) -> Reply:
    """Parse and run one `/aistatus` command (typed, or a button standing for one) and answer it.
    Every adapter (Slack, Discord) calls this and only renders the Reply. Rules:

    1. A CommandError, the user's mistake, from parsing (an unknown verb or surface, a bad
       duration or flag, a missing argument) or from running, is answered with its one-line
       message and the verb's usage.
    2. A verb that changes the channel's alerts (subscribe, unsubscribe, mute, unmute) from
       someone without Manage Channels (`ctx.can_manage`, resolved by the adapter) is refused
       with `replies.forbidden()` before it runs: nothing is read or written.
    3. Any other exception is our bug or outage: logged here with its traceback, answered with
       `replies.internal_error()`, which says nothing about it.
    4. It never raises: an adapter has no error path of its own.
    """
    try:
        cmd = parse(text, svc.catalog)
        if cmd.verb in _MANAGE_VERBS and not ctx.can_manage:
            log.info("refused %s in %s: no Manage Channels", cmd.verb, ctx.channel.key)
            return replies.forbidden()
        return await run(cmd, ctx, svc)
    except CommandError as e:
        return replies.error(e)
    except Exception:
        log.exception(
            "command %r in %s by %s failed", (text or "")[:100], ctx.channel.key, ctx.user_id
        )
        return replies.internal_error()


async def run(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    """Run a parsed command whose caller `handle` has let through.
    Raises: CommandError when the command cannot apply here."""
    match cmd.verb:
        case Verb.STATUS:
            return await _status(cmd, ctx, svc)
        case Verb.SUBSCRIBE:
            return await _subscribe(cmd, ctx, svc)
        case Verb.UNSUBSCRIBE:
            return await _unsubscribe(cmd, ctx, svc)
        case Verb.LIST:
            sub = await svc.subscriptions.get(ctx.channel)
            return replies.subscription_list(sub, svc.catalog, ctx.now)
        case Verb.MUTE:
            return await _mute(cmd, ctx, svc)
        case Verb.UNMUTE:
            sub = await svc.subscriptions.unmute(ctx.channel, now=ctx.now)
            return (
                replies.not_subscribed("unmute")
                if sub is None
                else replies.unmuted(user_name=ctx.user_name)
            )
        case Verb.REPORT:
            return await _report(cmd, ctx, svc)
        case Verb.HISTORY:
            return await _history(cmd, ctx, svc)
        case Verb.HELP:
            return replies.help(cmd.topic)
    raise CommandError(f"`{cmd.verb}` is not something I can do yet.")  # pragma: no cover


# -- verbs ----------------------------------------------------------------------------------------


async def _status(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    """From Redis only: one round trip for the board, two (concurrent) for surface details."""
    if not cmd.surfaces:
        states = await svc.surfaces.read_all(svc.providers)
        return replies.board(states, svc.catalog, ctx.now)
    window = svc.crowd_thresholds.window_s
    states, reports = await asyncio.gather(
        svc.surfaces.read_all(svc.providers),
        svc.crowd.recent_many(list(cmd.surfaces), ctx.now, window_s=window),
    )
    parts = []
    for s in cmd.surfaces:
        state = states.get(s) or SurfaceState(s)
        troubled = state.status.is_outage or state.status is Status.MAINTENANCE
        backups = suggest(s, states, svc.catalog, now=ctx.now) if troubled else None
        unchecked = unchecked_many([s], states, svc.catalog) if troubled and not backups else ()
        parts.append(
            replies.surface_detail(
                s,
                state,
                svc.catalog,
                ctx.now,
                count(reports.get(s, []), ctx.now, window).users,
                backups,
                window_min=_minutes(window),
                unchecked=unchecked,
            )
        )
    return replies.combine(parts)


async def _subscribe(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    if not cmd.surfaces and not cmd.all_surfaces:
        raise CommandError(
            "Say what to subscribe to, e.g. `all` or `claude.ai api`.",
            usage=USAGE[Verb.SUBSCRIBE],
        )
    store = svc.subscriptions
    before = await store.get(ctx.channel)
    sub = await store.subscribe(
        ctx.channel,
        cmd.surfaces,
        all_claude=cmd.all_surfaces,
        min_severity=cmd.min_severity,
        maintenance=True if cmd.maintenance else None,
        user=ctx.user_id,
        now=ctx.now,
    )
    if sub.disabled_reason is not None:
        # Someone just ran a command here, so the bot can reach this channel again.
        sub = await store.enable(ctx.channel, now=ctx.now) or sub
    known = before.surfaces if before is not None else frozenset()
    return replies.subscribed(
        sub,
        svc.catalog,
        user_name=ctx.user_name,
        added=[s for s in dict.fromkeys(cmd.surfaces) if s not in known],
        added_all=cmd.all_surfaces and not (before is not None and before.all_claude),
        changed=_content(before) != _content(sub),
    )


async def _unsubscribe(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    if not cmd.surfaces and not cmd.all_surfaces:
        raise CommandError(
            "Say what to unsubscribe from, e.g. `api` or `all`.",
            usage=USAGE[Verb.UNSUBSCRIBE],
        )
    store = svc.subscriptions
    before = await store.get(ctx.channel)
    after = await store.unsubscribe(
        ctx.channel,
        cmd.surfaces,
        all_claude=cmd.all_surfaces,
        now=ctx.now,
        everything=cmd.all_surfaces,  # `unsubscribe all`: stop every alert in this channel
    )
    had = before.surfaces if before is not None else frozenset()
    asked = had if cmd.all_surfaces else frozenset(cmd.surfaces)
    return replies.unsubscribed(
        after,
        svc.catalog,
        user_name=ctx.user_name,
        removed=sorted(had & asked),
        removed_all=before is not None and before.all_claude and cmd.all_surfaces,
    )


async def _mute(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    if cmd.duration is None or cmd.duration.total_seconds() <= 0:
        raise CommandError("Say for how long, e.g. `mute 2h`.", usage=USAGE[Verb.MUTE])
    until = ctx.now + cmd.duration
    sub = await svc.subscriptions.mute(ctx.channel, until, now=ctx.now)
    if sub is None:
        return replies.not_subscribed("mute")
    return replies.muted(until, ctx.now, user_name=ctx.user_name)


async def _report(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    if not cmd.surfaces:
        raise CommandError(
            "Say which surface is failing for you, e.g. `report claude.ai`.",
            usage=USAGE[Verb.REPORT],
        )
    t = svc.crowd_thresholds
    # Workspace ids of different platforms may collide: the platform is part of the identity.
    workspace = f"{ctx.channel.platform}:{ctx.channel.workspace}"
    parts = []
    for s in dict.fromkeys(cmd.surfaces):
        r = await svc.crowd.report(s, workspace, ctx.user_id, ctx.now, thresholds=t)
        if r.recorded:
            try:
                await svc.on_crowd(r.observation)
            except Exception:
                # The report is stored; the watcher reads it again on its next crowd pass.
                log.exception("feeding the crowd observation of %s to the watcher failed", s)
        parts.append(
            replies.reported(
                s,
                svc.catalog,
                users=r.users,
                workspaces=r.workspaces,
                recorded=r.recorded,
                crossed=r.observation.status.is_outage,
                window_min=_minutes(t.window_s),
            )
        )
    return replies.combine(parts)


async def _history(cmd: Command, ctx: CommandContext, svc: Services) -> Reply:
    shown = [
        s
        for s in (list(dict.fromkeys(cmd.surfaces)) or svc.catalog.claude_surfaces())
        if s in svc.catalog.surfaces
    ]
    states, *found = await asyncio.gather(
        svc.surfaces.read_all(svc.providers),
        *(
            svc.surfaces.history(svc.catalog.surfaces[s].provider, s, limit=HISTORY_LIMIT)
            for s in shown
        ),
    )
    transitions: dict[str, Sequence[Transition]] = dict(zip(shown, found, strict=True))
    seen = {s: st.first_seen for s, st in states.items()}
    if not cmd.surfaces:
        return replies.history(None, transitions, svc.catalog, cmd.days, ctx.now, first_seen=seen)
    return replies.combine(
        [
            replies.history(s, {s: transitions[s]}, svc.catalog, cmd.days, ctx.now, first_seen=seen)
            for s in shown
        ]
    )


# -- helpers --------------------------------------------------------------------------------------


def _content(sub: Subscription | None) -> tuple[object, ...] | None:
    """A subscription without its timestamp, to tell whether a change really changed anything."""
    if sub is None:
        return None
    return (sub.surfaces, sub.all_claude, sub.min_severity, sub.maintenance, sub.disabled_reason)


def _minutes(window_s: float) -> int:
    return max(1, round(window_s / 60))

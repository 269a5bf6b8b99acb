"""The handover rig, shared by tests/test_handover.py (which asserts what the channels got) and
bench/bench_handover.py (which prints how long the handover took): two real `aistatus run`
processes against one redis-server and the loopback Slack and Discord servers, N channels
subscribed to the Claude API (half on each platform), an outage on the loopback status page, and
one process stopped (SIGTERM) or killed (SIGKILL) mid fan-out. What each channel got is read
from the peers, every chat call with the time it arrived. IO.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from bot.clock import utcnow
from bot.core.model import ChannelRef, Platform
from bot.ops.statusserver import StatusServer
from bot.store.subscriptions import SubscriptionStore
from tests.helpers import (
    INVESTIGATING_PAGE,
    OPERATIONAL_PAGE,
    TOKEN,
    Running,
    aistatus_run,
    fixture_json,
    loopback_catalog,
    slack_run_env,
)
from tests.peers.discord_api import TOKEN as DISCORD_TOKEN
from tests.peers.discord_api import DiscordAPI
from tests.peers.slack_api import SlackApi

WORKSPACE = "T0001"
GUILD = "1100000000000000001"
READY = "watching "  # the line `aistatus run` logs once its delivery engine runs


def channels(n: int) -> list[ChannelRef]:
    """`n` channels, every other one on Discord."""
    out = []
    for i in range(n):
        if i % 2:
            out.append(ChannelRef(Platform.DISCORD, GUILD, str(1_200_000_000_000_000_000 + i)))
        else:
            out.append(ChannelRef(Platform.SLACK, WORKSPACE, f"C{i:05d}"))
    return out


@dataclass(frozen=True, slots=True)
class Handover:
    """What one run showed. Times are seconds from the signal; `calls` counts the message calls
    the peers received (repeats included), `shown` the messages the channels hold."""

    how: str  # SIGTERM or SIGKILL
    channels: int
    before: int  # message calls received before the signal
    lost: tuple[str, ...]  # channels that hold no alert
    duplicated: tuple[str, ...]  # channels that hold it more than once
    exited: float  # from the signal to the stopped process's exit
    to_next: float  # from the signal to the first message call after that exit (another's)
    longest_pause: float  # the longest gap between message calls from the signal on
    to_done: float  # from the signal to the last channel's first message
    stopped_code: int | None  # the stopped process's exit code (SIGKILL: -9)
    survivor_code: int | None  # the other's, stopped with SIGTERM at the end
    logs: str  # both processes' stderr


def _slack_posts(slack: SlackApi) -> list[tuple[float, str]]:
    """(arrival time, channel) of each top-level post Slack applied."""
    return [
        (c.at, str(c.params.get("channel")))
        for c in slack.accepted_to("chat.postMessage")
        if "thread_ts" not in c.params
    ]


def _discord_posts(discord: DiscordAPI) -> list[tuple[float, str]]:
    """(arrival time, channel) of each message post Discord applied (a nonce repeat too)."""
    out = []
    for c in discord.applied:
        parts = c.path.split("/")
        if c.method == "POST" and len(parts) == 4 and parts[1] == "channels":
            out.append((c.at, parts[2]))
    return out


def _shown(slack: SlackApi, discord: DiscordAPI, chans: Sequence[ChannelRef]) -> Counter[str]:
    """Messages each channel holds: Slack's applied posts, Discord's stored messages."""
    held: Counter[str] = Counter(ch for _, ch in _slack_posts(slack))
    for c in chans:
        if c.platform is Platform.DISCORD:
            held[c.channel] = len(discord.posted(c.channel))
    return held


def _gaps(times: Sequence[float], since: float, exited: float) -> tuple[float, float]:
    """(from `since` to the first time after `exited`, the longest gap from `since` on)."""
    after = sorted(t for t in times if t >= since)
    later = [t for t in after if t >= exited]
    if not later:
        return float("inf"), float("inf")
    points = [since, *after]
    return later[0] - since, max(b - a for a, b in itertools.pairwise(points))


async def run_handover(
    tmp_path: Path,
    redis_url: str,
    *,
    how: signal.Signals,
    n: int = 1000,
    at: float = 0.3,
    within: float = 60.0,
    standby: bool = True,
    extra: dict[str, str] | None = None,
) -> Handover:
    """Two `aistatus run` processes deliver one outage start to `n` channels; once `at` of the
    channels got it, the first process gets `how`; the other finishes, then gets SIGTERM.
    `standby`: the other runs from the start (replicas); False: it is started at the signal (a
    restart, its start-up included in the figures). `extra`: more settings for both.
    Raises: TimeoutError when the fan-out does not finish within `within` seconds."""
    redis = aioredis.Redis.from_url(redis_url)
    chans = channels(n)
    try:
        await redis.flushall()
        subs = SubscriptionStore(redis)
        now = utcnow()
        for c in chans:
            await subs.subscribe(c, ["api"], all_claude=False, user="U42", now=now)
    finally:
        await redis.aclose()
    loop = asyncio.get_running_loop()
    discord = await DiscordAPI().start()
    try:
        async with (
            StatusServer() as page,
            SlackApi(tokens={TOKEN: WORKSPACE}) as slack,
            contextlib.AsyncExitStack() as stack,
        ):
            page.set_summary(fixture_json(OPERATIONAL_PAGE))
            catalog = Path(loopback_catalog(tmp_path / "catalog.json", page.url))
            settings = {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "DISCORD_API_URL": discord.url,
                "AISTATUS_DELIVERY_PACING": "off",
                **(extra or {}),
            }

            async def start() -> Running:
                env = slack_run_env(slack.base_url, redis_url, catalog, **settings)
                return await stack.enter_async_context(aistatus_run(env, tmp_path))

            bots = [await start() for _ in range(1 + standby)]
            for bot in bots:
                await bot.err.wait_for(READY, within=30)
            page.set_summary(fixture_json(INVESTIGATING_PAGE))
            async with asyncio.timeout(within):
                await _until(slack, discord, lambda: _count(slack, discord) >= at * n)
                before = _count(slack, discord)
                bots[0].proc.send_signal(how)
                signalled = loop.time()
                exit_at: list[float] = []
                exit_code = asyncio.ensure_future(bots[0].proc.wait())
                exit_code.add_done_callback(lambda _: exit_at.append(loop.time()))
                if not standby:
                    bots.append(await start())
                survivor = bots[1]
                await _until(slack, discord, lambda: len(+_shown(slack, discord, chans)) >= n)
                stopped_code = await exit_code
                await survivor.stop()  # it finishes its calls in flight: a late repeat shows
            logs = "".join("".join(b.err.lines) for b in bots)
            shown = _shown(slack, discord, chans)
            times = [t for t, _ in _slack_posts(slack) + _discord_posts(discord)]
            to_next, longest = _gaps(times, signalled, exit_at[0])
            to_done = max(_first_times(slack, discord)) - signalled
    finally:
        await discord.close()
    return Handover(
        how=how.name,
        channels=n,
        before=before,
        lost=tuple(c.key for c in chans if shown[c.channel] == 0),
        duplicated=tuple(c.key for c in chans if shown[c.channel] > 1),
        exited=exit_at[0] - signalled,
        to_next=to_next,
        longest_pause=longest,
        to_done=to_done,
        stopped_code=stopped_code,
        survivor_code=survivor.proc.returncode,
        logs=logs,
    )


def _count(slack: SlackApi, discord: DiscordAPI) -> int:
    return len(_slack_posts(slack)) + len(_discord_posts(discord))


def _first_times(slack: SlackApi, discord: DiscordAPI) -> list[float]:
    """Each channel's first message call, by arrival time."""
    first: dict[str, float] = {}
    for t, ch in sorted(_slack_posts(slack) + _discord_posts(discord)):
        first.setdefault(ch, t)
    return list(first.values())


async def _until(slack: SlackApi, discord: DiscordAPI, done: object) -> None:
    """Wait until `done()` holds, woken by each call either peer applies (the caller bounds
    it)."""
    assert callable(done)
    while not done():
        discord.answered.clear()
        waiters = [
            asyncio.ensure_future(discord.answered.wait()),
            asyncio.ensure_future(slack.wait_until(done, within=0.2)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

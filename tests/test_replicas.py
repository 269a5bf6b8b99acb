"""Three `aistatus run` processes against one Redis, as an operator scales out: they share the
polling (slot claims), record each transition once (CAS) and deliver each alert to each channel
once (consumer groups) — counted at a loopback Slack Web API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.core.model import ChannelRef, Platform, TransitionKind
from bot.ops.demo import timeline
from bot.ops.redisproc import RedisProcess, free_port
from bot.ops.statusserver import StatusServer
from bot.store.connect import connect
from bot.store.outbox import OutboxStore, TransitionFeed
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from tests.chat.slack.test_slack_replay import C1, C2, THREADED, channel_calls, what
from tests.helpers import Output, claude_only, fixture_json
from tests.peers.chaos import Chaos
from tests.peers.slack_api import SlackApi

REPLICAS = 3
CHANNELS = [ChannelRef(Platform.SLACK, "T0001", f"C{i:03d}") for i in range(40)]


def _env(
    tmp_path: Path, catalog: Path, api: SlackApi, redis_url: str, n: int, health: int
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "AISTATUS_", "ANTHROPIC_", "REDIS_"))
    }
    env.update(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="replica-secret",
        AISTATUS_SLACK_MODE="http",
        AISTATUS_SLACK_PORT=str(free_port()),
        SLACK_API_URL=api.base_url,
        REDIS_URL=redis_url,
        AISTATUS_CATALOG=str(catalog),
        AISTATUS_PROBES="false",
        AISTATUS_POLL_INTERVAL="0.5",
        AISTATUS_HTTP_PORT=str(health),
        AISTATUS_DATA_DIR=str(tmp_path / f"data{n}"),
    )
    return env


@dataclass
class Replicas:
    """`aistatus run` processes started by `replicas`: their stderr, and once the block has
    ended their exit codes and whole logs."""

    procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    errs: list[Output] = field(default_factory=list)
    codes: list[int | None] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    async def ready(self) -> None:
        for err in self.errs:
            await err.wait_for("Slack: HTTP mode on", within=30)

    async def stop(self) -> None:
        """SIGTERM to each, then their exit codes."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        self.codes = [await proc.wait() for proc in self.procs]


@contextlib.asynccontextmanager
async def replicas(
    tmp_path: Path, catalog: Path, api: SlackApi, redis_url: str, health: Sequence[int]
) -> AsyncIterator[Replicas]:
    """One `aistatus run` per health port against `redis_url`; killed if still running at the
    end, when their logs are read."""
    running = Replicas()
    try:
        for n, port in enumerate(health):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env=_env(tmp_path, catalog, api, redis_url, n, port), cwd=tmp_path,
            )  # fmt: skip
            assert proc.stderr is not None
            running.procs.append(proc)
            running.errs.append(Output(proc.stderr))
        yield running
    finally:
        for proc in running.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        running.logs = [await err.close() for err in running.errs]


async def test_three_replicas_poll_once_per_slot_and_deliver_each_alert_once(
    tmp_path: Path, redis_server: RedisProcess
):
    redis = connect(redis_server.url)
    await redis.flushall()
    subs = SubscriptionStore(redis)
    now = datetime.now(UTC)
    for channel in CHANNELS:
        await subs.subscribe(channel, (), all_claude=True, user="U1", now=now)
    health = [free_port() for _ in range(REPLICAS)]
    async with SlackApi(tokens={"xoxb-test": "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        catalog = claude_only(tmp_path, claude.url)
        async with replicas(tmp_path, catalog, api, redis_server.url, health) as bots:
            async with asyncio.timeout(90):
                await bots.ready()
                claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
                await api.wait_until(lambda: len(parents(api)) == len(CHANNELS), within=30)
                claude.set_summary(fixture_json("claude/summary_recovered.json"))
                await api.wait_until(lambda: len(broadcasts(api)) == len(CHANNELS), within=30)
                served = claude.hits["/api/v2/summary.json"]
                metrics = [await polls_of(port) for port in health]
                await bots.stop()
    transitions = [t for _, t in await SurfaceStore(redis).read_transitions("claude", count=1000)]
    await redis.aclose()

    assert bots.codes == [0] * REPLICAS, [log[-2000:] for log in bots.logs]
    assert not any("Traceback" in log for log in bots.logs)
    # Each change recorded once, whichever replica polled.
    kinds = Counter(t.kind for t in transitions)
    assert kinds == {TransitionKind.START: 5, TransitionKind.RECOVERY: 5}
    # Each channel: one parent, one broadcast recovery, nothing twice.
    per_channel = Counter(c.params["channel"] for c in parents(api))
    assert per_channel == {c.channel: 1 for c in CHANNELS}
    assert Counter(c.params["channel"] for c in broadcasts(api)) == per_channel
    # Polling is shared: every replica tries every slot, one wins it, the others skip it. So
    # most attempts are skips, and the page saw about as many polls as were made.
    skipped = sum(m["skipped"] for m in metrics)
    made = sum(m["ok"] + m["not_modified"] + m["error"] for m in metrics)
    assert made > 0 and skipped > made, (made, skipped)
    assert abs(served - made) <= 2 * REPLICAS, (served, made)  # polls in flight at the scrape


async def polls_of(port: int) -> Counter[str]:
    """aistatus_polls_total{provider="claude"} by outcome, from a replica's /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("aistatus_polls_total{") and 'provider="claude"' in line:
            outcome = line.split('outcome="')[1].split('"')[0]
            out[outcome] += int(float(line.rsplit(" ", 1)[1]))
    return out


def parents(api: SlackApi) -> list:
    return [
        c
        for c in api.accepted_to("chat.postMessage")
        if "blocks" in c.params and "thread_ts" not in c.params
    ]


def broadcasts(api: SlackApi) -> list:
    return [
        c
        for c in api.accepted_to("chat.postMessage")
        if str(c.params.get("reply_broadcast", "")).lower() in {"true", "1"}
    ]


async def test_sigterm_ends_aistatus_run_within_its_grace_period_while_chat_calls_hang(
    tmp_path: Path, redis_server: RedisProcess
):
    redis = connect(redis_server.url)
    await redis.flushall()
    now = datetime.now(UTC)
    for channel in CHANNELS[:5]:
        await SubscriptionStore(redis).subscribe(channel, (), all_claude=True, user="U1", now=now)
    hang = Chaos(hang=1.0, methods=frozenset({"chat.postMessage"}))
    async with (
        SlackApi(tokens={"xoxb-test": "T0001"}, chaos=hang) as api,
        StatusServer() as claude,
    ):
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        catalog = tmp_path / "catalog.yaml"
        pages = {p: claude.url + "/nothing" for p in ("openai", "github", "cursor")}
        pages["claude"] = claude.url
        catalog.write_text(
            json.dumps({"providers": {p: {"statuspage": u} for p, u in pages.items()}})
        )
        env = _env(tmp_path, catalog, api, redis_server.url, 0, free_port())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            cwd=tmp_path,
        )  # fmt: skip
        assert proc.stderr is not None
        err = Output(proc.stderr)
        try:
            await err.wait_for("Slack: HTTP mode on", within=30)
            claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
            await api.wait_for("chat.postMessage", count=5, within=30)  # every one hangs
            proc.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            async with asyncio.timeout(25):  # the manifests' grace period is 30 s
                code = await proc.wait()
            took = loop.time() - sent
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            log = await err.close()
    await redis.aclose()
    assert code == 0, log[-2000:]
    assert took < 15, took  # stop_grace (10 s), then the hung calls are abandoned


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
async def test_two_replicas_on_sentinel_or_cluster_replay_the_incident_once_per_channel(
    tmp_path: Path, request: pytest.FixtureRequest, topology: str
):
    """The recorded 2026-09-22 incident, page by page, through two `aistatus run` processes
    whose REDIS_URL is redis+sentinel://… or redis+cluster://…: each channel gets exactly the
    start, the threaded update with its edit, and the recovery with its edit."""
    if topology == "sentinel":
        sentinels = request.getfixturevalue("redis_sentinel")
        await asyncio.to_thread(sentinels.flush)
        url = sentinels.url
    else:
        url = request.getfixturevalue("redis_cluster").url
    redis = connect(url)
    if topology == "cluster":
        await redis.flushall()
    subs = SubscriptionStore(redis)
    now = datetime.now(UTC)
    await subs.subscribe(C1, (), all_claude=True, user="U1", now=now)
    await subs.subscribe(C2, ("api",), all_claude=False, user="U1", now=now)
    feed, outbox = TransitionFeed(redis, ["claude"]), OutboxStore(redis)
    steps = timeline()
    async with SlackApi(tokens={"xoxb-test": "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(steps[0].claude)
        catalog = claude_only(tmp_path, claude.url)
        health = [free_port(), free_port()]
        async with replicas(tmp_path, catalog, api, url, health) as bots:
            async with asyncio.timeout(120):
                await bots.ready()
                for step in steps[1:]:
                    claude.set_summary(step.claude)
                    polled = claude.hits["/api/v2/summary.json"] + 2  # one poll after the change
                    # Redis and the page's counter: no event to wait on (bounded above).
                    while claude.hits["/api/v2/summary.json"] < polled:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                    while not (await feed.caught_up() and not await outbox.backlog()):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                await bots.stop()
    await redis.aclose()

    assert bots.codes == [0, 0], [log[-2000:] for log in bots.logs]
    assert not any("Traceback" in log for log in bots.logs)
    for channel in ("C1", "C2"):
        calls = channel_calls(api, channel)
        assert [m for m, _ in calls] == THREADED, channel
        assert [what(c) for m, c in calls if m == "chat.postMessage"][::2] == ["start", "resolved"]

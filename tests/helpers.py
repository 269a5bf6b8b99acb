"""Shared test factories and helpers: fixtures read from the package, the shipped catalog pointed
at loopback, a recording sink, one transition and one alert, Slack request signing. Imported by
tests; never a test-to-test import."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.catalog_file import load_catalog, shipped_data
from bot.chat.actions import Services, handle
from bot.chat.ports import ChatSender, CommandHandler
from bot.clock import ManualClock, utcnow
from bot.core.catalog import Catalog, merge, parse_catalog
from bot.core.model import (
    Alert,
    AlertKind,
    Backup,
    ChannelRef,
    CommandContext,
    Incident,
    Observation,
    Platform,
    Reason,
    Reply,
    SideMessage,
    Signal,
    Status,
    Transition,
    TransitionKind,
)
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics
from bot.delivery.pacing import UNLIMITED
from bot.delivery.retry import RetryPolicy
from bot.delivery.side import SideOutbox
from bot.ops.demo import fixture, with_update
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from bot.store.crypto import TokenCipher
from bot.store.outbox import OutboxStore
from bot.store.subscriptions import SubscriptionStore
from bot.watch.statuspage import parse_summary
from bot.watch.watcher import Watcher
from tests.peers.slack_api import SlackApi

FIXTURES = resources.files("bot").joinpath("data", "fixtures", "statuspage")


def fixture_text(name: str) -> str:
    """Raw text of a shipped fixture, e.g. 'claude/summary_incident_investigating.json'."""
    return FIXTURES.joinpath(name).read_text("utf-8")


def fixture_json(name: str) -> Any:
    return fixture(name)


RESOLUTION = "This incident has been resolved."


def resolved_incidents() -> dict[str, Any]:
    """incidents.json once the recorded incident (7g1qpkyz5gxh) is resolved: its newest update is
    the resolution text a recovery quotes after the incident vanished from summary.json."""
    investigating = fixture("claude/summary_incident_investigating.json")
    at = datetime(2026, 9, 22, 6, 0, tzinfo=UTC)
    page = with_update(investigating, at, status="resolved", body=RESOLUTION, update_id="resolved1")
    return {"page": page["page"], "incidents": page["incidents"]}


class Recorder:
    """Collects what the watcher publishes (the Sink protocol)."""

    def __init__(self) -> None:
        self.published: list[Transition] = []

    async def publish(self, transitions: Sequence[Transition]) -> None:
        self.published.extend(transitions)


def catalog_for(
    claude_url: str,
    *,
    probes: dict | None = None,
    canaries=(),
    pages: Mapping[str, str] | None = None,
) -> Catalog:
    """The shipped catalog with Claude's page on loopback and nothing else watched; probes, when
    given, replace every shipped probe (all pointing at loopback); `pages`: other providers'
    status pages on loopback (provider -> URL), whose surfaces keep their official component."""
    pages = {"claude": claude_url, **(pages or {})}
    data = shipped_data()
    data = merge(data, {"providers": {p: {"statuspage": url} for p, url in pages.items()}})
    for s in data["surfaces"].values():
        s.pop("probes", None)
        if s["provider"] not in pages:
            s.pop("official", None)
    for sid, specs in (probes or {}).items():
        data["surfaces"][sid]["probes"] = specs
    data["canaries"] = list(canaries)
    return parse_catalog(data, source="test")


FAST = DeliveryConfig(
    workers=8,
    min_idle=1.0,
    call_timeout=30.0,
    lease_ttl=2.0,
    block=0.05,
    batch=500,
    gate_poll_max=0.1,
    pacing={p: UNLIMITED for p in Platform},
    retry=RetryPolicy(max_attempts=8, base=0.01, cap=0.05),
)


STARTED = datetime(2026, 9, 22, 0, 50, tzinfo=UTC)


async def no_side(message: SideMessage) -> None:
    """The side queue of a test that expects no announcement: one is a failure."""
    raise AssertionError(f"unexpected side message: {message.what}")


def delivery_engine(
    redis: aioredis.Redis,
    senders: Mapping[Platform, ChatSender],
    *,
    config: DeliveryConfig = FAST,
    consumer: str | None = None,
    registry: CollectorRegistry | None = None,
) -> Delivery:
    """The real delivery engine on `redis` with the shipped catalog, sending through `senders`
    (wall clock, metrics in `registry` or a fresh one)."""
    return Delivery.on(
        redis,
        senders,
        load_catalog(),
        config=config,
        clock=utcnow,
        consumer=consumer,
        metrics=DeliveryMetrics.create(registry or CollectorRegistry()),
    )


@contextlib.asynccontextmanager
async def delivering(
    redis: aioredis.Redis,
    senders: Mapping[Platform, ChatSender],
    *,
    config: DeliveryConfig = FAST,
    consumer: str | None = None,
) -> AsyncIterator[SideOutbox]:
    """A real delivery engine on `redis` sending through `senders` in the background, and the
    side queue (announcements, direct messages) the chat apps hand to it."""
    delivery = delivery_engine(redis, senders, config=config, consumer=consumer)
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    try:
        yield SideOutbox(OutboxStore(redis), clock=utcnow)
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def play(
    timeline: Sequence[tuple[str, Any]],
    *,
    page: StatusServer,
    watcher: Watcher,
    delivery: Delivery,
    clock: ManualClock,
    within: float = 20.0,
) -> None:
    """Each ("HH:MM", summary) of `timeline` on the recorded incident's day: the clock is set,
    `page` serves the summary, the watcher polls it once and everything that follows is
    delivered (bounded by `within` seconds a step)."""
    for hhmm, summary in timeline:
        h, m = map(int, hhmm.split(":"))
        clock.now = STARTED.replace(hour=h, minute=m)
        page.set_summary(summary)
        assert (await watcher.poll_page("claude")).claimed
        await delivery.drain(within)


UPDATED = datetime(2026, 9, 22, 1, 1, 12, tzinfo=UTC)


INCIDENT_URL = "https://status.claude.com/incidents/7g1qpkyz5gxh"


RECORDED_INCIDENT = parse_summary(
    fixture_text("claude/summary_incident_investigating.json"),
    provider="claude",
    observed_at=STARTED,
).incidents[0]
"""Incident 7g1qpkyz5gxh "Elevated errors for multiple models" as the parser reads the capture."""

_SHIPPED = load_catalog()
_USUAL_REASON = {
    TransitionKind.START: Reason.STARTED,
    TransitionKind.UPDATE: Reason.OFFICIAL_UPDATE,
    TransitionKind.RECOVERY: Reason.RECOVERED,
}


def make_transition(
    surface: str = "api",
    *,
    version: int = 1,
    kind: TransitionKind | None = None,
    reason: Reason | None = None,
    status: Status = Status.PARTIAL_OUTAGE,
    prev: Status = Status.OPERATIONAL,
    source: Signal | None = Signal.OFFICIAL,
    suspected: bool = False,
    prev_suspected: bool = False,
    outage_id: str = RECORDED_INCIDENT.id,
    incident: Incident | None = RECORDED_INCIDENT,
    at: datetime = STARTED,
    started_at: datetime | None = None,
    provider: str | None = None,
) -> Transition:
    """One recorded transition: by default the official start of a partial outage of `surface`
    in the recorded incident, at STARTED. `kind` defaults to what `prev` -> `status` is (a
    recovery back to operational, a start from operational or unknown, else an update),
    `reason` to the kind's usual one, `started_at` (the outage's start) to `at`, `provider` to
    the shipped catalog's; the id is `<surface>@<version>`."""
    if kind is None:
        if status is Status.OPERATIONAL:
            kind = TransitionKind.RECOVERY
        elif prev in (Status.OPERATIONAL, Status.UNKNOWN):
            kind = TransitionKind.START
        else:
            kind = TransitionKind.UPDATE
    return Transition(
        id=f"{surface}@{version}",
        surface=surface,
        provider=provider or _SHIPPED.surfaces[surface].provider,
        kind=kind,
        reason=reason or _USUAL_REASON[kind],
        status=status,
        prev_status=prev,
        source=source,
        suspected=suspected,
        prev_suspected=prev_suspected,
        outage_id=outage_id,
        incident=incident,
        started_at=started_at or at,
        at=at,
    )


def make_alert(**over: object) -> Alert:
    alert = Alert(
        key="7g1qpkyz5gxh",
        kind=AlertKind.START,
        surfaces=("claude.ai",),
        surface_names=("claude.ai",),
        severity=Status.PARTIAL_OUTAGE,
        title="claude.ai: partial outage",
        incident_title="Elevated errors for multiple models",
        update_text="We are currently investigating this issue.",
        update_at=UPDATED,
        started_at=STARTED,
        at=UPDATED,
        duration_text="for 11 min",
        url=INCIDENT_URL,
        backups=(
            Backup(
                "console",
                "Claude Console",
                "https://platform.claude.com",
                Status.OPERATIONAL,
                True,
                "Console Workbench: chat with Claude in the browser",
            ),
            Backup("chatgpt", "ChatGPT", "https://chatgpt.com", Status.OPERATIONAL, False),
        ),
        suspected=False,
        transition_ids=("claude.ai@7",),
    )
    return replace(alert, **over)  # type: ignore[arg-type]


async def _no_watcher(observation: Observation) -> None:
    """Crowd reports are stored, and go to no watcher."""


def command_layer(redis: aioredis.Redis) -> tuple[Services, CommandHandler]:
    """The real `/aistatus` command layer on `redis` with the shipped catalog: its services, and
    the handler the Slack and Discord adapters call (`bot.chat.actions.handle` bound to them)."""
    svc = Services.over(redis, _SHIPPED, on_crowd=_no_watcher)

    async def handler(text: str, ctx: CommandContext) -> Reply:
        return await handle(text, ctx, svc)

    return svc, handler


TOKEN = "xoxb-test-token"

ENCRYPTION_KEY = "3q2-7wAAAAC6vXZgZ4e5cQ8F2M8lVYH2k3l4m5n6o7A="  # a Fernet key for tests only
CIPHER = TokenCipher([ENCRYPTION_KEY])


TOKEN_T2 = "xoxb-second-workspace"


SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def sign(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends: v0 HMAC-SHA256 of `v0:<timestamp>:<body>` with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def command_form(api: SlackApi, text: str, *, team: str = "T0001") -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "team_domain": "acme",
        "channel_id": "C0001",
        "channel_name": "general",
        "user_id": "U42",
        "user_name": "maria",
        "command": "/aistatus",
        "text": text,
        "api_app_id": "A0001",
        "response_url": api.response_url("cmd"),
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }


def installation(team: str, token: str) -> Installation:
    return Installation(
        app_id="A0001",
        team_id=team,
        team_name=f"Team {team}",
        bot_token=token,
        bot_id=f"B{team}",
        bot_user_id=f"U{team}BOT",
        bot_scopes="commands,chat:write,chat:write.public",
        user_id="U42",
        installed_at=1790000000.0,
    )


class Output:
    """A child's stream read line by line in the background (so its pipe never fills)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode("utf-8", "replace"))
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, needle: str, within: float) -> None:
        """Raises: TimeoutError when no line contains `needle` within `within` seconds."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: any(needle in line for line in self.lines))

    async def close(self) -> str:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._task
        self._task.cancel()
        return "".join(self.lines)


@dataclass
class Running:
    """A running `aistatus run` child: its process and its two streams, read as they come."""

    proc: asyncio.subprocess.Process
    out: Output
    err: Output

    async def stop(self) -> tuple[str, str]:
        """SIGTERM, as an operator stops it; the exit code is `proc.returncode`. Returns
        (stdout, stderr) in full."""
        self.proc.send_signal(signal.SIGTERM)
        await self.proc.wait()
        return await self.out.close(), await self.err.close()


@contextlib.asynccontextmanager
async def aistatus_run(env: Mapping[str, str], cwd: Path) -> AsyncIterator[Running]:
    """`python -m bot run` with settings from `env` only (an empty env file), in `cwd`; killed
    if it is still running when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env), cwd=cwd,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    running = Running(proc, Output(proc.stdout), Output(proc.stderr))
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
            await running.out.close()
            await running.err.close()


def claude_only(tmp_path: Path, claude_url: str) -> Path:
    """A catalog override with Claude's page on loopback and every other page answering 404."""
    catalog = tmp_path / "catalog.yaml"
    elsewhere = {"statuspage": claude_url + "/nothing"}
    providers = {"claude": {"statuspage": claude_url}, **dict.fromkeys(OTHER_PAGES, elsewhere)}
    catalog.write_text(json.dumps({"providers": providers}))
    return catalog


OTHER_PAGES = ("openai", "github", "cursor")


def without_platforms(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without any chat, Redis or aistatus setting of the machine running tests."""
    prefixes = ("SLACK_", "DISCORD_", "AISTATUS_", "ANTHROPIC_", "REDIS_")
    return {k: v for k, v in environ.items() if not k.startswith(prefixes)}


async def subscribe_api(redis: Any) -> None:
    """Slack channel C0001 of workspace T0001 subscribed to the Claude API."""
    await SubscriptionStore(redis).subscribe(
        ChannelRef(Platform.SLACK, "T0001", "C0001"),
        ["api"],
        all_claude=False,
        user="U42",
        now=utcnow(),
    )


def slack_run_env(api_url: str, redis_url: str, catalog: Path, **extra: str) -> dict[str, str]:
    """The environment of an `aistatus run` in Slack HTTP mode against the loopback Slack API,
    a shared redis-server and `catalog`, probes off, polling every 0.5 s; `extra` wins."""
    env = without_platforms(os.environ)
    env.update(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=api_url,
        AISTATUS_SLACK_MODE="http",
        AISTATUS_SLACK_PORT=str(free_port()),
        REDIS_URL=redis_url,
        AISTATUS_CATALOG=str(catalog),
        AISTATUS_PROBES="false",
        AISTATUS_POLL_INTERVAL="0.5",
        AISTATUS_HTTP_PORT="0",
    )
    env.update(extra)
    return env


ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder (README, manifests, pyproject)."""


# -- a bot as an operator runs it: `python -m bot run` in a subprocess -----------------------------


def bot_env(**settings: str) -> dict[str, str]:
    """This process's environment without any bot setting, plus `settings`."""
    env = without_platforms(os.environ)
    env.update(settings)
    return env


def loopback_catalog(path: Path, claude_url: str) -> str:
    """Write a catalog override: Claude's page at `claude_url`, every other watched page a 404
    on the same loopback server. Returns the path as AISTATUS_CATALOG takes it."""
    nothing = claude_url + "/nothing"
    pages = {"claude": claude_url, **dict.fromkeys(OTHER_PAGES, nothing)}
    path.write_text(json.dumps({"providers": {p: {"statuspage": u} for p, u in pages.items()}}))
    return str(path)


@contextlib.asynccontextmanager
async def running_bot(
    env: dict[str, str], cwd: Path, **popen: Any
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Output, list[str]]]:
    """`python -m bot run` with `env` (no .env file); yields (process, stderr lines, logs).
    On exit the process is killed if still running and `logs` gets stderr + stdout in full."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
        **popen,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Output(proc.stdout), Output(proc.stderr)
    logs: list[str] = []
    try:
        yield proc, err, logs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        logs.append(await err.close())
        logs.append(await out.close())


# -- Discord interactions, as Discord sends them ---------------------------------------------------

DISCORD_GUILD = "1100000000000000001"
DISCORD_CHANNEL = "1100000000000000002"
DISCORD_USER = "1100000000000000003"
MANAGE_CHANNELS = str(1 << 4)
_interaction_ids = itertools.count(1_250_000_000_000_000_000)


def discord_interaction(
    kind: int,
    data: dict[str, Any],
    *,
    permissions: str = MANAGE_CHANNELS,
    message: dict[str, Any] | None = None,
    guild: str = DISCORD_GUILD,
    channel: str = DISCORD_CHANNEL,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload as Discord sends it from a guild text channel."""
    from tests.peers.discord_api import APP_ID

    user = {
        "id": DISCORD_USER,
        "username": "maria",
        "discriminator": "0",
        "global_name": "Maria",
        "avatar": None,
        "public_flags": 0,
    }
    payload: dict[str, Any] = {
        "id": str(next(_interaction_ids)),
        "application_id": APP_ID,
        "type": kind,
        "token": f"interaction-token-{next(_interaction_ids)}",
        "version": 1,
        "guild_id": guild,
        "channel_id": channel,
        "channel": {
            "id": channel,
            "type": 0,
            "guild_id": guild,
            "name": "ops",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "topic": None,
            "last_message_id": None,
            "permissions": permissions,
        },
        "member": {
            "user": user,
            "roles": [],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "permissions": permissions,
            "communication_disabled_until": None,
        },
        "app_permissions": "562949953421311",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild},
        "context": 0,
        "attachment_size_limit": 10485760,
        "data": data,
    }
    if message is not None:
        payload["message"] = message
    return payload


def discord_command(
    sub: str, options: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    """`/aistatus <sub>` with `options` as an application command interaction."""
    data = {
        "id": "1300000000000000009",
        "name": "aistatus",
        "type": 1,
        "guild_id": kw.get("guild", DISCORD_GUILD),
        "options": [{"name": sub, "type": 1, "options": options or []}],
    }
    return discord_interaction(2, data, **kw)


def discord_option(name: str, value: Any, kind: int = 3, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value, **extra}


async def discord_callback(api: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The interaction callback the bot sent the loopback Discord for `payload`."""
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    (call,) = await api.wait_for(lambda a: a.find("POST", path))
    return call.json


# -- the truth rig: one status page, the real pipeline, Slack and Discord at once -----------------

OPERATIONAL_PAGE = "claude/summary_all_operational.json"
INVESTIGATING_PAGE = "claude/summary_incident_investigating.json"
RECOVERED_PAGE = "claude/summary_recovered.json"
API_COMPONENT = "k8w3r06qmzrp"
OPENAI_PAGE = "openai/summary_two_incidents_degraded.json"


def derived_monitoring(components: str | None = "operational") -> dict[str, Any]:
    """Derived from the investigating capture: the incident moved to `monitoring` (a third,
    synthesised update) and, unless `components` is None, the incident's components set to it."""
    page = with_update(
        fixture(INVESTIGATING_PAGE),
        datetime(2026, 9, 22, 3, 0, tzinfo=UTC),
        status="monitoring",
        body="A fix has been implemented and we are monitoring the results.",
        update_id="derivedmon01",
    )
    if components is not None:
        named = {c["id"] for c in page["incidents"][0]["components"]}
        for c in [*page["components"], *page["incidents"][0]["components"]]:
            if c["id"] in named:
                c["status"] = components
    return page


def derived_operational(page: dict[str, Any]) -> dict[str, Any]:
    """Derived: `page` with every component operational and no incident."""
    out = copy.deepcopy(page)
    for c in out["components"]:
        c["status"] = "operational"
    out["incidents"] = []
    return out


def derived_component(page: dict[str, Any], component: str, **change: Any) -> dict[str, Any]:
    """Derived: `page` with one component changed (its status, or its `id`), in the page's list
    and the incident's; `id=None` removes it from both (a vanished component id)."""
    out = copy.deepcopy(page)
    lists = [out["components"], *(i.get("components") or [] for i in out.get("incidents") or [])]
    for comps in lists:
        for c in list(comps):
            if c["id"] != component:
                continue
            if "id" in change and change["id"] is None:
                comps.remove(c)
            else:
                c.update(change)
    return out


@dataclass(frozen=True, slots=True)
class Seen:
    """What one channel holds: its parents as shown now, the replies in their threads (first
    line), and what the channel itself shows (posted parents and broadcast replies, as posted)."""

    parents: tuple[str, ...]
    thread: tuple[str, ...]
    visible: tuple[str, ...]
    calls: int  # chat API calls made for the channel


def slack_seen(api: SlackApi, channel: str) -> Seen:
    """A Slack channel as the loopback Web API holds it."""
    posts = api.accepted_to("chat.postMessage", channel)
    alerts = [c for c in posts if "blocks" in c.params]
    tops = [c for c in alerts if "thread_ts" not in c.params]
    replies = [c for c in alerts if "thread_ts" in c.params]
    first = lambda c: str(c.params["blocks"][0]["text"]["text"])  # noqa: E731
    parents = []
    for (ch, _ts), m in api.messages.items():
        if ch == channel and "thread_ts" not in m and "blocks" in m:
            parents.append(str(m["blocks"][0]["text"]["text"]))
    visible = [first(c) for c in tops] + [first(c) for c in replies if c.params["reply_broadcast"]]
    calls = [c for c in api.accepted if c.params.get("channel") == channel]
    return Seen(tuple(parents), tuple(first(c) for c in replies), tuple(visible), len(calls))


def discord_seen(api: Any, channel: str) -> Seen:
    """A Discord channel as the loopback REST server holds it (threads are keyed by the id of
    the message they started from)."""
    own = api.posted(channel)
    parents = [m for m in own if "message_reference" not in m]
    thread = [m["content"] for p in parents for m in api.posted(p["id"])]
    replies = [m["content"] for m in own if "message_reference" in m]
    firsts = [
        c for c in api.calls if c.method == "POST" and c.path == f"/channels/{channel}/messages"
    ]
    visible = [str((c.json or {}).get("content", "")) for c in firsts]
    ids = {channel, *(p["id"] for p in parents)}
    calls = [c for c in api.calls if any(c.path.startswith(f"/channels/{i}/") for i in ids)]
    return Seen(
        tuple(m["content"] for m in parents), tuple(thread or replies), tuple(visible), len(calls)
    )


@dataclass
class Scene:
    """The product on one manual clock: a loopback Claude status page -> the real watcher ->
    Redis -> the delivery engine -> the real SlackSender and DiscordSender -> the loopback Slack
    and Discord servers. `step` serves a page, polls it once and delivers what follows."""

    redis: aioredis.Redis
    page: StatusServer
    slack: SlackApi
    discord: Any  # tests.peers.discord_api.DiscordAPI
    clock: ManualClock
    watcher: Watcher
    delivery: Delivery
    svc: Services
    poll: float = 15.0
    openai: StatusServer | None = None  # OpenAI's page, when the scene serves it

    async def step_openai(self, summary: Any, *, within: float = 20.0) -> Any:
        """One poll interval later: serve `summary` on OpenAI's page, poll it, deliver."""
        assert self.openai is not None, "scene(..., openai=True)"
        self.clock.advance(self.poll)
        self.openai.set_summary(summary)
        report = await self.watcher.poll_page("openai")
        await self.delivery.drain(within)
        return report

    async def command(self, channel: ChannelRef, text: str) -> None:
        """`/aistatus <text>` in `channel` through the real command layer."""
        ctx = CommandContext(channel, "U42", "maria", self.clock(), can_manage=True)
        reply = await handle(text, ctx, self.svc)
        assert not reply.error, reply.text

    async def step(self, summary: Any = None, *, drain: bool = True, within: float = 20.0) -> Any:
        """One poll interval later: serve `summary` (None: as before), poll, deliver."""
        self.clock.advance(self.poll)
        if summary is not None:
            self.page.set_summary(summary)
        report = await self.watcher.poll_page("claude")
        if drain:
            await self.delivery.drain(within)
        return report

    async def fan_out_only(self, within: float = 30.0) -> None:
        """Run the delivery engine's fan-out unit alone until every recorded transition is an
        outbox entry: the lanes see the whole backlog at once, whatever the machine's speed."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.delivery.fanout.run(stop))
        try:
            async with asyncio.timeout(within):
                while not await self.delivery._feed.caught_up():  # noqa: ASYNC110 (a Redis condition)
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await task
            await self.delivery.fanout.release()

    def seen(self, channel: ChannelRef) -> Seen:
        if channel.platform is Platform.SLACK:
            return slack_seen(self.slack, channel.channel)
        return discord_seen(self.discord, channel.channel)


@contextlib.asynccontextmanager
async def scene(
    redis: aioredis.Redis,
    *,
    at: datetime = datetime(2026, 9, 22, 1, 0, 45, tzinfo=UTC),
    config: DeliveryConfig = FAST,
    probes: Sequence[str] = (),
    openai: bool = False,
) -> AsyncIterator[Scene]:
    """The truth rig, the page all operational (read once at `at`, so backups are known);
    `probes`: surfaces probed at the page's /probe/<surface> (set their answers with
    `page.set_probe`); `openai`: OpenAI's page served too (ChatGPT, the OpenAI API), all
    operational (derived from its capture) and read once."""
    import httpx
    from discord.http import Route
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.app import build_bot, services
    from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
    from bot.chat.slack.sender import SlackSender
    from bot.settings import Settings
    from tests.peers.discord_api import TOKEN as DISCORD_TOKEN
    from tests.peers.discord_api import DiscordAPI

    before = Route.BASE
    discord = await DiscordAPI().start()
    configure_api_base(discord.url)
    http = await open_rest_client(DISCORD_TOKEN)
    try:
        async with (
            StatusServer() as page,
            SlackApi(tokens={TOKEN: "T0001"}) as slack,
            httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0)) as client,
            contextlib.AsyncExitStack() as more,
        ):
            page.set_summary(fixture(OPERATIONAL_PAGE))
            openai_page = await more.enter_async_context(StatusServer()) if openai else None
            if openai_page is not None:
                openai_page.set_summary(derived_operational(fixture(OPENAI_PAGE)))
            clock = ManualClock(at)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
            specs = {sid: [{"url": f"{page.url}/probe/{sid}"}] for sid in probes}
            for sid in probes:
                page.set_probe(sid)
            others = {"openai": openai_page.url} if openai_page is not None else {}
            catalog = catalog_for(page.url, probes=specs, pages=others)
            bot = build_bot(settings, catalog, redis, client, clock=clock)
            web = AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=2, retry_handlers=[])
            svc = services(bot)
            delivery = Delivery(
                redis,
                {Platform.SLACK: SlackSender(web), Platform.DISCORD: DiscordSender(http)},
                bot.store,
                svc.subscriptions,
                bot.catalog,
                config=config,
                clock=clock,
                metrics=DeliveryMetrics.create(CollectorRegistry()),
            )
            assert (await bot.watcher.poll_page("claude")).claimed
            if openai_page is not None:
                assert (await bot.watcher.poll_page("openai")).claimed
            yield Scene(
                redis, page, slack, discord, clock, bot.watcher, delivery, svc, openai=openai_page
            )
    finally:
        await http.close()
        await discord.close()
        Route.BASE = before


@dataclass
class ChatCommands:
    """`/aistatus` as a user types it, through the real Slack Bolt app (HTTP mode, signed
    requests) and the real discord.py command tree, on a scene's command layer and clock."""

    sc: Scene
    url: str  # the Bolt app's /slack/events
    session: Any  # aiohttp.ClientSession
    bot: Any  # bot.chat.discord.client.DiscordBot

    async def slack(self, channel: ChannelRef, text: str) -> dict[str, Any]:
        """The answer Slack's response_url received for `text` typed in `channel`."""
        form = {**command_form(self.sc.slack, text, team=channel.workspace)}
        form["channel_id"] = channel.channel
        body = urlencode(form)
        before = len(self.sc.slack.calls_to("respond:cmd"))
        headers = {**sign(body), "Content-Type": "application/x-www-form-urlencoded"}
        async with asyncio.timeout(3), self.session.post(self.url, data=body, headers=headers) as r:
            assert r.status == 200
        return (await self.sc.slack.wait_for("respond:cmd", count=before + 1))[-1].params

    async def discord(self, channel: ChannelRef, sub: str, **options: str) -> dict[str, Any]:
        """The interaction answer (callback `data`) for `/aistatus <sub> <options>`."""
        payload = discord_command(
            sub,
            [discord_option(k, v) for k, v in options.items()],
            guild=channel.workspace,
            channel=channel.channel,
        )
        self.bot._connection.parse_interaction_create(payload)
        return (await discord_callback(self.sc.discord, payload))["data"]


@contextlib.asynccontextmanager
async def chat_commands(sc: Scene) -> AsyncIterator[ChatCommands]:
    """The Slack and Discord command front ends of `sc` (see ChatCommands)."""
    import aiohttp

    from bot.chat.discord.client import DiscordBot
    from bot.chat.discord.commands import CommandRunner
    from bot.chat.slack.app import build_slack_app, run_http_mode
    from bot.settings import Settings
    from tests.peers.discord_api import TOKEN as DISCORD_TOKEN

    async def handler(text: str, ctx: CommandContext) -> Reply:
        return await handle(text, ctx, sc.svc)

    async def no_home(team_id: str) -> Reply:
        return Reply(text="")

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=sc.slack.base_url,
        slack_mode="http",
    )
    side = SideOutbox(OutboxStore(sc.redis), clock=sc.clock)  # announcements: sc.delivery sends
    app = build_slack_app(settings, handler=handler, home=no_home, clock=sc.clock, side=side)
    server = await run_http_mode(app, "127.0.0.1", 0)
    runner = CommandRunner(handler, sc.svc.catalog, clock=sc.clock, side=side)
    bot = DiscordBot(runner, dev_guild_id=None)
    try:
        await bot.login(DISCORD_TOKEN)
        async with aiohttp.ClientSession() as session:
            yield ChatCommands(sc, server.url, session, bot)
    finally:
        await bot.close()
        await server.stop()


async def aistatus(
    *args: str, env: dict[str, str], cwd: Path, within: float = 60
) -> tuple[int, str, str]:
    """Run `python -m bot ARGS` to its end (bounded by `within`): (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env}, cwd=cwd,
    )  # fmt: skip
    async with asyncio.timeout(within):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()

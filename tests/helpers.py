"""Shared test factories and helpers: fixtures read from the package, the shipped catalog pointed
at loopback, a recording sink, one alert, Slack request signing. Imported by tests; never a
test-to-test import."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.core.catalog import Catalog, merge, parse_catalog
from bot.core.catalog import shipped_text as shipped
from bot.core.model import (
    Alert,
    AlertKind,
    Backup,
    Platform,
    Status,
    Transition,
)
from bot.delivery.engine import (
    DeliveryConfig,
)
from bot.delivery.pacing import UNLIMITED
from bot.delivery.retry import RetryPolicy
from bot.ops.demo import fixture
from bot.store.crypto import TokenCipher
from tests.peers.slack_api import SlackApi

FIXTURES = resources.files("bot").joinpath("data", "fixtures", "statuspage")


def fixture_text(name: str) -> str:
    """Raw text of a shipped fixture, e.g. 'claude/summary_incident_investigating.json'."""
    return FIXTURES.joinpath(name).read_text("utf-8")


def fixture_json(name: str) -> Any:
    return fixture(name)


class Recorder:
    """Collects what the watcher publishes (the Sink protocol)."""

    def __init__(self) -> None:
        self.published: list[Transition] = []

    async def publish(self, transitions: Sequence[Transition]) -> None:
        self.published.extend(transitions)


def catalog_for(claude_url: str, *, probes: dict | None = None, canaries=()) -> Catalog:
    """The shipped catalog with Claude's page on loopback and nothing else watched; probes, when
    given, replace every shipped probe (all pointing at loopback)."""
    data = yaml.safe_load(shipped())
    data = merge(data, {"providers": {"claude": {"statuspage": claude_url}}})
    for s in data["surfaces"].values():
        s.pop("probes", None)
        if s["provider"] != "claude":
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


UPDATED = datetime(2026, 9, 22, 1, 1, 12, tzinfo=UTC)


INCIDENT_URL = "https://status.claude.com/incidents/7g1qpkyz5gxh"


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


ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder (README, manifests, pyproject)."""


# -- a bot as an operator runs it: `python -m bot run` in a subprocess -----------------------------

BOT_PREFIXES = ("SLACK_", "DISCORD_", "AISTATUS_", "ANTHROPIC_", "REDIS_")


def bot_env(**settings: str) -> dict[str, str]:
    """This process's environment without any bot setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(BOT_PREFIXES)}
    env.update(settings)
    return env


def loopback_catalog(path: Path, claude_url: str) -> str:
    """Write a catalog override: Claude's page at `claude_url`, every other watched page a 404
    on the same loopback server. Returns the path as AISTATUS_CATALOG takes it."""
    nothing = claude_url + "/nothing"
    pages = {"claude": claude_url, "openai": nothing, "github": nothing, "cursor": nothing}
    path.write_text(json.dumps({"providers": {p: {"statuspage": u} for p, u in pages.items()}}))
    return str(path)


@contextlib.asynccontextmanager
async def running_bot(
    env: dict[str, str], cwd: Path, **popen: Any
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Output, list[str]]]:
    """`python -m bot run` with `env` (no .env file); yields (process, stderr lines, logs).
    On exit the process is killed if still running and `logs` gets stderr + stdout in full."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", str(cwd / "no.env"), "run",
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

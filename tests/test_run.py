"""`aistatus run` as an operator runs it: a real process with its own private redis-server,
watching loopback status pages, printing to the console, serving /healthz and /metrics, and
stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from tests.helpers import fixture_json


async def _read_until(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while True:
        line = await stream.readline()
        if not line:
            raise AssertionError(f"output ended before {needle!r}: {seen[-20:]}")
        seen.append(line.decode())
        if needle in seen[-1]:
            return


async def test_run_watches_prints_transitions_serves_health_and_stops_its_redis(tmp_path: Path):
    port = free_port()
    async with StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            json.dumps(
                {
                    "providers": {
                        "claude": {"statuspage": claude.url},
                        "openai": {"statuspage": claude.url + "/nothing"},
                        "github": {"statuspage": claude.url + "/nothing"},
                        "cursor": {"statuspage": claude.url + "/nothing"},
                    }
                }
            )
        )
        env = {
            **os.environ,
            "AISTATUS_CATALOG": str(catalog),
            "AISTATUS_PROBES": "false",
            "AISTATUS_POLL_INTERVAL": "0.5",
            "AISTATUS_DATA_DIR": str(tmp_path / "data"),
            "AISTATUS_HTTP_PORT": str(port),
        }
        env.pop("REDIS_URL", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(30):
                await claude.wait_for_requests(2, within=20)
                claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
                await _read_until(proc.stdout, "alert (start)", seen)
                async with httpx.AsyncClient() as http:
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                    metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
                assert health.status_code == 200 and ready.status_code == 200
                assert 'aistatus_transitions_total{kind="start",surface="api"} 1.0' in metrics.text
                proc.send_signal(signal.SIGTERM)
                _, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    output = "".join(seen)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "START" in output and "Claude API" in output and "Elevated errors" in output
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists(), "its redis-server stopped"
    assert (tmp_path / "data" / "redis" / "appendonlydir").exists(), "with an AOF kept on disk"
    assert "Traceback" not in err.decode()


async def test_run_without_a_redis_server_says_how_to_get_one(tmp_path: Path):
    env = {**os.environ, "AISTATUS_REDIS_SERVER": "no-such-redis-server-binary"}
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "apt-get install -y redis-server" in lines[0] and "REDIS_URL" in lines[0]


async def test_run_with_an_unreachable_redis_url_names_the_setting(tmp_path: Path):
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "REDIS_URL" in err.decode() and "Traceback" not in err.decode()


async def test_run_with_discord_unreachable_says_so_in_one_line(tmp_path: Path, redis_server):
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "DISCORD_TOKEN": "not-a-real-token",
        "DISCORD_API_URL": f"http://127.0.0.1:{free_port()}/api/v10",
        "AISTATUS_PROBES": "false",
        "AISTATUS_HTTP_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "cannot reach Discord at DISCORD_API_URL" in text.splitlines()[-1]
    assert "Traceback" not in text and "not-a-real-token" not in text

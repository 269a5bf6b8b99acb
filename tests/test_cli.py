"""The `aistatus` command as a user runs it: a real subprocess, loopback status pages, settings
from the environment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from bot.catalog_file import load_catalog
from bot.ops.redisproc import RedisProcess
from bot.ops.statusserver import StatusServer
from bot.store.surfaces import SurfaceStore
from bot.watch.statuspage import INCIDENTS_PATH
from bot.watch.watcher import Watcher
from tests.helpers import aistatus, fixture_json, resolved_incidents


@pytest.fixture
async def pages(tmp_path):
    """Every shipped status page pointed at loopback: Claude and OpenAI serve real payloads, the
    others answer 404 (no recording of them)."""
    async with StatusServer() as claude, StatusServer() as openai, StatusServer() as empty:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        openai.set_summary(fixture_json("openai/summary_two_incidents_degraded.json"))
        override = {
            "providers": {
                "claude": {"statuspage": claude.url},
                "openai": {"statuspage": openai.url},
                "github": {"statuspage": empty.url},
                "cursor": {"statuspage": empty.url},
            }
        }
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(json.dumps(override))
        env = {
            "AISTATUS_CATALOG": str(catalog),
            "AISTATUS_PROBES": "false",
            "AISTATUS_CONNECT_TIMEOUT": "1",
            "AISTATUS_READ_TIMEOUT": "1",
        }
        yield claude, env


async def test_status_exits_0_and_prints_the_table_when_claude_is_operational(pages, tmp_path):
    _, env = pages
    code, out, _ = await aistatus("status", env=env, cwd=tmp_path)
    assert code == 0
    assert "claude.ai" in out and "operational" in out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SURFACE", "STATUS", "SOURCE"]
    chatgpt = next(line for line in lines if line.startswith("chatgpt"))
    assert "degraded" in chatgpt and "Elevated errors" in chatgpt


async def test_status_exits_1_during_an_incident_and_names_it(pages, tmp_path):
    claude, env = pages
    claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
    code, out, _ = await aistatus("status", env=env, cwd=tmp_path)
    assert code == 1
    api = next(line for line in out.splitlines() if line.startswith("api "))
    assert "partial outage" in api and "Elevated errors for multiple models" in api
    console = next(line for line in out.splitlines() if line.startswith("console "))
    assert "operational" in console


async def test_status_exits_2_when_nothing_can_be_reached(pages, tmp_path):
    claude, env = pages
    claude.set_fault(status=503, body=b"<html>down</html>")
    code, out, _ = await aistatus("status", env=env, cwd=tmp_path)
    assert code == 2
    assert "HTTP 503" in out


PAGES = {
    "all-operational": "claude/summary_all_operational.json",
    "investigating": "claude/summary_incident_investigating.json",
    "incident-vanished": "claude/summary_recovered.json",
}


@pytest.mark.parametrize("summary", list(PAGES.values()), ids=list(PAGES))
async def test_status_shows_what_a_watcher_records_from_the_same_page(
    pages, tmp_path, redis, summary
):
    """One read step for both: the same status and incident per surface. Neither looks up a
    resolution text for an incident it never held (`status` holds nothing: it has no Redis)."""
    claude, env = pages
    claude.set_summary(fixture_json(summary))
    claude.set_incidents(resolved_incidents())
    catalog = load_catalog(Path(env["AISTATUS_CATALOG"]))
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0)) as client:
        now = datetime(2026, 9, 22, 6, 1, tzinfo=UTC)
        watcher = Watcher(catalog, SurfaceStore(redis), client, sink=None, clock=lambda: now)
        report = await watcher.poll_page("claude")

    code, out, _ = await aistatus("status", env=env, cwd=tmp_path)

    assert code in (0, 1)
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert report.states, "the watcher decided the page's surfaces"
    for surface, state in report.states.items():
        assert f"{state.status.emoji} {state.status.label}" in lines[surface], surface
        if state.incident is not None:
            assert state.incident.name in lines[surface], surface
    assert claude.hits[INCIDENTS_PATH] == 0


async def test_check_config_names_the_file_the_key_and_the_value(tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text("surfaces:\n  api:\n    probes:\n      - {url: 'ftp://x', expect: [200]}\n")
    code, _, err = await aistatus("check-config", env={"AISTATUS_CATALOG": str(bad)}, cwd=tmp_path)
    assert code == 2
    assert str(bad) in err and "surfaces.api.probes.0.url" in err and "ftp://x" in err


async def test_a_bad_setting_names_the_key_and_the_file(tmp_path):
    (tmp_path / ".env").write_text("AISTATUS_POLL_INTERVAL=soon\n")
    code, _, err = await aistatus("check-config", env={}, cwd=tmp_path)
    assert code == 2
    assert "AISTATUS_POLL_INTERVAL" in err and ".env" in err and "soon" in err
    assert err.count("\n") == 1, "one line, no traceback"


async def test_check_config_passes_with_the_shipped_catalog(tmp_path):
    code, out, _ = await aistatus("check-config", env={}, cwd=tmp_path)
    assert code == 0 and "catalog ok" in out


def alert_kinds(out: str) -> list[str]:
    return [line.split("alert (")[1].rstrip(")") for line in out.splitlines() if "alert (" in line]


def assert_start_update_recovery(kinds: list[str]) -> None:
    assert kinds == ["start", "update", "recovery"], "one incident, start to resolution"


def snapshot(client: redis.Redis) -> dict[bytes, bytes | None]:
    return {k: client.dump(k) for k in client.scan_iter(count=1000)}


async def test_the_demo_replays_the_incident_start_update_recovery(tmp_path):
    code, out, err = await aistatus("demo", "--pause", "0", env={}, cwd=tmp_path, within=90)
    assert code == 0, err
    assert alert_kinds(out) == ["start", "update", "recovery"], "one incident, start to resolution"
    assert "Elevated errors for multiple models" in out
    assert "OpenAI" not in out and "ChatGPT" not in out, "no unrelated alert"
    assert "No backups are up" not in out
    assert out.count("Backups up now:") == 2 and "Claude Console" in out
    # The resolution quotes a resolution update, synthesised (no capture holds it) and said so.
    recovery = out[out.index("alert (recovery)") :]
    assert "> This incident has been resolved. (synthesised by aistatus demo" in recovery
    assert "The issue has been identified" not in recovery
    # No update is dated after the demo's own clock: every quoted time is before its step.
    assert "Official update, 05:58 UTC:" in recovery
    assert "Traceback" not in err


async def test_the_demo_uses_its_own_db_on_redis_url_and_leaves_every_other_key_alone(
    own_redis: RedisProcess, tmp_path
):
    bot_db = redis.Redis(unix_socket_path=str(own_redis.socket_path), db=0)
    demo_db = redis.Redis(unix_socket_path=str(own_redis.socket_path), db=15)
    bot_db.set("aistatus:v1:{p:claude}:state:api", b"the bot's own state")
    bot_db.xadd("aistatus:v1:{p:claude}:transitions", {"t": "real"})
    demo_db.set("someone-else", b"not the demo's")
    before = snapshot(bot_db)
    env = {"REDIS_URL": own_redis.url, "AISTATUS_REDIS_SERVER": str(tmp_path / "no-redis-server")}
    for run in (1, 2):  # the second run starts from what the first left: nothing of the demo
        code, out, err = await aistatus("demo", "--pause", "0", env=env, cwd=tmp_path, within=90)
        assert code == 0, f"run {run}: {err}"
        assert_start_update_recovery(alert_kinds(out))
        assert snapshot(bot_db) == before, "REDIS_URL's own db is not the demo's"
        assert set(demo_db.scan_iter()) == {b"someone-else"}, "only aistatus keys are removed"
    bot_db.close()
    demo_db.close()


async def test_the_demo_refuses_the_db_redis_url_selects(own_redis: RedisProcess, tmp_path):
    client = redis.Redis(unix_socket_path=str(own_redis.socket_path), db=3)
    client.set("aistatus:v1:{p:claude}:state:api", b"the bot's own state")
    env = {"REDIS_URL": own_redis.url.replace("db=0", "db=3"), "AISTATUS_DEMO_REDIS_DB": "3"}
    code, out, err = await aistatus("demo", "--pause", "0", env=env, cwd=tmp_path)
    assert code == 2
    assert "AISTATUS_DEMO_REDIS_DB" in err and "db 3" in err
    assert "alert (" not in out
    assert client.get("aistatus:v1:{p:claude}:state:api") == b"the bot's own state"
    client.close()


async def test_the_demo_page_serves_incidents_json_like_a_real_page():
    from bot.ops.demo import RESOLVED_AT
    from bot.ops.demo import resolved_incidents as demo_incidents
    from bot.watch.statuspage import parse_incidents

    investigating = fixture_json("claude/summary_incident_investigating.json")
    doc = demo_incidents(investigating, RESOLVED_AT)
    [incident] = parse_incidents(
        json.dumps(doc).encode(), provider="claude", observed_at=RESOLVED_AT,
        base_url="https://status.claude.com",
    )  # fmt: skip
    assert (incident.id, incident.status, incident.update_status) == (
        "7g1qpkyz5gxh", "resolved", "resolved",
    )  # fmt: skip
    assert incident.update_at == RESOLVED_AT

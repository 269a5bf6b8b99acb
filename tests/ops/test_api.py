"""The JSON API on the operator listener, against the product replaying the recorded incident:
what `/api/v1/status`, `/status/{surface}`, `/history` and `/route` answer at each step, every
answer schema-valid; ETag / 304, Cache-Control, the bearer token, 404, 400, 405; and the same
routes served by a real `aistatus run` process, and `aistatus status --json`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from tests.helpers import fixture_json
from tests.ops.conftest import (
    IDENTIFIED,
    INCIDENT,
    INVESTIGATING,
    OPERATIONAL,
    RECOVERED,
    TITLE,
    UPDATE,
    BoardRig,
    board_rig,
    validate,
)

CLAUDE = ["claude.ai", "api", "code", "console", "cowork", "mobile"]
AFFECTED = ["claude.ai", "api", "code", "cowork", "mobile"]


async def get_json(base: str, path: str, **kw: Any) -> tuple[httpx.Response, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
        resp = await http.get(path, **kw)
    return resp, resp.json() if resp.content else None


def surface(board: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in board["surfaces"] if s["id"] == sid)


async def test_the_board_follows_the_recorded_incident_step_by_step(rig: BoardRig):
    await rig.play_until(OPERATIONAL)
    _, board = await get_json(rig.base, "/api/v1/status")
    validate(board, "board-v1.json")
    assert board["version"] == 1 and board["monitoring_blind"] is False
    assert board["headline"] == "All Claude surfaces are operational."
    assert [s["id"] for s in board["surfaces"][:6]] == CLAUDE, "Claude surfaces first"
    assert {surface(board, s)["status"] for s in CLAUDE} == {"operational"}
    assert board["incidents"] == [] and board["backups"] == []
    api = surface(board, "api")
    assert api["source"] == "official" and api["freshness"] == {
        "signal": "official",
        "observed_at": "2026-09-22T00:45:00Z",
        "stale": False,
    }
    assert surface(board, "gemini")["status"] == "unknown", "never observed: not assumed up"
    assert surface(board, "gemini")["label"] == "unknown (no data yet)"

    await rig.play_until(INCIDENT)
    _, board = await get_json(rig.base, "/api/v1/status")
    validate(board, "board-v1.json")
    for sid in AFFECTED:
        s = surface(board, sid)
        assert (s["status"], s["source"], s["suspected"]) == ("partial_outage", "official", False)
        assert s["since"] == "2026-09-22T01:01:00Z"
        assert s["incident"]["title"] == TITLE
    [incident] = board["incidents"]
    assert incident["id"] == "7g1qpkyz5gxh" and incident["surfaces"] == AFFECTED
    assert incident["update_status"] == "investigating"
    assert incident["update_text"].startswith(INVESTIGATING)
    assert incident["url"] == "https://stspg.io/90s4l9yywzbk"
    assert surface(board, "console")["status"] == "operational"
    # Backups up now: Claude Console (same model, best fit), then Claude on Bedrock (probed up);
    # never a surface that is out itself, never the unwatched (unknown) Vertex route.
    assert [b["surface"] for b in board["backups"]] == ["console", "bedrock-claude"]
    assert [b["surface"] for b in surface(board, "api")["backups"]] == ["bedrock-claude"]
    assert board["headline"].startswith("Claude has problems: claude.ai (partial outage)")

    # One surface's answer is the board's entry for it.
    resp, one = await get_json(rig.base, "/api/v1/status/api")
    assert resp.status_code == 200
    validate(one, "board-v1.json", "surface_answer")
    assert {k: v for k, v in one.items() if k not in {"version", "monitoring_blind"}} == surface(
        board, "api"
    )

    await rig.play_until(UPDATE)
    _, board = await get_json(rig.base, "/api/v1/status")
    validate(board, "board-v1.json")
    [incident] = board["incidents"]
    assert incident["update_status"] == "identified" and incident["update_text"] == IDENTIFIED
    assert surface(board, "api")["since"] == "2026-09-22T01:01:00Z", "same outage, same since"

    await rig.play_until(RECOVERED)
    _, board = await get_json(rig.base, "/api/v1/status")
    validate(board, "board-v1.json")
    assert {surface(board, s)["status"] for s in CLAUDE} == {"operational"}
    assert surface(board, "api")["since"] == "2026-09-22T06:01:00Z"
    assert board["incidents"] == [] and board["backups"] == []


async def test_route_sends_api_traffic_to_bedrock_while_the_api_is_out(rig: BoardRig):
    await rig.play_until(OPERATIONAL)
    _, before = await get_json(rig.base, "/api/v1/route", params={"for": "api"})
    validate(before, "route-v1.json")
    assert before["use"] == "api" and before["reason"] == "Claude API is operational."
    assert [r["surface"] for r in before["routes"]] == ["api", "bedrock-claude"]

    await rig.play_until(INCIDENT)
    _, during = await get_json(rig.base, "/api/v1/route", params={"for": "api"})
    validate(during, "route-v1.json")
    assert during["status"] == "partial_outage" and during["use"] == "bedrock-claude"
    assert during["routes"][0]["same_model"] is True
    assert during["reason"] == "Claude API: partial outage; Claude on Amazon Bedrock is up."
    _, web = await get_json(rig.base, "/api/v1/route", params={"for": "claude.ai"})
    validate(web, "route-v1.json")
    assert [r["surface"] for r in web["routes"]] == ["console", "bedrock-claude"]

    await rig.play_until(RECOVERED)
    _, after = await get_json(rig.base, "/api/v1/route")  # `for` defaults to the API
    validate(after, "route-v1.json")
    assert after["surface"] == "api" and after["use"] == "api"


async def test_history_gives_uptime_and_the_changes_of_the_incident(rig: BoardRig):
    await rig.play_until(RECOVERED)
    resp, doc = await get_json(rig.base, "/api/v1/history", params={"surface": "api", "days": 1})
    assert resp.status_code == 200
    validate(doc, "history-v1.json")
    [api] = doc["surfaces"]
    assert [c["kind"] for c in api["changes"]] == ["recovery", "update", "start"]
    assert api["changes"][-1]["incident_title"] == TITLE
    assert 0 < api["uptime_percent"] < 100 and api["uptime_text"].endswith("%")
    assert [d["day"] for d in api["daily"]] == ["2026-09-22"]
    _, every = await get_json(rig.base, "/api/v1/history")  # every Claude surface, 7 days
    validate(every, "history-v1.json")
    assert every["days"] == 7 and [s["surface"] for s in every["surfaces"]] == CLAUDE
    assert next(s for s in every["surfaces"] if s["surface"] == "console")["changes"] == []


async def test_an_unchanged_board_is_a_304_and_a_changed_one_a_new_etag(rig: BoardRig):
    await rig.play_until(OPERATIONAL)
    for path in ("/api/v1/status", "/api/v1/status/api", "/api/v1/route", "/api/v1/history", "/"):
        async with httpx.AsyncClient(base_url=rig.base, timeout=5.0) as http:
            first = await http.get(path)
            etag = first.headers["ETag"]
            assert first.status_code == 200 and etag.startswith('"'), path
            assert first.headers["Cache-Control"] == "public, max-age=5, must-revalidate"
            again = await http.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b"", path
            assert again.headers["ETag"] == etag
            weak = await http.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
            assert weak.status_code == 304, path
    async with httpx.AsyncClient(base_url=rig.base, timeout=5.0) as http:
        before = (await http.get("/api/v1/status")).headers["ETag"]
        await rig.play_until(INCIDENT)
        changed = await http.get("/api/v1/status", headers={"If-None-Match": before})
    assert changed.status_code == 200 and changed.headers["ETag"] != before


async def test_with_a_token_every_route_needs_the_bearer_header(redis):
    token = "tok-5f2c9a7d1e"
    async with board_rig(redis, token=token) as rig, httpx.AsyncClient(base_url=rig.base) as http:
        await rig.play_until(OPERATIONAL)
        for path in ("/api/v1/status", "/api/v1/status/api", "/api/v1/route", "/"):
            bare = await http.get(path)
            assert bare.status_code == 401, path
            assert bare.headers["WWW-Authenticate"].startswith("Bearer")
            assert token not in bare.text
            wrong = await http.get(path, headers={"Authorization": "Bearer tok-5f2c9a7d1f"})
            assert wrong.status_code == 401, path
            basic = await http.get(path, headers={"Authorization": f"Basic {token}"})
            assert basic.status_code == 401, path
            good = await http.get(path, headers={"Authorization": f"Bearer {token}"})
            assert good.status_code == 200, path
            assert good.headers["Cache-Control"].startswith("private")
            assert good.headers["Vary"] == "Authorization"
        health = await http.get("/healthz")
    assert health.status_code == 200, "the health endpoints stay open"


async def test_an_unknown_surface_is_a_404_and_bad_days_a_400(rig: BoardRig):
    await rig.play_until(OPERATIONAL)
    for path, params in (
        ("/api/v1/status/claude.ia", {}),
        ("/api/v1/route", {"for": "claude.ia"}),
        ("/api/v1/history", {"surface": "claude.ia"}),
    ):
        resp, body = await get_json(rig.base, path, params=params)
        assert resp.status_code == 404, path
        assert resp.headers["Content-Type"].startswith("application/json")
        assert body["error"] == "unknown surface" and body["surface"] == "claude.ia"
        assert "claude.ai" in body["known"]
    for days in ("0", "91", "seven"):
        resp, body = await get_json(rig.base, "/api/v1/history", params={"days": days})
        assert resp.status_code == 400 and "days" in body["error"], days


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_the_api_is_read_only(rig: BoardRig, method: str):
    async with httpx.AsyncClient(base_url=rig.base, timeout=5.0) as http:
        for path in ("/api/v1/status", "/api/v1/status/api", "/api/v1/route", "/"):
            resp = await http.request(method, path, content=b"{}")
            assert resp.status_code == 405, (method, path)
            assert resp.headers["Allow"] == "GET, HEAD"
            assert resp.json()["error"].startswith("read-only")
        head = await http.head("/api/v1/status")
    assert head.status_code == 200 and head.content == b""


async def test_while_monitoring_is_blind_the_board_and_the_route_say_so_first(redis):
    async with board_rig(redis, probe_answers=False) as rig:
        await rig.play_until(INCIDENT)
        assert rig.bot.watcher.blind
        _, board = await get_json(rig.base, "/api/v1/status")
        _, route = await get_json(rig.base, "/api/v1/route")
    validate(board, "board-v1.json")
    validate(route, "route-v1.json")
    assert board["monitoring_blind"] is True and route["monitoring_blind"] is True
    assert board["headline"].startswith("aistatus cannot reach the internet right now")
    assert route["reason"].startswith("aistatus cannot reach the internet right now")
    assert surface(board, "bedrock-claude")["status"] == "unknown", "blindness is not an outage"
    assert surface(board, "api")["status"] == "partial_outage", "the official page still reads"


# -- the real process -----------------------------------------------------------------------------


async def test_aistatus_run_serves_the_api_and_the_web_board(tmp_path: Path, redis, redis_server):
    port = free_port()
    async with StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
        catalog = tmp_path / "catalog.yaml"
        nothing = claude.url + "/nothing"
        providers = {p: {"statuspage": nothing} for p in ("openai", "github", "cursor")}
        catalog.write_text(
            json.dumps({"providers": {"claude": {"statuspage": claude.url}, **providers}})
        )
        env = {
            **os.environ,
            "REDIS_URL": redis_server.url,
            "AISTATUS_CATALOG": str(catalog),
            "AISTATUS_PROBES": "false",
            "AISTATUS_POLL_INTERVAL": "0.5",
            "AISTATUS_HTTP_PORT": str(port),
            "AISTATUS_API_TOKEN": "tok-run-3b8e",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        auth = {"Authorization": "Bearer tok-run-3b8e"}
        try:
            async with asyncio.timeout(30), httpx.AsyncClient(headers=auth) as http:
                await claude.wait_for_requests(1, within=20)
                while True:  # the listener is up once a poll has been committed
                    try:
                        resp = await http.get(f"http://127.0.0.1:{port}/api/v1/status")
                    except httpx.TransportError:
                        resp = None
                    if resp is not None and surface(resp.json(), "api")["status"] != "unknown":
                        break
                    await asyncio.sleep(0.1)
                board = resp.json()
                page = await http.get(f"http://127.0.0.1:{port}/")
                async with httpx.AsyncClient() as anonymous:
                    refused = await anonymous.get(f"http://127.0.0.1:{port}/api/v1/status")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                _, err = await proc.communicate()
    validate(board, "board-v1.json")
    assert surface(board, "api")["status"] == "partial_outage"
    assert board["incidents"][0]["title"] == TITLE
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert TITLE in page.text and 'data-surface="api" data-status="partial_outage"' in page.text
    assert refused.status_code == 401, "AISTATUS_API_TOKEN reached the listener"
    assert proc.returncode == 0 and "Traceback" not in err.decode()


async def test_status_json_prints_the_board_document_of_one_poll(tmp_path: Path):
    async with StatusServer() as claude, StatusServer() as empty:
        claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
        providers = {p: {"statuspage": empty.url} for p in ("openai", "github", "cursor")}
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            json.dumps({"providers": {"claude": {"statuspage": claude.url}, **providers}})
        )
        env = {
            **os.environ,
            "AISTATUS_CATALOG": str(catalog),
            "AISTATUS_PROBES": "false",
            "AISTATUS_CONNECT_TIMEOUT": "1",
            "AISTATUS_READ_TIMEOUT": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, "status",
            "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            cwd=tmp_path,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()[-2000:]
    board = json.loads(out)
    validate(board, "board-v1.json")
    api = surface(board, "api")
    assert (api["status"], api["source"]) == ("partial_outage", "official")
    assert api["since"] == api["incident"]["started_at"], "one poll: since the incident began"
    assert board["incidents"][0]["update_text"].startswith(INVESTIGATING)
    assert [b["surface"] for b in board["backups"]] == ["console"]

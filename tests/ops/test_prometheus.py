"""Prometheus: a running bot's /metrics passes `promtool check metrics`; the alert rules in
manifests/prometheus pass `promtool check rules` and their unit tests; every rule and every
Grafana panel queries a metric the bot exports. Skips only when promtool is not installed
(scripts/test installs Debian's `prometheus` package as root)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

import bot.app  # noqa: F401 (every collector of the running bot is registered on import)
from bot import __version__
from bot.ops.metrics import DeliveryMetrics
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from tests.helpers import (
    ROOT,
    TOKEN,
    aistatus_run,
    claude_only,
    fixture_json,
    slack_run_env,
)
from tests.peers.slack_api import SlackApi

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (scripts/test installs it as root)"
)
RULES = ROOT / "manifests" / "prometheus"
DASHBOARD = ROOT / "manifests" / "grafana" / "aistatus.json"
METRIC = re.compile(r"\baistatus_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}


def exported() -> set[str]:
    """Every series name the bot's registry exports, samples or not yet."""
    DeliveryMetrics.default()
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return {n for n in names if n.startswith("aistatus_")}


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, cwd=RULES, timeout=60, check=False
    )


@needs_promtool
def test_the_alert_rules_pass_promtool_check_and_their_unit_tests():
    checked = promtool("check", "rules", "rules.yaml")
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    tested = promtool("test", "rules", "rules.test.yaml")
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()


def test_every_rule_and_panel_queries_a_metric_the_bot_exports():
    names = exported()
    rules = yaml.safe_load((RULES / "rules.yaml").read_text())["groups"][0]["rules"]
    wanted = {r["alert"] for r in rules}
    assert {"AistatusStalePolls", "AistatusMonitoringBlind", "AistatusDeadLettersGrowing",
            "AistatusDeliveryBacklog", "AistatusChatGatewayDown"} <= wanted  # fmt: skip
    for rule in rules:
        used = set(METRIC.findall(rule["expr"]))
        assert used and used <= names, (rule["alert"], used - names)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"], "a dashboard with panels"
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(METRIC.findall(target["expr"]))
            assert used and used <= names, (panel["title"], used - names)


@needs_promtool
async def test_a_running_bots_scrape_passes_promtool_check_metrics(tmp_path, redis_server, redis):
    # `redis` empties the session's server first: the outbox and dead-letter gauges read 0 only
    # if no earlier test left entries there (seen once in a full run).
    port = free_port()
    async with SlackApi(tokens={TOKEN: "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = slack_run_env(
            api.base_url,
            redis_server.url,
            claude_only(tmp_path, claude.url),
            AISTATUS_HTTP_PORT=str(port),
        )
        async with aistatus_run(env, tmp_path) as bot, httpx.AsyncClient() as http:
            await bot.err.wait_for("watching", within=30)
            await claude.wait_for_requests(1, within=20)
            polled = 'aistatus_last_successful_poll_timestamp_seconds{provider="claude"}'
            async with asyncio.timeout(20):
                while True:  # the watcher's commit and the scrape race: scrape until it shows
                    body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                    if polled in body:
                        break
                    await asyncio.sleep(0.1)
            await bot.stop()
    lint = promtool("check", "metrics", stdin=body.encode())
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
    assert f'aistatus_build_info{{version="{__version__}"}} 1.0' in body
    assert "aistatus_outbox_entries 0.0" in body and "aistatus_dead_letters 0.0" in body
    for name in ("aistatus_probe_seconds", "aistatus_official_lag_seconds",
                 "aistatus_delivery_latency_seconds", "aistatus_chat_connected"):  # fmt: skip
        assert f"# TYPE {name} " in body, name

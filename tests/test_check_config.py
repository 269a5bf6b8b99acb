"""`aistatus check-config`: every problem at once, unknown keys with the closest known one, the
cross-field rules `run` shares, bounds, and `--connect` against a real Redis and loopback pages."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from bot.catalog_file import load_catalog
from bot.cli import check_config
from bot.errors import ConfigError
from bot.ops.statusserver import StatusServer
from bot.settings import load_settings, rules
from tests.helpers import ENCRYPTION_KEY, aistatus, fixture_json, without_platforms


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """None of the machine's own aistatus, chat or Redis settings leak into a check."""
    for key in set(os.environ) - set(without_platforms(os.environ)):
        monkeypatch.delenv(key)


async def check(env_file: Path, **kw) -> tuple[int | ConfigError, str]:
    out = io.StringIO()
    try:
        return await check_config(env_file, out, **kw), out.getvalue()
    except ConfigError as e:
        return e, out.getvalue()


async def test_every_problem_is_reported_at_once_with_the_closest_known_key(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "AISTATUS_POLL_INTERVALL=30\nSLACK_BOT_TOKN=xoxb-1\n"
        "AISTATUS_FAILURE_THRESHOLD=0\nAISTATUS_LOG_LEVEL=loud\n"
    )
    error, _ = await check(env)
    assert isinstance(error, ConfigError)
    lines = str(error).splitlines()
    assert len(lines) == 4, lines
    by_key = {p.key: p for p in error.problems}
    assert "did you mean AISTATUS_POLL_INTERVAL?" in str(by_key["AISTATUS_POLL_INTERVALL"])
    assert "did you mean SLACK_BOT_TOKEN?" in str(by_key["SLACK_BOT_TOKN"])
    for key in ("AISTATUS_FAILURE_THRESHOLD", "AISTATUS_LOG_LEVEL"):
        assert str(env) in str(by_key[key]) and "fix:" in str(by_key[key])


async def test_an_unknown_key_in_the_environment_is_named_too(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKNE", "x")
    error, _ = await check(tmp_path / ".env")
    assert isinstance(error, ConfigError)
    assert "DISCORD_TOKNE (from the environment)" in str(error)
    assert "did you mean DISCORD_TOKEN?" in str(error)


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("AISTATUS_LOG_LEVEL", "info", "log_level", "INFO"),
        ("AISTATUS_LOG_LEVEL", "Debug", "log_level", "DEBUG"),
        ("AISTATUS_SLACK_MODE", "HTTP", "slack_mode", "http"),
        ("AISTATUS_LOG_FORMAT", "JSON", "log_format", "json"),
    ],
    ids=["lower-level", "mixed-level", "upper-mode", "upper-format"],
)
def test_enums_are_case_insensitive(monkeypatch, key, value, field, expected):
    monkeypatch.setenv(key, value)
    assert getattr(load_settings(None), field) == expected


async def test_a_missing_env_file_named_on_the_command_line_is_an_error(tmp_path):
    code, _, err = await aistatus("--env-file", "nope.env", "check-config", env={}, cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "aistatus: --env-file (from nope.env): no such file; fix: check the path, or leave "
        "--env-file out to read ./.env when present"
    ]


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "AISTATUS_SLACK_MODE": "http"}, "SLACK_SIGNING_SECRET"),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s", "AISTATUS_SLACK_MODE": "http",
             "SLACK_SIGNING_SECRET": "x", "AISTATUS_ENCRYPTION_KEY": ENCRYPTION_KEY},
            "AISTATUS_SLACK_REDIRECT_URI",
        ),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s", "AISTATUS_SLACK_MODE": "http",
             "SLACK_SIGNING_SECRET": "x", "AISTATUS_SLACK_REDIRECT_URI": "https://x.test/r"},
            "AISTATUS_ENCRYPTION_KEY",
        ),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s", "AISTATUS_SLACK_MODE": "http",
             "SLACK_SIGNING_SECRET": "x", "AISTATUS_SLACK_REDIRECT_URI": "https://x.test/r",
             "AISTATUS_ENCRYPTION_KEY": "not-a-key"},
            "AISTATUS_ENCRYPTION_KEY",
        ),
        ({"AISTATUS_POLL_INTERVAL": "0.5"}, "AISTATUS_POLL_INTERVAL"),
    ],
    ids=["socket-without-app-token", "http-without-secret", "oauth-without-redirect",
         "oauth-without-encryption-key", "oauth-with-a-bad-key", "flood"],
)  # fmt: skip
async def test_check_config_and_run_refuse_the_same_cross_field_mistakes(tmp_path, env, key):
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    error, _ = await check(tmp_path / ".env")
    assert isinstance(error, ConfigError) and [p.key for p in error.problems] == [key]
    settings = load_settings(tmp_path / ".env")
    assert [p.key for p in rules(settings, load_catalog(None))] == [key]
    code, _, err = await aistatus("run", env={"REDIS_URL": "redis://127.0.0.1:1"}, cwd=tmp_path)
    assert code == 2 and key in err and "fix:" in err
    assert len(err.strip().splitlines()) == 1, err


async def test_a_fast_poll_is_one_warning_line_and_passes(tmp_path):
    (tmp_path / ".env").write_text("AISTATUS_POLL_INTERVAL=5\n")
    code, out = await check(tmp_path / ".env")
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "AISTATUS_POLL_INTERVAL" in warnings[0], out


async def test_connect_reaches_redis_and_each_status_page_once(tmp_path, redis_server):
    async with StatusServer() as claude, StatusServer() as dead:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        dead_url = dead.url
        pages = {"claude": claude.url, "openai": dead_url, "github": dead_url, "cursor": dead_url}
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            json.dumps({"providers": {p: {"statuspage": u} for p, u in pages.items()}})
        )
        (tmp_path / ".env").write_text(
            f"REDIS_URL={redis_server.url}\nAISTATUS_CATALOG={catalog}\nAISTATUS_READ_TIMEOUT=1\n"
        )
        code, out = await check(tmp_path / ".env", connect=True)
    lines = out.splitlines()
    assert code == 1, out  # the 404 pages
    assert next(line for line in lines if line.startswith("redis:")).startswith(
        "redis: single 7.0.15 at "
    )
    page_lines = {line.split()[3]: line for line in lines if line.startswith("reach status page ")}
    assert set(page_lines) == set(pages)
    assert f"({pages['claude']}): ok (HTTP 200" in page_lines["claude"]
    assert "FAILED" in page_lines["openai"]

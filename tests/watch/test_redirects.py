"""Redirects the watcher follows: the API key never leaves its origin (a 307 to another host
gets nothing), and the pure rules for downgrades and internal addresses."""

from __future__ import annotations

import httpx
import pytest

from bot.core.catalog import ProbeSpec
from bot.ops.statusserver import StatusServer
from bot.watch.fetch import fetch_summary
from bot.watch.probe_run import run_probe
from bot.watch.redirects import is_internal_host, redirect_problem
from tests.helpers import fixture_json

KEY = "sk-ant-api03-never-leaves-its-origin"


async def test_a_307_to_another_host_never_receives_the_api_key():
    async with StatusServer() as target, StatusServer() as elsewhere, httpx.AsyncClient() as c:
        target.add_redirect(
            "/v1/messages/count_tokens", elsewhere.url + "/v1/messages/count_tokens", status=307
        )
        spec = ProbeSpec(url=target.url + "/v1/models", expect=(200, 401), auth="anthropic")
        result = await run_probe(c, spec, api_key=KEY, deadline=5)
    assert elsewhere.requests == 0
    assert result.error == "redirect to another origin refused (credentials stay with their origin)"
    assert KEY not in repr(result)


async def test_a_probe_without_credentials_follows_a_redirect_on_loopback():
    async with StatusServer() as target, httpx.AsyncClient() as c:
        target.set_probe("ok", status=200)
        target.add_redirect("/moved", "/probe/ok", status=302)
        result = await run_probe(c, ProbeSpec(url=target.url + "/moved"), deadline=5)
    assert result.status_code == 200 and result.error is None


async def test_an_operator_named_internal_page_keeps_its_internal_redirects():
    async with StatusServer() as old, StatusServer() as new, httpx.AsyncClient() as c:
        new.set_summary(fixture_json("claude/summary_all_operational.json"))
        old.redirect_all(new.url)
        fetched = await fetch_summary(c, old.url, max_bytes=2_000_000, deadline=5)
        assert fetched.body and fetched.final_url.startswith(new.url)


@pytest.mark.parametrize(
    ("origin", "target", "problem"),
    [
        ("https://status.anthropic.com/x", "https://status.claude.com/x", None),
        ("https://status.claude.com/x", "http://status.claude.com/x", "from https to http"),
        ("https://status.claude.com/x", "https://169.254.169.254/latest/meta-data", "internal"),
        ("https://status.claude.com/x", "https://127.0.0.1:6379/", "internal"),
        ("https://status.claude.com/x", "https://10.1.2.3/", "internal"),
        ("https://status.claude.com/x", "https://[::ffff:127.0.0.1]/", "internal"),
        ("https://status.claude.com/x", "https://localhost/", "internal"),
        ("https://status.claude.com/x", "javascript:alert(1)", "non-http(s)"),
        ("http://127.0.0.1:8000/x", "http://10.0.0.2/x", None),  # the operator's own mirror
    ],
)
def test_redirect_rules(origin: str, target: str, problem: str | None):
    got = redirect_problem(origin, target)
    assert (got is None) if problem is None else (got is not None and problem in got)


def test_credentials_stay_with_their_origin():
    same = redirect_problem("https://api.x/v1/a", "https://api.x/v1/b", with_credentials=True)
    other = redirect_problem("https://api.x/v1/a", "https://evil.x/v1/a", with_credentials=True)
    assert same is None and other is not None


def test_public_names_are_not_internal():
    assert not is_internal_host("status.claude.com") and not is_internal_host("8.8.8.8")


def test_a_public_name_that_resolves_inside_is_refused_like_an_internal_address():
    origin, target = "https://status.claude.com/x", "https://status.evil.example/x"
    assert redirect_problem(origin, target, target_addresses=["93.184.216.34"]) is None
    for inside in ("127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1"):
        got = redirect_problem(origin, target, target_addresses=["93.184.216.34", inside])
        assert got is not None and "internal" in got, inside

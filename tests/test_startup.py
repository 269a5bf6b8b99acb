"""Start-up failures of `aistatus run` are one line naming the setting to change, never a
traceback: a real subprocess against a port the test holds."""

from __future__ import annotations

import json
import os
import socket

import pytest

from tests.helpers import aistatus, without_platforms

NOWHERE = "http://127.0.0.1:9"  # discard port: nothing listens, nothing leaves the machine


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("AISTATUS_HTTP_PORT", {}),
        ("AISTATUS_HOOK_PORT", {"AISTATUS_HOOK_SECRET": "s" * 32, "AISTATUS_HTTP_PORT": "0"}),
    ],
    ids=["operator-port", "hook-port"],
)
async def test_a_busy_port_is_one_line_naming_the_setting(tmp_path, redis_server, key, extra):
    catalog = tmp_path / "catalog.yaml"
    pages = ("claude", "openai", "github", "cursor")
    catalog.write_text(json.dumps({"providers": {p: {"statuspage": NOWHERE} for p in pages}}))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = without_platforms(os.environ) | {
            "REDIS_URL": redis_server.url,
            "AISTATUS_CATALOG": str(catalog),
            "AISTATUS_PROBES": "false",
            key: str(port),
            **extra,
        }
        code, _, err = await aistatus("run", env=env, cwd=tmp_path, within=30)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1:] == [
        f"aistatus: {key} (from the settings): cannot listen on 127.0.0.1:{port}: is in use "
        f"(another aistatus?); fix: stop what holds it, or set {key} to a free port (0 picks one)"
    ]

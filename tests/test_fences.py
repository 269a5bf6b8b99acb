"""The fence around the pure code, as the linter keeps it: ruff (with pyproject.toml's config) fails
a pure module that imports an IO library or reads the clock, naming the banned API, and lets an IO
module do the same. Each check lints a module's real text plus one appended function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

RUFF = Path(sys.executable).with_name("ruff")

# One module per pure folder or glob of the fence (pyproject.toml's per-file-ignores).
PURE = [
    "bot/core/assess.py",
    "bot/core/catalog.py",
    "bot/alerting/alert.py",
    "bot/delivery/retry.py",
    "bot/delivery/pacing.py",
    "bot/chat/ports.py",
    "bot/chat/commands.py",
    "bot/chat/replies.py",
    "bot/chat/slack/render.py",
    "bot/chat/discord/render.py",
    "bot/store/keys.py",
    "bot/ops/table.py",
    "bot/watch/statuspage.py",
    "bot/watch/probe.py",
    "bot/watch/redirects.py",
    "bot/ops/redact.py",
]
IO = ["bot/watch/fetch.py", "bot/watch/probe_run.py", "bot/app.py", "bot/clock.py"]

# What gets appended (lint-clean apart from the fence), and the API ruff must name.
BREACHES = {
    "import httpx": ("import httpx\n\n    return httpx", "httpx"),
    "datetime.now()": (
        "from datetime import UTC, datetime\n\n    return datetime.now(UTC)",
        "datetime.datetime.now",
    ),
    "time.monotonic()": ("import time\n\n    return time.monotonic()", "time.monotonic"),
    "import yaml": ("import yaml\n\n    return yaml", "yaml"),
}


def ruff_check(path: str, text: str) -> subprocess.CompletedProcess[str]:
    """`ruff check` of `text` as if it were the file at `path` (so its per-file config applies)."""
    return subprocess.run(
        [
            str(RUFF),
            "check",
            "--no-cache",
            "--output-format=concise",
            f"--stdin-filename={path}",
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def breached(path: str, body: str) -> str:
    text = (ROOT / path).read_text("utf-8").rstrip("\n")
    return f"{text}\n\n\ndef _breach() -> object:\n    {body}\n"


@pytest.mark.parametrize("path", PURE)
def test_a_pure_module_passes_the_fence_as_it_is(path: str):
    result = ruff_check(path, (ROOT / path).read_text("utf-8"))
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("breach", list(BREACHES))
@pytest.mark.parametrize("path", PURE)
def test_ruff_fails_a_pure_module_that_does_io_or_reads_the_clock(path: str, breach: str):
    body, api = BREACHES[breach]
    result = ruff_check(path, breached(path, body))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"TID251 `{api}` is banned" in result.stdout


@pytest.mark.parametrize("breach", list(BREACHES))
@pytest.mark.parametrize("path", IO)
def test_an_io_module_may_do_the_same(path: str, breach: str):
    body, _ = BREACHES[breach]
    result = ruff_check(path, breached(path, body))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_module_in_a_pure_folder_is_fenced_without_naming_it():
    result = ruff_check("bot/core/new_module.py", '"""New."""\n\nimport httpx\n\nCLIENT = httpx\n')
    assert result.returncode == 1 and "TID251 `httpx` is banned" in result.stdout

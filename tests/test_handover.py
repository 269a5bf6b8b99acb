"""Handover between real `aistatus run` processes (issue 11): an outage fanned out to 1,000
channels, half Slack and half Discord; mid fan-out the process is stopped (SIGTERM) or killed
(kill -9), with a second replica running or a replacement started then. The other takes its
entries over and every channel gets the alert exactly once, counted at the loopback Slack and
Discord servers. How long the handover takes is a figure of
`python -m bench handover`, logged here, never asserted."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from bot.ops.redisproc import RedisProcess
from tests.handover_rig import run_handover

log = logging.getLogger(__name__)


@pytest.mark.parametrize("standby", [True, False], ids=["replicas", "restart"])
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_a_process_stopped_mid_fan_out_loses_and_repeats_nothing_on_slack_and_discord(
    tmp_path: Path, redis_server: RedisProcess, how: signal.Signals, standby: bool
):
    # replicas: the other process runs from the start; restart: it is started at the signal.
    result = await run_handover(
        tmp_path, redis_server.url, how=how, n=1000, within=60, standby=standby
    )
    log.info(
        "%s after %d calls: exited %.2f s, next call %.2f s, longest pause %.2f s, done %.2f s",
        result.how, result.before, result.exited, result.to_next, result.longest_pause,
        result.to_done,
    )  # fmt: skip

    assert 0 < result.before < result.channels  # it was mid fan-out
    assert result.lost == (), result.logs[-3000:]
    assert result.duplicated == (), result.logs[-3000:]
    assert result.stopped_code == (0 if how is signal.SIGTERM else -signal.SIGKILL)
    assert result.survivor_code == 0, result.logs[-3000:]
    assert "Traceback" not in result.logs

"""`python -m bench handover [--quick]`: how long a 1,000-channel fan-out through real
`aistatus run` processes waits when one of them is stopped (SIGTERM) or killed (kill -9) mid-way,
and whether any channel lost or got the alert twice. IO: the rig of tests/test_handover.py
(tests/handover_rig.py): its own redis-server, the loopback Slack and Discord servers, half the
channels on each.

Two shapes: `replicas` (two processes from the start; one is signalled, the other takes its
entries over) and `restart` (one process; a replacement is started at the signal, its start-up
included). Figures are seconds from the signal, as the chat servers saw the calls arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from pathlib import Path

from bench.bench_delivery import private_redis_url
from bench.common import heading, median, secs, table
from tests.handover_rig import Handover, run_handover

CHANNELS = 1000
SIGNALS = (signal.SIGTERM, signal.SIGKILL)
SHAPES = {"replicas": True, "restart": False}


async def main(*, quick: bool) -> None:
    n = 200 if quick else CHANNELS
    repeats = 1 if quick else 3
    print(
        f"bench handover: 1 alert to {n:,} channels ({n // 2} Slack + {n // 2} Discord) through "
        f"real `aistatus run` processes, limits off; one stopped at 30 %, {repeats} run(s) each",
        flush=True,
    )
    rows = []
    async with private_redis_url() as (_, url):
        for shape, standby in SHAPES.items():
            for how in SIGNALS:
                runs: list[Handover] = []
                for _ in range(repeats):
                    with tempfile.TemporaryDirectory(prefix="aistatus-bench-") as tmp:
                        runs.append(
                            await run_handover(Path(tmp), url, how=how, n=n, standby=standby)
                        )
                print(f"  {shape} {how.name}: done", flush=True)
                rows.append(_row(shape, how, runs))
    heading(f"handover mid fan-out ({n:,} channels; median, max of {repeats})")
    print(
        table(
            [
                "shape",
                "signal",
                "-> exited",
                "-> next call",
                "longest pause",
                "-> fan-out done",
                "lost",
                "duplicates",
            ],
            rows,
        )
    )
    print(
        "-> exited: the signalled process's exit; -> next call: the first message call after "
        "that exit (made by the other process); longest pause: between message calls from "
        "the signal on; -> fan-out done: the last channel's message. restart includes the "
        "replacement's start-up."
    )


def _row(shape: str, how: signal.Signals, runs: list[Handover]) -> list[object]:
    def both(values: list[float]) -> str:
        return f"{secs(median(values))}, {secs(max(values))}"

    return [
        shape,
        "kill -9" if how is signal.SIGKILL else how.name,
        both([r.exited for r in runs]),
        both([r.to_next for r in runs]),
        both([r.longest_pause for r in runs]),
        both([r.to_done for r in runs]),
        sum(len(r.lost) for r in runs),
        sum(len(r.duplicated) for r in runs),
    ]


def run(*, quick: bool) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(quick=quick))


if __name__ == "__main__":
    raise SystemExit("usage: python -m bench handover [--quick]")

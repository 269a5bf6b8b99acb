"""`python -m bench [watch|detect|commands|delivery|handover] [--quick]`: run the benchmarks (all
of them by default). IO: each starts its own redis-server and loopback servers and stops by
itself."""

from __future__ import annotations

import argparse
import logging
import time

from bench import bench_commands, bench_delivery, bench_detect, bench_handover, bench_watch
from bench.common import REFERENCE_ROUNDS, reference_ms

BENCHES = {
    "watch": bench_watch.run,
    "detect": bench_detect.run,
    "commands": bench_commands.run,
    "delivery": bench_delivery.run,
    "handover": bench_handover.run,
}


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the chosen benchmarks in order; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="aistatus benchmarks (figures, not tests)"
    )
    parser.add_argument(
        "bench",
        nargs="*",
        metavar="{watch,detect,commands,delivery,handover}",
        help="which to run (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: fewer iterations, 1 s interval"
    )
    parser.add_argument("--log-level", default="ERROR", help="the bot's log level (default ERROR)")
    args = parser.parse_args(argv)
    unknown = [b for b in args.bench if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHES)}")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    print(
        f"machine reference: {reference_ms():.1f} ms of CPU for bench.common.reference_ms's fixed "
        f"workload (best of {REFERENCE_ROUNDS}): CPU figures scale with it across machines",
        flush=True,
    )
    for name in args.bench or list(BENCHES):
        BENCHES[name](quick=args.quick)
    print(f"\n(bench done in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

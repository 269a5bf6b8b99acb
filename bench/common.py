"""Shared parts of the benchmarks: a private redis-server in a temp dir, a loopback status server on
a thread of its own, the bench catalog and payloads, a manual clock, percentiles and an aligned
table. IO (starts processes and sockets, on loopback only)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import math
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis

from bot.catalog_file import shipped_data
from bot.core.catalog import Catalog, merge, parse_catalog
from bot.ops.demo import fixture
from bot.ops.redisproc import RedisProcess
from bot.ops.statusserver import StatusServer
from bot.store.connect import connect

T = TypeVar("T")

OPERATIONAL = "claude/summary_all_operational.json"
INVESTIGATING = "claude/summary_incident_investigating.json"
RECOVERED = "claude/summary_recovered.json"
CALL_TIMEOUT = 10.0  # seconds: the longest we wait for the server thread to do anything
REFERENCE_ROUNDS = 5


def reference_ms() -> float:
    """CPU milliseconds (best of REFERENCE_ROUNDS) of one fixed pure-Python workload of the kind
    the bot does (a status payload through JSON, dicts, strings): how fast this machine is, so
    CPU figures from different machines can be compared (divide by it). Seen here: the same
    code measured 2x apart on two machines of the same kind."""
    payload = fixture_json(INVESTIGATING)
    best = math.inf
    for _ in range(REFERENCE_ROUNDS):
        started = time.process_time()
        for i in range(500):
            page = json.loads(json.dumps(payload))
            names = {c["id"]: f"{i}:{c['name']}:{c['status']}" for c in page["components"]}
            "|".join(sorted(names.values()))
        best = min(best, time.process_time() - started)
    return best * 1000


def fixture_json(name: str) -> Any:
    """A shipped real status-page payload (never modified)."""
    return fixture(name)


# -- processes and servers ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[Redis]:
    """A real redis-server of the bench's own (unix socket + AOF in a temp dir, no TCP port),
    stopped and deleted on exit; yields a client made by `bot.store.connect`."""
    with tempfile.TemporaryDirectory(prefix="aistatus-bench-") as tmp:
        proc = RedisProcess(Path(tmp) / "redis")
        await asyncio.to_thread(proc.start)
        client = connect(proc.url)
        try:
            await client.ping()
            yield client
        finally:
            await client.aclose()
            await asyncio.to_thread(proc.stop)


class ServerThread:
    """A `StatusServer` on 127.0.0.1 running on its own thread and event loop, so the main
    thread's CPU clock (`time.thread_time`) counts the watcher's work and not the page's.
    Use `call(fn, ...)` to touch the server (it runs on the server's loop, and waits)."""

    def __init__(self) -> None:
        self.server = StatusServer("127.0.0.1")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> ServerThread:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as e:
                self._error = e
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.server.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="bench-status-server", daemon=True)
        self._thread.start()
        if not ready.wait(CALL_TIMEOUT):
            raise RuntimeError("the loopback status server did not start")
        if self._error is not None:
            raise RuntimeError(f"the loopback status server failed: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the server's thread and return its result (bounded wait)."""
        assert self._loop is not None, "not started"
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as e:
                done.set_exception(e)

        self._loop.call_soon_threadsafe(job)
        return done.result(CALL_TIMEOUT)


# -- catalog and payloads -------------------------------------------------------------------------


def fake_component(i: int) -> str:
    """A Statuspage-like 12-character component id for the i-th extra bench surface."""
    return f"bnch{i:08d}"


def bench_data(page_url: str) -> dict[str, Any]:
    """The shipped catalog data with Claude's page on loopback and nothing else watched (no
    probes, no canaries)."""
    data = shipped_data()
    data = merge(data, {"providers": {"claude": {"statuspage": page_url}}})
    for s in data["surfaces"].values():
        s.pop("probes", None)
        if s["provider"] != "claude":
            s.pop("official", None)
    data["canaries"] = []
    return data


def bench_catalog(page_url: str, *, extra_surfaces: int = 0) -> Catalog:
    """`bench_data` plus `extra_surfaces` Claude surfaces `bench-NN` read from fake components."""
    data = bench_data(page_url)
    for i in range(extra_surfaces):
        data["surfaces"][f"bench-{i + 1:02d}"] = {
            "name": f"Bench surface {i + 1}",
            "provider": "claude",
            "official": {"component": fake_component(i)},
        }
    return parse_catalog(data, source="bench")


def with_fake_components(payload: dict[str, Any], extra: int) -> dict[str, Any]:
    """A copy of a summary payload with `extra` more components, each in claude.ai's status, so
    the extra surfaces change whenever the real ones do."""
    out = copy.deepcopy(payload)
    template = next(c for c in out["components"] if c["id"] == "rwppv331jlwc")
    for i in range(extra):
        out["components"].append(
            {**template, "id": fake_component(i), "name": f"Bench component {i + 1}"}
        )
    return out


def incidents_after(investigating: dict[str, Any]) -> dict[str, Any]:
    """An incidents.json in which the fixture's open incident is resolved: what the watcher
    fetches (fact 2) when the incident vanishes from summary.json."""
    incident = copy.deepcopy(investigating["incidents"][0])
    when = "2026-09-22T06:00:00.000Z"
    update = {
        **incident["incident_updates"][0],
        "id": "benchresolved",
        "status": "resolved",
        "body": "This incident has been resolved.",
        "created_at": when,
        "updated_at": when,
        "display_at": when,
    }
    incident.update(
        status="resolved",
        resolved_at=when,
        updated_at=when,
        incident_updates=[update, *incident["incident_updates"]],
    )
    return {"page": investigating["page"], "incidents": [incident]}


def as_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# -- Redis server-side counters --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """What redis-server itself counted: script calls (EVALSHA + EVAL), every other command except
    INFO, and its CPU seconds (user + sys)."""

    scripts: int
    commands: int
    cpu: float

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            self.scripts - other.scripts, self.commands - other.commands, self.cpu - other.cpu
        )


async def server_counters(redis: Redis) -> ServerCounters:
    """`INFO commandstats` and `INFO cpu` of the server behind `redis`."""
    stats = await redis.info("commandstats")
    cpu = await redis.info("cpu")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    scripts = calls.get("evalsha", 0) + calls.get("eval", 0)
    commands = sum(n for name, n in calls.items() if name != "info")
    return ServerCounters(
        scripts, commands, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    )


# -- figures ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float, digits: int = 3) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.{digits}f} ms"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f} µs"


def secs(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds:.2f} s"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 96 - len(title)), flush=True)

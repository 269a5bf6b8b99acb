"""The Redis client every store module shares, built from REDIS_URL: a single server, a Redis
Cluster or a Sentinel-managed master (redis-py's own clients), with bounded retries and backoff
so restarts and failovers are followed without a restart of the bot. IO (the parse is pure)."""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    ReadOnlyError,
    TimeoutError,
)

from bot.backoff import Backoff
from bot.errors import ConfigError

log = logging.getLogger(__name__)

# A restart of a local redis-server takes well under a second; 6 retries with backoff
# 0.05, 0.1, 0.2, 0.4, 0.8, 1.0 s ride through ~2.5 s of downtime before the call raises.
RETRIES = 6
BACKOFF_BASE_S = 0.025
BACKOFF_CAP_S = 1.0
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 30
# A Sentinel failover (down-after + election + promotion) takes seconds: its client retries longer.
SENTINEL_RETRIES = 12
# ReadOnlyError: the master we write to was demoted (a failover); a retry on a fresh connection
# reaches the new master (Sentinel re-discovers it; Cluster follows MOVED).
RETRY_ON = (ConnectionError, TimeoutError, ReadOnlyError)

# Sentinel: a write that records a chat call (or what decides one) waits this long for the
# replica to acknowledge it (WAIT 1, in the write's own round trip). On loopback or a LAN the
# answer takes about a millisecond; the bound only matters while the replica is away.
REPLICA_ACK_MS = 200
# A write no replica acknowledged is tried again on a fresh connection to the master the
# sentinels name (the old master keeps taking writes for a while after a failover, and a
# failover under way takes a second or two to show): 5 tries, ~2.5 s in all. Then the replica
# is away, the write is accepted, and writes stop waiting for REPLICA_AWAY_S.
REPLICA_TRIES = 5
REPLICA_AWAY_S = 60.0

FIX = (
    "fix: use redis://host:6379/0, rediss://…, unix:///path/redis.sock, "
    "redis+cluster://host:7000,host:7001/ or redis+sentinel://host:26379,host2:26379/mymaster/0"
)

Kind = Literal["single", "cluster", "sentinel"]


@dataclass(frozen=True, slots=True)
class Target:
    """What a REDIS_URL names: the topology, its seed addresses and (sentinel) the master."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_url(url: str) -> Target:
    """The topology `url` names. Pure. Raises: ConfigError naming REDIS_URL and the fix."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in {"redis", "rediss", "unix"}:
        return Target("single", url)
    if scheme not in {"redis+cluster", "redis+sentinel"}:
        raise _bad(url, f"unknown scheme {scheme + '://' if scheme else '(none)'}")
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    nodes = tuple(_node(url, h) for h in hosts.split(",") if h)
    if not nodes:
        raise _bad(url, "no host:port")
    credentials = {"username": unquote(user) or None, "password": unquote(password) or None}
    path = [p for p in parts.path.split("/") if p]
    if scheme == "redis+cluster":
        if path:
            raise _bad(url, "a cluster has only db 0: no path after the hosts")
        return Target("cluster", url, nodes, **credentials)
    if not path or len(path) > 2:
        raise _bad(url, "name the master: redis+sentinel://host:26379/<master-name>[/<db>]")
    if len(path) == 2 and not path[1].isdigit():
        raise _bad(url, f"db must be a number, not {path[1]!r}")
    db = int(path[1]) if len(path) == 2 else 0
    return Target("sentinel", url, nodes, master=unquote(path[0]), db=db, **credentials)


def connect(url: str, *, retries: int = RETRIES, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A redis-py asyncio client for `url` (see `parse_url`); connects lazily.

    Connection, timeout and read-only errors are retried with exponential backoff on a fresh
    connection (after a failover that is the new master), and scripts registered on it reload
    themselves after a restart (NOSCRIPT). Replies stay bytes. A cluster client is typed as
    `Redis`: the store uses only the commands both share.
    Raises: ConfigError when the URL is malformed.
    """
    target = parse_url(url)
    common = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "decode_responses": False,
    }
    if target.kind == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            retry=_retry(retries),
            retry_on_error=list(RETRY_ON),
            **common,  # type: ignore[arg-type]
        )
        return cluster  # type: ignore[return-value]
    if target.kind == "sentinel":
        sentinel = Sentinel(list(target.nodes), **common)  # type: ignore[arg-type]
        master: Redis = sentinel.master_for(
            target.master,
            db=target.db,
            username=target.username,
            password=target.password,
            retry=_retry(max(retries, SENTINEL_RETRIES)),
            retry_on_error=list(RETRY_ON),
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            **common,
        )
        return master
    try:
        return Redis.from_url(
            url,
            retry=_retry(retries),
            retry_on_error=list(RETRY_ON),
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            **common,
        )
    except ValueError as e:
        raise _bad(url, str(e)) from e


async def describe(redis: Redis) -> str:
    """One line saying what `redis` is connected to (check-config --connect).
    Raises: redis errors when it cannot be reached."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        masters = redis.get_primaries()
        return f"cluster with {len(masters)} master{'s' if len(masters) != 1 else ''}"
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        manager = pool.sentinel_manager
        host, port = await manager.discover_master(pool.service_name)
        replicas = await manager.discover_slaves(pool.service_name)
        n = len(replicas)
        return (
            f"sentinel master {pool.service_name} at {host}:{port} "
            f"({n} replica{'s' if n != 1 else ''})"
        )
    info = await redis.info("server")
    kw = pool.connection_kwargs
    where = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    return f"single {info.get('redis_version', '?')} at {where}"


async def run_pipelined(
    redis: Redis,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    *,
    acknowledged: bool = False,
) -> list[Any]:
    """Run `script` once per (keys, args), in order, in one pipelined round trip of EVALSHA
    (redis-py's pipelined `Script` asks SCRIPT EXISTS first: a second round trip every time);
    a server that lacks the script gets it loaded and the batch runs again.
    `acknowledged`: see `run_acknowledged` (the scripts must be safe to run twice).
    Raises: redis errors (the first a call answered).
    """
    pool = redis.connection_pool if not isinstance(redis, RedisCluster) else None
    if acknowledged and isinstance(pool, SentinelConnectionPool):
        return await _on_a_replica_too(redis, pool, script, calls)
    replies, _ = await _evalsha(redis, script, calls, wait=False)
    return replies


async def _evalsha(
    redis: Redis,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    *,
    wait: bool,
) -> tuple[list[Any], int | None]:
    """EVALSHA of each call (then `WAIT 1` when `wait`) in one pipelined round trip: (the
    replies; the replicas that acknowledged, None without `wait`). A NOSCRIPT (a restarted or
    flushed server) loads the script and runs the batch again: the scripts are safe to run
    twice (on a cluster, calls on the other masters did run). Raises: redis errors."""

    async def send() -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            for script_keys, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(script_keys), *script_keys, *args)
            if wait:
                pipe.execute_command("WAIT", 1, REPLICA_ACK_MS)
            return list(await pipe.execute())

    try:
        replies = await send()
    except NoScriptError:
        await redis.script_load(script.script)
        replies = await send()
    acked = int(replies.pop()) if wait else None
    return replies, acked


async def run_acknowledged(
    redis: Redis, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """Run a write `script` whose loss in a failover would repeat or lose a chat message (a
    transition's commit, a delivery entry, the `sending` marker, "done"). Its reply.

    With Sentinel the write and `WAIT 1` go in one round trip, so the answer counts only once
    the replica has the write too: a promoted replica then knows everything a chat call was
    based on. Replication is asynchronous, and after `SENTINEL FAILOVER` the old master takes
    writes until the sentinels reconfigure it, while pooled connections still reach it: a
    write there that no replica acknowledged, once the sentinels name another master, is run
    again on the new one (the pool drops its idle connections on the change). The scripts are
    safe to run twice (commit's token, enqueue's `fanned` marker, the handled seq). With the
    master unchanged and its replica away the write is accepted, and writes stop waiting for
    `REPLICA_AWAY_S`. A single server or a cluster runs the script as it is.
    Raises: redis errors.
    """
    pool = redis.connection_pool if not isinstance(redis, RedisCluster) else None
    if isinstance(pool, SentinelConnectionPool):
        return (await run_pipelined(redis, script, [(keys, args)], acknowledged=True))[0]
    return await script(keys=keys, args=args)


class Batched:
    """An acknowledged write script (`run_acknowledged`) called by many tasks at once, sent as
    few round trips: while one batch is on its way, the calls made meanwhile wait and go
    together as the next (group commit), at most `most` a batch. Each call is still its own
    atomic script run, in the order made, with its own reply; an error (Redis away, refusing)
    fails the whole batch, and each caller hears it; a caller cancelled while waiting just
    stops waiting (its call may still run). Measured (bench delivery): a lane's `begin`
    and `complete` went from one round trip each to one per batch of up to `workers` lanes.
    The scripts must be safe to run twice (a Sentinel write no replica acknowledged is run
    again on the new master)."""

    def __init__(self, redis: Redis, script: AsyncScript, *, most: int = 128) -> None:
        self._redis = redis
        self._script = script
        self._most = most
        self._queue: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for (keys, args). Raises: redis errors."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((keys, args, future))
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            if sender is not None and sender.get_loop() is not loop:  # a new event loop
                self._queue = [q for q in self._queue if q[2].get_loop() is loop]
            self._sender = loop.create_task(self._send(), name="redis-batch")
        return await future

    async def _send(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._most], self._queue[self._most :]
            waiting = [(k, a, f) for k, a, f in batch if not f.done()]  # not cancelled
            if not waiting:
                continue
            try:
                replies = await run_pipelined(
                    self._redis, self._script, [(k, a) for k, a, _ in waiting], acknowledged=True
                )
            except Exception as e:  # Redis away or refusing: each caller of the batch hears it
                for _, _, future in waiting:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, _, future), reply in zip(waiting, replies, strict=True):
                if not future.done():
                    future.set_result(reply)


_REPLICA_BACKOFF = Backoff(0.1, 1.0)
# Sentinel pools whose replica did not acknowledge a write: until when writes stop waiting.
_replica_away: weakref.WeakKeyDictionary[SentinelConnectionPool, float] = (
    weakref.WeakKeyDictionary()
)


async def _on_a_replica_too(
    redis: Redis,
    pool: SentinelConnectionPool,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
) -> list[Any]:
    loop = asyncio.get_running_loop()
    replies: list[Any] = []
    for tries in range(1, REPLICA_TRIES + 1):
        wait = loop.time() >= _replica_away.get(pool, 0.0)
        replies, acked = await _evalsha(redis, script, calls, wait=wait)
        if not wait:
            return replies
        if acked is not None and acked >= 1:
            if _replica_away.pop(pool, None) is not None:
                log.info("redis: the replica acknowledges writes again")
            return replies
        if tries == REPLICA_TRIES:
            break
        # Perhaps a demoted master on a pooled connection, or a failover under way: ask the
        # sentinels again and drop the idle connections, so the next try reaches their master.
        await pool.get_master_address()
        await pool.disconnect(inuse_connections=False)
        await asyncio.sleep(_REPLICA_BACKOFF.window(tries))
    if pool not in _replica_away:
        log.warning(
            "redis: the master's replica acknowledges no write (%d tries): a failover now "
            "could lose the latest writes; writes wait for it again every %.0f s",
            REPLICA_TRIES, REPLICA_AWAY_S,
        )  # fmt: skip
    _replica_away[pool] = loop.time() + REPLICA_AWAY_S
    return replies


def _retry(retries: int) -> Retry:
    return Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), retries=retries)


def _node(url: str, hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise _bad(url, f"{hostport!r} is not host:port")
    return host.strip("[]"), int(port)


def _bad(url: str, why: str) -> ConfigError:
    shown = re.sub(r"//[^@/]*@", "//", url)  # never echo a password
    return ConfigError(f"REDIS_URL {shown!r}: {why}; {FIX}", key="REDIS_URL")

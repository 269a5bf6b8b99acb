"""Real Redis topologies on loopback for the tests: a 3-master Redis Cluster and a Sentinel setup
(1 master, 1 replica, 1 sentinel). IO: child redis-servers, each with its own directory."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bot.ops.redisproc import RedisProcess, find_redis_server, free_port

MASTER = "mymaster"


def wait_for(what: str, ok: Callable[[], bool], *, within: float = 20.0) -> None:
    """Poll `ok` until it holds. Raises: AssertionError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if ok():
                return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)


class Topology:
    """Some redis-servers started together and stopped together."""

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start every server; stops what started when one cannot."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise


@dataclass
class Cluster(Topology):
    """Three masters, no replicas, slots spread by `redis-cli --cluster create`."""

    root: Path
    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes if n.port is not None]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/"

    def _start(self) -> None:
        for i in range(3):
            node = RedisProcess(
                self.root / f"node{i}",
                port=cluster_port(),
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "2000"),
            )  # fmt: skip
            node.start()
            self.nodes.append(node)
        cli = shutil.which("redis-cli") or str(Path(find_redis_server()).with_name("redis-cli"))
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for port in self.ports:
            wait_for(
                f"cluster_state:ok on {port}",
                lambda p=port: client(p).cluster("info").get("cluster_state") == "ok",
            )

    def node_of(self, key: str) -> RedisProcess:
        """The master serving `key`'s hash slot."""
        slot = int(client(self.ports[0]).execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in client(self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                port = int(master[1])
                return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"no master serves slot {slot}")

    def start_again(self, node: RedisProcess) -> None:
        """Start a stopped master on its port and files (nodes.conf, AOF), until every master
        says cluster_state:ok."""
        node.start()
        for port in self.ports:
            wait_for(
                f"cluster_state:ok on {port} after a restart",
                lambda p=port: client(p).cluster("info").get("cluster_state") == "ok",
                within=30,
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@dataclass
class SentinelSet(Topology):
    """A master, its replica and one sentinel watching them (quorum 1, down after 1 s)."""

    root: Path
    servers: list[RedisProcess] = field(default_factory=list)
    sentinel_port: int = 0
    _sentinel: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER}/0"

    def master_port(self) -> int:
        _host, port = client(self.sentinel_port).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER
        )
        return int(port)

    def replica_port(self) -> int:
        master = self.master_port()
        return next(s.port for s in self.servers if s.port is not None and s.port != master)

    def _start(self) -> None:
        master = RedisProcess(self.root / "master", port=free_port())
        master.start()
        replica = RedisProcess(
            self.root / "replica",
            port=free_port(),
            extra_args=("--replicaof", "127.0.0.1", str(master.port)),
        )
        replica.start()
        self.servers = [master, replica]
        self.sentinel_port = free_port()
        sdir = self.root / "sentinel"
        sdir.mkdir(parents=True, exist_ok=True)
        conf = sdir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {sdir.resolve()}\n"
            f"logfile {(sdir / 'sentinel.log').resolve()}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        self._sentinel = subprocess.Popen(
            [find_redis_server(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.wait_settled()

    def wait_settled(self) -> None:
        """Until the sentinel knows the master and its replica, and the replica is in sync."""

        def settled() -> bool:
            s = client(self.sentinel_port)
            replicas = s.execute_command("SENTINEL", "REPLICAS", MASTER)
            if len(replicas) != 1:
                return False
            info = client(self.replica_port()).info("replication")
            return info.get("role") == "slave" and info.get("master_link_status") == "up"

        wait_for("sentinel sees the master and its replica in sync", settled, within=30)

    def failover(self) -> int:
        """SENTINEL FAILOVER; returns the new master's port once it takes writes."""
        old = self.master_port()
        client(self.sentinel_port).execute_command("SENTINEL", "FAILOVER", MASTER)
        wait_for("a new master", lambda: self.master_port() != old)
        new = self.master_port()
        wait_for("the new master takes writes", lambda: client(new).info()["role"] == "master")
        return new

    def flush(self) -> None:
        """Empty the master (and so its replica), once a failover before has settled."""
        self.wait_settled()
        client(self.master_port()).flushall()
        wait_for(
            "the replica caught up",
            lambda: client(self.replica_port()).dbsize() == 0,
        )

    def stop(self) -> None:
        if self._sentinel is not None and self._sentinel.poll() is None:
            self._sentinel.terminate()
            self._sentinel.wait(10)
        for server in self.servers:
            server.stop()

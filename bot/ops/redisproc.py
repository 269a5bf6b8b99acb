"""A private `redis-server` owned by this process: unix socket and AOF under a data directory.
IO. Used by `aistatus run` when no REDIS_URL is set, and by the test fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError

INSTALL_HINT = (
    "no redis-server found: install one (Debian/Ubuntu: `sudo apt-get install -y redis-server`, "
    "macOS: `brew install redis`) or set REDIS_URL to an existing Redis"
)


def _owner_only(top: Path) -> None:
    """Directories 0700 and files 0600 under `top` (and `top` itself): the AOF holds state."""
    os.chmod(top, 0o700)
    for path in top.rglob("*"):
        if path.is_symlink() or path.is_socket():
            continue
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def find_redis_server(binary: str = "redis-server") -> str:
    """Path of the redis-server binary. Raises: ConfigError with the install hint."""
    path = shutil.which(binary)
    if path is None:
        raise ConfigError(INSTALL_HINT, key="AISTATUS_REDIS_SERVER")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    """One redis-server child. `url` is what redis-py connects to.

    port=None: unix socket only (no TCP), the default for `aistatus run`.
    """

    data_dir: Path
    binary: str = "redis-server"
    port: int | None = None
    appendonly: bool = True
    # More `--option value` arguments (the test topologies: cluster mode, replicaof).
    extra_args: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path.resolve()}?db=0"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers PING. Raises: ConfigError if it does not come up."""
        binary = find_redis_server(self.binary)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owner_only(self.data_dir)  # a directory made by an older version may be 0755 / 0644
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            binary,
            "--dir", str(self.data_dir.resolve()),
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--port", str(self.port or 0),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
            *self.extra_args,
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,  # the AOF, its manifest and the log: 0600, in 0700 directories
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.02)
        log = self.data_dir / "redis.log"
        tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        self.stop()
        raise ConfigError(f"redis-server did not start in {self.data_dir}: {tail.strip()}")

    def answers(self) -> bool:
        """True when a redis-server already answers PING at this data dir's socket (or port)."""
        return self._answers()

    def _answers(self) -> bool:
        try:
            if self.port is not None:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.2)
                s.connect(str(self.socket_path))
        except OSError:
            return False
        with s:
            try:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful SIGTERM (redis flushes the AOF), then SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_binary() -> str:
    return os.environ.get("AISTATUS_REDIS_SERVER", "redis-server")

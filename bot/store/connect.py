"""The Redis client every store module shares: redis-py asyncio from a URL, with bounded retries and
exponential backoff so a restarted redis-server is reconnected to transparently. IO."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

# A restart of a local redis-server takes well under a second; 6 retries with backoff
# 0.05, 0.1, 0.2, 0.4, 0.8, 1.0 s ride through ~2.5 s of downtime before the call raises.
RETRIES = 6
BACKOFF_BASE_S = 0.025
BACKOFF_CAP_S = 1.0
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 30


def connect(url: str, *, retries: int = RETRIES, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A redis-py asyncio client for `url` (redis://, rediss://, unix://); connects lazily.

    Connection and timeout errors are retried with exponential backoff on a fresh connection, and
    scripts registered on it reload themselves after a restart (NOSCRIPT). Replies stay bytes.
    Raises: ValueError when the URL scheme is not one redis-py knows.
    """
    return Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), retries=retries),
        retry_on_error=[ConnectionError, TimeoutError],
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        decode_responses=False,
    )

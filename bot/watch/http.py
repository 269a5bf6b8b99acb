"""How an HTTP call that got no usable answer is worded: short, secret-free reasons shared by the
status-page fetch and the probes. Reads httpx's exception tree; does no IO itself.
"""

from __future__ import annotations

import httpx


def deadline_reason(deadline: float | None) -> str:
    """The reason given when a whole call ran past its `deadline` (seconds)."""
    return f"no answer within {deadline:g} s" if deadline is not None else "timeout"


def transport_reason(exc: BaseException) -> str:
    """A short, secret-free reason for an httpx error (never the exception text, which may carry
    a URL with a query string)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "read timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.ConnectError):
        return _connect_reason(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed mid-answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection lost"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "invalid URL"
    if isinstance(exc, httpx.DecodingError):
        return "undecodable body"
    return f"HTTP client error ({type(exc).__name__})"


def _connect_reason(exc: BaseException) -> str:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(seen) < 8:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in seen:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    text = " ".join(str(e) for e in seen).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "connection failed"

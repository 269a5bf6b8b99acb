"""Which redirects the watcher follows: never https -> http, never from a public origin to a
loopback, link-local (169.254/16, cloud metadata), private or reserved address, and never
across origins with credentials. Pure: URL and address arithmetic only, no DNS, no IO.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_internal_host(host: str) -> bool:
    """A host name or IP literal that points inside: loopback, link-local, private, reserved,
    unspecified, or a `localhost` name. A public name is not resolved here (no DNS)."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def redirect_problem(
    origin: str,
    target: str,
    *,
    with_credentials: bool = False,
    target_addresses: Sequence[str] = (),
) -> str | None:
    """Why the redirect from `origin` to `target` is refused; None when it may be followed.
    `target_addresses`: what the target's name resolved to (the caller's DNS lookup).

    Rules: 1) only http(s) targets; 2) https never downgrades to http; 3) a public origin never
    leads to an internal host, whether the target names it or only resolves to it (an operator
    who names an internal URL in the catalog keeps its internal redirects); 4) with
    credentials, the target must be the same origin (the key never leaves it).
    """
    o_scheme, o_host, _ = _origin(origin)
    t_scheme, t_host, _ = _origin(target)
    if t_scheme not in ("http", "https") or not t_host:
        return "redirect to a non-http(s) URL refused"
    if o_scheme == "https" and t_scheme == "http":
        return "redirect from https to http refused"
    inside = is_internal_host(t_host) or any(is_internal_host(a) for a in target_addresses)
    if inside and not is_internal_host(o_host):
        return "redirect to an internal address refused"
    if with_credentials and _origin(origin) != _origin(target):
        return "redirect to another origin refused (credentials stay with their origin)"
    return None

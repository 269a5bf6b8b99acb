"""Supervises the Discord gateway connection: restarts it with backoff when discord.py gives up
(a failed first connection, an event its parser cannot read), stops the bot for a close code no
restart can fix, and reports the state for /readyz and /metrics. IO (discord.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
import discord

from bot.chat.discord.client import reset_reconnect_log

log = logging.getLogger(__name__)

# Close codes discord.py will not resume and a restart of this process cannot fix either:
# 4004 authentication failed (reset token), 4010 invalid shard, 4011 sharding required,
# 4012 invalid API version, 4013 invalid intents, 4014 disallowed (privileged) intents.
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})
_NETWORK = (OSError, aiohttp.ClientError, TimeoutError, discord.HTTPException)


class GatewaySupervisor:
    """Runs `client.connect()` until the client is closed. `on_fatal(reason)` is called once for
    a fatal close code (the bot exits non-zero so its service manager restarts it, or a person
    fixes the token); every other failure is logged when it starts (and when it changes) and
    retried with exponential backoff; reconnection is logged once."""

    def __init__(
        self,
        client: discord.Client,
        *,
        on_fatal: Callable[[str], None],
        first_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.client = client
        self.on_fatal = on_fatal
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.connected = False  # READY or RESUMED seen, and no disconnect since
        self.detail = "connecting"
        self._failures = 0  # restarts since the last READY; reset when it comes
        self._last_error = ""
        client.on_ready = self._on_up  # type: ignore[attr-defined]
        client.on_resumed = self._on_up  # type: ignore[attr-defined]
        client.on_disconnect = self._on_down  # type: ignore[attr-defined]

    def check(self) -> tuple[bool, str]:
        """(connected, detail) for /readyz and the aistatus_chat_connected gauge."""
        return self.connected, "connected" if self.connected else self.detail

    async def _on_up(self) -> None:
        if self._failures:
            log.warning("Discord gateway connected again after %d restart(s)", self._failures)
        reset_reconnect_log()
        self.connected, self.detail = True, "connected"
        self._failures, self._last_error = 0, ""

    async def _on_down(self) -> None:
        if not self.detail.startswith("stopped"):  # dispatched after a fatal close, too
            self.connected, self.detail = False, "reconnecting"

    async def run(self) -> None:
        """Until the client is closed. Never raises (but for cancellation)."""
        client = self.client
        while not client.is_closed():
            try:
                await client.connect(reconnect=True)
                why = "the gateway connection ended"
            except asyncio.CancelledError:
                raise
            except discord.PrivilegedIntentsRequired:
                self._fatal(4014)
                return
            except discord.ConnectionClosed as e:
                if e.code in FATAL_CLOSE_CODES:
                    self._fatal(e.code)
                    return
                why = f"closed with code {e.code}"
            except _NETWORK as e:
                why = f"{type(e).__name__}: {e}"[:200]
            except Exception as e:  # discord.py gave up on something it does not handle
                first = client.ws is None and isinstance(e.__context__, _NETWORK)
                cause = e.__context__ if first else e  # 2.7 fails a failed first connect so
                why = f"{type(cause).__name__}: {cause}"[:200]
                if not first and why != self._last_error:
                    log.error("Discord gateway failed (%s)", why, exc_info=e)
                    self._last_error = why
            if client.is_closed():  # our own stop, or discord.py closed itself
                self.connected, self.detail = False, "stopped"
                return
            await self._restart(why)

    async def _restart(self, why: str) -> None:
        self.connected, self.detail = False, f"reconnecting ({why})"
        delay = min(self.max_delay, self.first_delay * 2.0**self._failures)
        self._failures += 1
        if why != self._last_error:
            log.warning("Discord gateway down (%s); restarting it in %.1fs", why, delay)
            self._last_error = why
        ws = self.client.ws
        if ws is not None and ws.open:  # a session the parser choked on: start a fresh one
            with contextlib.suppress(Exception):
                await ws.close(code=4000)
        await asyncio.sleep(delay)

    def _fatal(self, code: int) -> None:
        self.connected, self.detail = False, f"stopped: close code {code}"
        reason = f"Discord closed the gateway with code {code}, which no reconnect can fix"
        if code == 4004:
            reason += " (DISCORD_TOKEN was reset or is wrong)"
        elif code in (4013, 4014):
            reason += " (the bot asks for intents it may not use)"
        log.error("%s; stopping", reason)
        self.on_fatal(reason)

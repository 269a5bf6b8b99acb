"""The one error tree of aistatus. Pure: no IO.

`CommandError.user_message` is shown to the user; any other exception reaching a handler is a bug
and is logged with its traceback.
"""

from __future__ import annotations


class AistatusError(Exception):
    """Root of every error aistatus raises on purpose."""


class ConfigError(AistatusError):
    """A setting or the catalog is invalid. The message names the file, the key and the value."""

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        self.source = source
        self.key = key
        super().__init__(message)


class ProbeError(AistatusError):
    """A status page or synthetic check could not be read. `reason` is short and loggable;
    `retry_after`: seconds the server asked us to wait (HTTP 429 / 503 with Retry-After)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class DeliveryError(AistatusError):
    """A chat API refused or failed a call.

    permanent: retrying cannot help (channel gone, token revoked): the subscription is disabled.
    retry_after: seconds the platform asked us to wait (HTTP 429), else None (use backoff).
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(reason)


class CommandError(AistatusError):
    """A user's command is wrong; `user_message` is the one-line answer they see."""

    def __init__(self, user_message: str, *, usage: str = "") -> None:
        self.user_message = user_message
        self.usage = usage
        super().__init__(user_message)

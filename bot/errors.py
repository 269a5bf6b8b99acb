"""The one error tree of aistatus. Pure: no IO.

    AistatusError            every error aistatus raises on purpose
     ├── ConfigError          a setting or the catalog is invalid (fails start-up, loudly)
     ├── ProbeError           a status page or synthetic check could not be read
     ├── DeliveryError        a chat API refused or failed a call; `kind` says what to do next
     │                        (ErrorKind: transient | rate_limited | permanent | parent_gone)
     └── CommandError         a user's command is wrong; `user_message` is shown to the user
          ├── UnknownVerb, UnknownSurface, BadDuration     (bot.chat.commands)
          └── BadFlag, MissingArgument, ExtraArgument      (bot.chat.commands)

`CommandError.user_message` is shown to the user; any other exception reaching a handler is a bug
and is logged with its traceback.
"""

from __future__ import annotations

from enum import StrEnum


class AistatusError(Exception):
    """Root of every error aistatus raises on purpose."""


class ConfigError(AistatusError):
    """A setting or the catalog is invalid. The message names the file, the key and the value."""

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        self.source = source
        self.key = key
        super().__init__(message)


class ProbeError(AistatusError):
    """A status page or synthetic check could not be read. `reason` is short and loggable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ErrorKind(StrEnum):
    """What a failed chat call means for the delivery engine (bot.delivery.retry.next_step)."""

    TRANSIENT = "transient"  # 5xx, timeout, connection: back off and try again
    RATE_LIMITED = "rate_limited"  # 429: wait exactly `retry_after`, then try again
    PERMANENT = "permanent"  # channel gone, no access, token revoked: disable the subscription
    PARENT_GONE = "parent_gone"  # the message to edit or thread under was deleted: post anew


class DeliveryError(AistatusError):
    """A chat API refused or failed a call.

    kind: what the caller does next (see ErrorKind). reason: short and loggable, the platform's
    own error code where it has one ("channel_not_found", "discord 503 0: ..."), stored in dead
    letters. retry_after: seconds the platform asked us to wait; set exactly for RATE_LIMITED.
    Raises: ValueError when `retry_after` and `kind` disagree.
    """

    def __init__(
        self,
        reason: str,
        kind: ErrorKind = ErrorKind.TRANSIENT,
        *,
        retry_after: float | None = None,
    ) -> None:
        if (retry_after is not None) != (kind is ErrorKind.RATE_LIMITED):
            raise ValueError(f"retry_after is for rate_limited errors only, got {kind}")
        self.reason = reason
        self.kind = kind
        self.retry_after = retry_after
        super().__init__(reason)


class CommandError(AistatusError):
    """A user's command is wrong; `user_message` is the one-line answer they see."""

    def __init__(self, user_message: str, *, usage: str = "") -> None:
        self.user_message = user_message
        self.usage = usage
        super().__init__(user_message)

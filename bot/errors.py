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

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class AistatusError(Exception):
    """Root of every error aistatus raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the settings: the key, where it came from, what is wrong and the fix.
    `warning`: worth a line, not a refusal."""

    key: str
    source: str  # "the environment", the .env path, or "the settings" for a cross-field rule
    message: str
    fix: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.key} (from {self.source}): {self.message}; fix: {self.fix}"


class ConfigError(AistatusError):
    """A setting or the catalog is invalid. The message names the file, the key and the value;
    `problems` holds every problem found at once (one line each), when there are several."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        key: str = "",
        problems: Sequence[ConfigProblem] = (),
    ) -> None:
        self.source = source
        self.key = key
        self.problems = tuple(problems)
        super().__init__(message)

    @classmethod
    def of(cls, problems: Sequence[ConfigProblem]) -> ConfigError:
        """One error carrying every problem; its message is one line per problem."""
        first = problems[0]
        return cls(
            "\n".join(str(p) for p in problems),
            source=first.source,
            key=first.key,
            problems=problems,
        )


class ProbeError(AistatusError):
    """A status page or synthetic check could not be read. `reason` is short and loggable;
    `retry_after`: seconds the server asked us to wait (HTTP 429 / 503 with Retry-After)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
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

"""The one error tree of aistatus. Pure: no IO.

`CommandError.user_message` is shown to the user; any other exception reaching a handler is a bug
and is logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
    """A status page or synthetic check could not be read. `reason` is short and loggable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
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

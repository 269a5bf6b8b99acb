"""A logging filter that removes secrets from every record that reaches a handler, whichever
library logged it (slack_sdk and discord.py at DEBUG print request bodies): Slack, Discord and
API-key shaped tokens, and every configured secret value. Pure apart from logging.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "[redacted]"

# Shapes of the tokens the bot handles, so a token it never saw configured (an installation's,
# a rotated one) is still removed: Slack (xoxb-, xoxp-, xoxe-, xapp-, ...), Discord bot tokens
# (base64 id . timestamp . hmac), Anthropic / OpenAI style API keys, Fernet tokens.
PATTERNS = (
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    re.compile(r"sk-(?:ant-)?[A-Za-z0-9_-]{16,}"),
    re.compile(r"fernet:[A-Za-z0-9_=-]+"),
)
MIN_SECRET = 6  # shorter configured values would mask ordinary words


class Redact(logging.Filter):
    """Rewrites a record's message (and its traceback text) without the secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; keep the raw parts out
            message = str(record.msg)
        clean = self.scrub(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def install(secrets: Iterable[str], logger: logging.Logger | None = None) -> Redact:
    """Add one Redact filter to every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    redact = Redact(secrets)
    for handler in target.handlers:
        handler.addFilter(redact)
    return redact

"""How log records leave the process: readable text, or one JSON object per line carrying its
context (surface, provider, outage_id, channel, attempt) for Loki, journald or Cloud Logging.
Context comes from `extra=` on the call or from `context(...)` around a block (a contextvar)."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

FIELDS = ("surface", "provider", "outage_id", "channel", "alert_id", "attempt")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
NOISY = ("httpx", "httpcore", "apscheduler.executors.default", "apscheduler.scheduler")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "aistatus_log_context", default=None
)


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Every record logged inside the block (this task and the tasks it starts) carries
    `fields` (those not None), besides its own `extra=`."""
    set_ = {k: v for k, v in fields.items() if v is not None}
    token = _context.set({**(_context.get() or {}), **set_})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the context
    fields that are set, and the traceback as `exc_info` text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(_context.get() or {})
        doc.update({k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None})
        if record.exc_info or record.exc_text:  # exc_text: as a filter (redaction) left it
            doc["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> None:
    """Root logging to stderr at `level` in `fmt` (text or json); chatty libraries at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

"""The one wall clock, for the IO edges (composition root, chat adapters). Pure modules never
call it: they take `now` as an argument, so tests inject time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)

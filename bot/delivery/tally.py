"""The one INFO line per alert: "start of 7g1qpkyz5gxh: 9,998 channels in 112 s, 2 retried, 0 dead",
logged when the last of its entries is delivered or dead-lettered. IO (a tally hash in Redis).

Multi-replica rule: the tally lives in Redis (written with each entry by the enqueue script,
counted by every replica's workers), so the summary is written once, by whichever replica
finishes the alert's last entry. Best effort: an entry redelivered after a crash between its
record and its count, or a retried dead letter, is not counted twice into a second line.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.store.outbox import OutboxEntry, OutboxStore

log = logging.getLogger("bot.delivery")


async def finish(
    outbox: OutboxStore, entry: OutboxEntry, *, retried: bool, dead: bool, now: datetime
) -> None:
    """Acknowledge `entry` and count it finished (one step); log the alert's summary when it
    was the last one."""
    tally = await outbox.ack([entry.id], done=(entry.alert_id, retried, dead))
    if tally is None:
        return
    took = (now - tally.queued_at).total_seconds() if tally.queued_at else 0.0
    log.info(
        "%s: %s channels in %.0f s, %d retried, %d dead",
        tally.what,
        f"{tally.total:,}",
        max(0.0, took),
        tally.retried,
        tally.dead,
        extra={"outage_id": entry.alert.key, "alert_id": entry.alert_id},
    )

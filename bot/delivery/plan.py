"""What to send for one outbox entry: `plan_delivery` and its values (`Plan`, `Step`). Pure: no
IO, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.model import AlertKind


class Step(StrEnum):
    POST = "post"  # a new parent message
    EDIT = "edit"  # the parent, to the newest queued state of the outage
    REPLY = "reply"  # this alert under the parent


# An alert of these kinds under an existing parent is broadcast to the channel too (Slack:
# reply_broadcast): the end of an outage, or the same outage opening again.
BROADCAST_KINDS = frozenset(
    {AlertKind.RECOVERY, AlertKind.SUSPECTED_WITHDRAWN, AlertKind.START, AlertKind.SUSPECTED}
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send for one outbox entry; `reason` travels into logs."""

    steps: tuple[Step, ...]
    broadcast: bool
    reason: str


def plan_delivery(
    kind: AlertKind,
    *,
    has_parent: bool,
    parent_current: bool,
    superseded: bool = False,
    quiet: bool = False,
    parent_ended: bool = False,
) -> Plan:
    """The calls that deliver one alert to one channel (a redelivered entry never gets here:
    the channel's handled sequence number stops it first, bot/store/lua/outbox_begin.lua).

    Rules, first match wins:
    1. no parent message for the outage in the channel -> POST a new parent (an update or
       recovery for a channel without a parent becomes the parent: nothing is lost);
    2. a flip (a relapse or recovery inside an open outage, never broadcast) `superseded` by
       a newer queued alert of the same outage in this channel -> nothing: the newer one edits
       the parent and replies (a flap storm's flips coalesce instead of queueing a backlog);
    3. `quiet` (a flap that settled: its end was broadcast once) while the parent already shows
       the outage's end (`parent_ended`: the relapse between was coalesced away) -> nothing: the
       channel's thread would read the same end twice;
    4. a parent -> EDIT it to the newest queued state, unless it already shows that state
       (coalescing: several queued updates edit once), then REPLY this alert under it,
       broadcast for endings and re-openings — unless `quiet` (an ending already broadcast
       once: a flap that settled).
    Only the last step is not idempotent (POST or REPLY): a retry repeats edits, never a post.
    """
    if not has_parent:
        return Plan((Step.POST,), False, "new parent")
    broadcast = kind in BROADCAST_KINDS and not quiet
    if superseded and not broadcast:
        return Plan((), False, "coalesced into a newer alert of the outage")
    if quiet and parent_ended:
        return Plan((), False, "the parent already shows the outage's end")
    steps = (Step.REPLY,) if parent_current else (Step.EDIT, Step.REPLY)
    reason = "reply, parent current" if parent_current else "edit parent, reply"
    return Plan(steps, broadcast, reason)

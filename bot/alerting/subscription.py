"""A channel's subscription as a value, and the rule that decides whether one alert goes to it,
or why not (`skip_reason`). Pure: no IO, no clock reads (`now` is an argument).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.alerting.alert import CALM_KINDS
from bot.core.catalog import Catalog
from bot.core.model import AlertKind, ChannelRef, Status


class Skip(StrEnum):
    """Why an alert does not go to a channel; fan-out logs and counts each (the Prometheus label
    `reason` of aistatus_fanout_skipped_total)."""

    DISABLED = "disabled"  # a chat API said the channel is gone or closed to us
    MUTED = "muted"  # `/aistatus mute`, until it lapses
    NOT_COVERED = "not_covered"  # none of the alert's surfaces is subscribed here
    NOT_IN_AUDIENCE = "not_in_audience"  # a crowd suspicion scoped to the workspaces that reported
    NO_MAINTENANCE = "no_maintenance"  # a maintenance alert, and maintenance is off here
    BELOW_MIN = "below_min"  # the severity does not reach the channel's minimum
    NO_PARENT = "no_parent"  # the end of an outage the channel was never told about


_MAINTENANCE_KINDS = frozenset({AlertKind.MAINTENANCE_START, AlertKind.MAINTENANCE_END})
_FOLLOW_UP_KINDS = frozenset({AlertKind.UPDATE, AlertKind.CONFIRMED})


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one channel wants to hear about.

    surfaces: surface ids named explicitly; all_claude: the channel said `all`, meaning every
    Claude surface the catalog knows (including ones added later), on top of `surfaces`.
    muted_until: alerts are held back while `muted_until > now`; a mute expires by itself.
    disabled_reason: set when a chat API said the channel is gone or we lost access; the
    subscription is kept (so `enable` restores it) but nothing is sent while it is set.
    created_by: the user id who first subscribed the channel; updated_at: last real change.
    """

    channel: ChannelRef
    surfaces: frozenset[str] = frozenset()
    all_claude: bool = False
    min_severity: Status = Status.DEGRADED
    maintenance: bool = False
    muted_until: datetime | None = None
    disabled_reason: str | None = None
    created_by: str = ""
    updated_at: datetime | None = None

    def is_muted(self, now: datetime) -> bool:
        """True while a mute is in force at `now`."""
        return self.muted_until is not None and self.muted_until > now

    def covers(self, catalog: Catalog) -> frozenset[str]:
        """Every surface id this subscription reaches (explicit ones plus the Claude surfaces
        when `all_claude`)."""
        if self.all_claude:
            return self.surfaces | frozenset(catalog.claude_surfaces())
        return self.surfaces


def skip_reason(
    sub: Subscription,
    surfaces: Collection[str],
    severity: Status,
    *,
    kind: AlertKind,
    has_parent: bool,
    now: datetime,
    catalog: Catalog,
    audience: Collection[str] = (),
) -> Skip | None:
    """Why an alert of `kind` about `surfaces` at `severity` does not go to `sub`'s channel, or
    None when it does.

    Rules, in order (the first that decides wins):
    1. A disabled subscription gets nothing (DISABLED).
    2. A muted one (`muted_until > now`) gets nothing (MUTED); the mute lapses by itself at
       `muted_until`.
    3. The alert must touch a surface the subscription covers (NOT_COVERED; `all_claude` covers
       every Claude surface of the catalog).
    4. An alert with an `audience` (a crowd suspicion shown only to the workspaces that reported
       it, "platform:workspace" each) goes only to channels of those workspaces
       (NOT_IN_AUDIENCE); an empty audience is everyone.
    5. Maintenance alerts (start, end) go only to subscriptions with `maintenance` on
       (NO_MAINTENANCE).
    6. MAINTENANCE_START goes.
    7. RECOVERY, SUSPECTED_WITHDRAWN, MAINTENANCE_END and RECOVERING close (or calm) a message:
       only with `has_parent` (NO_PARENT: a channel never told about an outage is not told it
       ended).
    8. UPDATE and CONFIRMED go where the channel already has this outage's message
       (`has_parent`: the thread continues even if the outage eased below the minimum).
    9. START and SUSPECTED open a message, and so do UPDATE and CONFIRMED without one (an outage
       that worsened past the minimum): only when `severity` reaches `min_severity` (BELOW_MIN).
    """
    if sub.disabled_reason is not None:
        return Skip.DISABLED
    if sub.is_muted(now):
        return Skip.MUTED
    if sub.covers(catalog).isdisjoint(surfaces):
        return Skip.NOT_COVERED
    if audience and f"{sub.channel.platform}:{sub.channel.workspace}" not in audience:
        return Skip.NOT_IN_AUDIENCE
    if kind in _MAINTENANCE_KINDS and not sub.maintenance:
        return Skip.NO_MAINTENANCE
    if kind is AlertKind.MAINTENANCE_START:
        return None
    if kind in CALM_KINDS:
        return None if has_parent else Skip.NO_PARENT
    if kind in _FOLLOW_UP_KINDS and has_parent:
        return None
    # START and SUSPECTED, and follow-ups without a message here: they open one.
    return None if severity.rank >= sub.min_severity.rank else Skip.BELOW_MIN


SEVERITY_PHRASES = {
    Status.DEGRADED: "degraded performance and worse",
    Status.PARTIAL_OUTAGE: "partial outages and worse",
    Status.MAJOR_OUTAGE: "major outages only",
}


def severity_phrase(min_severity: Status) -> str:
    """How a minimum severity reads in a sentence: 'partial outages and worse'."""
    return SEVERITY_PHRASES.get(min_severity, f"{min_severity.label} and worse")

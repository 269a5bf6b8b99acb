"""A channel's subscription as a value, and the rule that decides whether one alert goes to it.
Pure: no IO, no clock reads (`now` is an argument).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bot.alerting.alert import CALM_KINDS
from bot.core.catalog import Catalog
from bot.core.model import AlertKind, ChannelRef, Status

_MAINTENANCE_KINDS = frozenset({AlertKind.MAINTENANCE_START, AlertKind.MAINTENANCE_END})
_OPENING_KINDS = frozenset({AlertKind.START, AlertKind.SUSPECTED})
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


def wants(
    sub: Subscription,
    surfaces: Collection[str],
    severity: Status,
    *,
    kind: AlertKind,
    has_parent: bool,
    now: datetime,
    catalog: Catalog,
) -> bool:
    """Whether an alert of `kind` about `surfaces` at `severity` goes to `sub`'s channel.

    Rules, in order (the first that decides wins):
    1. A disabled subscription gets nothing.
    2. A muted one (`muted_until > now`) gets nothing; the mute lapses by itself at `muted_until`.
    3. The alert must touch a surface the subscription covers (`all_claude` covers every Claude
       surface of the catalog).
    4. Maintenance alerts (start, end) go only to subscriptions with `maintenance` on.
    5. START and SUSPECTED open a message: only when `severity` reaches `min_severity`.
    6. UPDATE and CONFIRMED: when the channel already has this outage's message (`has_parent`,
       so the thread continues even if the outage eased below the minimum), or when the severity
       now reaches the minimum (an outage that worsened past it opens a message here).
    7. RECOVERY, SUSPECTED_WITHDRAWN, MAINTENANCE_END and RECOVERING close (or calm) a message:
       only with `has_parent` (a channel never told about an outage is not told it ended).
    """
    if sub.disabled_reason is not None:
        return False
    if sub.is_muted(now):
        return False
    if sub.covers(catalog).isdisjoint(surfaces):
        return False
    if kind in _MAINTENANCE_KINDS and not sub.maintenance:
        return False
    reaches = severity.rank >= sub.min_severity.rank
    if kind is AlertKind.MAINTENANCE_START:
        return True
    if kind in _OPENING_KINDS:
        return reaches
    if kind in _FOLLOW_UP_KINDS:
        return has_parent or reaches
    if kind in CALM_KINDS:
        return has_parent
    return False


SEVERITY_PHRASES = {
    Status.DEGRADED: "degraded performance and worse",
    Status.PARTIAL_OUTAGE: "partial outages and worse",
    Status.MAJOR_OUTAGE: "major outages only",
}


def severity_phrase(min_severity: Status) -> str:
    """How a minimum severity reads in a sentence: 'partial outages and worse'."""
    return SEVERITY_PHRASES.get(min_severity, f"{min_severity.label} and worse")

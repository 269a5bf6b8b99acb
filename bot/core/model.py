"""Domain values shared by every stage of the pipeline. Pure: no IO, no clock reads.

Statuses mirror Statuspage's component values plus `unknown` (we could not tell). Every value is a
frozen dataclass; `encode`/`decode` turn them into JSON-safe dicts for Redis and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter

from bot.core.text import plain


class Status(StrEnum):
    """A surface's health. Values are Statuspage's component statuses, plus `unknown`."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    MAINTENANCE = "under_maintenance"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Severity for ordering and `--min` filters: operational 0 < maintenance 1 < degraded 2
        < partial 3 < major 4. `unknown` is -1: it is never an outage."""
        return _RANK[self]

    @property
    def is_outage(self) -> bool:
        """Degraded or worse (maintenance is announced, not an outage)."""
        return self.rank >= 2

    @property
    def label(self) -> str:
        return _LABEL[self]

    @property
    def emoji(self) -> str:
        return _EMOJI[self]


_RANK = {
    Status.UNKNOWN: -1,
    Status.OPERATIONAL: 0,
    Status.MAINTENANCE: 1,
    Status.DEGRADED: 2,
    Status.PARTIAL_OUTAGE: 3,
    Status.MAJOR_OUTAGE: 4,
}
_LABEL = {
    Status.UNKNOWN: "unknown",
    Status.OPERATIONAL: "operational",
    Status.MAINTENANCE: "under maintenance",
    Status.DEGRADED: "degraded performance",
    Status.PARTIAL_OUTAGE: "partial outage",
    Status.MAJOR_OUTAGE: "major outage",
}
_EMOJI = {
    Status.UNKNOWN: "❔",
    Status.OPERATIONAL: "✅",
    Status.MAINTENANCE: "🛠️",
    Status.DEGRADED: "🟡",
    Status.PARTIAL_OUTAGE: "🟠",
    Status.MAJOR_OUTAGE: "🔴",
}


class Signal(StrEnum):
    """Where evidence comes from, strongest first."""

    OFFICIAL = "official"  # the provider's status page
    PROBE = "probe"  # our own synthetic HTTP checks
    CROWD = "crowd"  # `/aistatus report` from channel members


class TransitionKind(StrEnum):
    START = "start"  # operational/unknown -> outage or maintenance
    UPDATE = "update"  # still out: severity changed, new official update, confirmed, ...
    RECOVERY = "recovery"  # back to operational


class Reason(StrEnum):
    """Why a transition was recorded; travels into logs and picks the alert wording."""

    STARTED = "started"
    WORSENED = "worsened"
    IMPROVED = "improved"
    OFFICIAL_UPDATE = "official_update"  # a new incident update (keyed on update id, fact 5)
    CONFIRMED = "confirmed"  # a suspected outage is now on the official page
    RECOVERED = "recovered"
    WITHDRAWN = "withdrawn"  # a suspected outage ended without official confirmation
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_ENDED = "maintenance_ended"
    RECOVERING = "recovering"  # back to operational while the outage's incident is still open,
    # or after a relapse (flapping): the outage stays open until it settles
    RELAPSED = "relapsed"  # out again while recovering, or soon after it ended: the same outage
    SETTLED = "settled"  # a reopened outage ended for good: its ending was already broadcast


# Incident statuses that mean it is over (Statuspage's, and `completed` for maintenances).
RESOLVED_STATUSES = frozenset({"resolved", "postmortem", "completed"})


@dataclass(frozen=True, slots=True)
class Incident:
    """An unresolved official incident or an in-progress maintenance, as the page shows it."""

    id: str
    name: str
    status: str  # investigating|identified|monitoring|resolved|postmortem|in_progress|verifying|...
    impact: str  # none|minor|major|critical|maintenance
    url: str | None = None  # shortlink, or the page's incident URL
    components: tuple[str, ...] = ()  # component ids named by the incident (may be empty)
    update_id: str | None = None  # id of the newest update: "new update" is keyed on this
    update_status: str | None = None
    update_body: str | None = None
    update_at: datetime | None = None
    started_at: datetime | None = None
    is_maintenance: bool = False

    @property
    def resolved(self) -> bool:
        """The page says it is over: its newest update (the resolution text) or its status."""
        return self.status in RESOLVED_STATUSES or self.update_status in RESOLVED_STATUSES


@dataclass(frozen=True, slots=True)
class Observation:
    """What one signal said about one surface at one moment."""

    surface: str
    signal: Signal
    status: Status
    observed_at: datetime
    incident: Incident | None = None
    latency_ms: float | None = None
    error: str | None = None  # why it is unknown or failing; short, never contains a secret
    # Workspaces (`<platform>:<workspace id>`) a crowd-only suspicion may be shown to; empty:
    # everyone. Set only by crowd reports below the multi-workspace threshold (README Security).
    audience: tuple[str, ...] = ()
    component_name: str | None = None  # official: the page's name of the component read
    note: str | None = None  # official: how a vanished component id was dealt with (logged once)


@dataclass(frozen=True, slots=True)
class Verdict:
    """assess's answer for one surface: what we believe now and why."""

    surface: str
    status: Status
    source: Signal | None  # the signal that decided it; None when unknown
    suspected: bool  # probe- or crowd-only: not (yet) on the official page
    incident: Incident | None
    reason: str  # one line for logs and `status`: "component partial_outage", "3 probe failures"
    observed_at: datetime
    audience: tuple[str, ...] = ()  # a crowd-only suspicion's workspaces; empty: everyone


@dataclass(frozen=True, slots=True)
class SignalState:
    """Hysteresis of one (surface, signal). `effective` changes only after enough equal
    observations in a row (`streak`), so one bad poll never opens an outage."""

    raw: Status  # the latest observation
    streak: int  # consecutive observations of the same class (outage / operational / ...)
    effective: Status  # what assess uses; moves only past the thresholds
    observed_at: datetime  # the latest observation that was not `unknown`: staleness is from here
    incident: Incident | None = None
    latency_ms: float | None = None
    error: str | None = None  # why the latest observation was unknown or failing
    audience: tuple[str, ...] = ()  # crowd: the latest observation's audience (empty: everyone)
    # When the current run of `unknown` observations began (the first poll the page did not
    # answer); None while the signal answers. The board's "not answering since 10:02" is this.
    failing_since: datetime | None = None
    # The page's name of the component last read: a vanished component id is re-matched by it.
    component_name: str | None = None


@dataclass(frozen=True, slots=True)
class SurfaceState:
    """The committed state of one surface, stored in Redis and changed only by compare-and-set.

    version: bumped on every write; the CAS guard that makes N replicas record a transition once.
    outage_id: groups start, updates and recovery of one outage (the official incident id, or a
    generated id for probe/crowd-only outages); None while operational.
    """

    surface: str
    status: Status = Status.UNKNOWN
    source: Signal | None = None
    suspected: bool = False
    incident: Incident | None = None
    outage_id: str | None = None
    started_at: datetime | None = None  # when the current outage (or maintenance) started
    since: datetime | None = None  # when `status` last changed
    signals: Mapping[str, SignalState] = field(default_factory=dict)
    version: int = 0
    # The first decision that was not `unknown`: uptime counts from here, never from before the
    # bot could see the surface (set once by `decide`).
    first_seen: datetime | None = None
    # Recovering: `status` operational while `outage_id` is still set (its incident is still
    # open, or the outage relapsed): the outage ends only when the incident is gone / it settled.
    reopened: bool = False  # this outage ended once and relapsed: its end was already broadcast
    # The outage that ended last (its id, start and end): a relapse soon after continues it.
    last_outage_id: str | None = None
    last_started_at: datetime | None = None
    last_ended_at: datetime | None = None

    @property
    def recovering(self) -> bool:
        """Operational again, but the outage is not over yet (incident open, or settling)."""
        return self.outage_id is not None and self.status is Status.OPERATIONAL


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded change of a surface, exactly once across replicas."""

    id: str  # "<surface>@<version>": unique and stable, used for idempotent delivery
    surface: str
    provider: str
    kind: TransitionKind
    reason: Reason
    status: Status
    prev_status: Status
    source: Signal | None
    suspected: bool
    prev_suspected: bool
    outage_id: str
    incident: Incident | None
    started_at: datetime  # outage start
    at: datetime  # when it was recorded
    audience: tuple[str, ...] = ()  # only these workspaces' channels hear of it; empty: everyone

    @property
    def official_lead(self) -> timedelta | None:
        """For a confirmation (a suspected outage now on the official page): how long before
        the page our probes or crowd saw it (our first sight is the outage's start). None for
        every other transition."""
        if self.reason is not Reason.CONFIRMED:
            return None
        return max(self.at - self.started_at, timedelta(0))


# -- chat-side values ---------------------------------------------------------------------------


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"
    WEBHOOK = "webhook"  # an outgoing webhook: workspace = its owner ("cli"), channel = its id


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A chat channel: (platform, workspace or guild id, channel id)."""

    platform: Platform
    workspace: str
    channel: str
    # "<platform>:<workspace>:<channel>", made once: a delivery reads it ~20 times (Redis keys,
    # lanes, logs). Not a field of its own: not compared, hashed, shown or serialised.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.platform}:{self.workspace}:{self.channel}")

    @classmethod
    def parse(cls, key: str) -> ChannelRef:
        platform, workspace, channel = key.split(":", 2)
        return cls(Platform(platform), workspace, channel)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A posted message we may edit or thread under later. `ts` is Slack's ts / Discord's id;
    `thread` is Slack's thread_ts or a Discord thread channel id, when one was started."""

    channel: ChannelRef
    ts: str
    thread: str | None = None


class AlertKind(StrEnum):
    START = "start"
    UPDATE = "update"
    RECOVERY = "recovery"
    MAINTENANCE_START = "maintenance_start"
    MAINTENANCE_END = "maintenance_end"
    RECOVERING = "recovering"  # operational again, the outage not over (incident monitoring)
    SUSPECTED = "suspected"
    SUSPECTED_WITHDRAWN = "suspected_withdrawn"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class Backup:
    """An alternative that is up right now, for an affected surface."""

    surface: str
    name: str
    url: str | None
    status: Status
    same_model: bool  # another route to Claude itself
    note: str = ""  # why it fits: "Claude via API keys", "another assistant"
    backs_up: tuple[str, ...] = ()  # the affected surfaces it is an alternative for (for_channel)


@dataclass(frozen=True, slots=True)
class Alert:
    """Platform-neutral content of one message: what the adapters render."""

    key: str  # the outage id: one parent message per (key, channel)
    kind: AlertKind
    surfaces: tuple[str, ...]  # affected surface ids
    surface_names: tuple[str, ...]
    severity: Status
    title: str
    incident_title: str | None
    update_text: str | None
    update_at: datetime | None
    started_at: datetime
    at: datetime
    duration_text: str  # "for 47 min", "resolved after 2 h 13 min"
    url: str | None
    backups: tuple[Backup, ...]
    suspected: bool
    transition_ids: tuple[str, ...]
    # Added by bot/alert.py so `for_channel` can re-derive an alert for a subset of its surfaces:
    statuses: tuple[Status, ...] = ()  # the status now of each of `surfaces`, same order
    changed: tuple[str, ...] = ()  # surfaces with a transition in this alert (others: still out)
    ends: AlertKind | None = None  # RECOVERY / SUSPECTED_WITHDRAWN / MAINTENANCE_END of `changed`
    # RECOVERING wins `ends` while any surface of the outage is still recovering; these are the
    # surfaces that are, and the end the others reached, so a channel of only the others reads
    # its real end (a resolution it would otherwise never hear).
    recovering: tuple[str, ...] = ()
    ends_else: AlertKind | None = None
    starts: AlertKind | None = None  # START / SUSPECTED / MAINTENANCE_START: all `changed` start
    source: Signal | None = None  # the signal behind it (probe / crowd for suspected outages)
    audience: tuple[str, ...] = ()  # only these workspaces' channels get it; empty: everyone
    # Alternatives whose state is unknown (status UNKNOWN): "couldn't check", never "none up".
    unchecked: tuple[Backup, ...] = ()
    # A confirmation: how long before the official page aistatus saw the outage (seconds).
    official_lead_s: float | None = None
    quiet: bool = False  # an ending already broadcast once (a flap settled): thread only
    flip: bool = False  # only relapses / recoveries of an open outage: coalesced when superseded
    no_page: tuple[str, ...] = ()  # surfaces of `surfaces` that have no official status page
    monitoring: bool = False  # the incident is in `monitoring` (a fix is out)
    resolution: bool = False  # `update_text` is the incident's resolution


class SideKind(StrEnum):
    """A side message: a chat message that is no alert (no outage, no parent, no thread)."""

    ANNOUNCE = "announce"  # the public line after a command or button ("maria subscribed ...")
    NOTICE = "notice"  # a direct message to a person (their channel's alerts had to stop)


DM_PREFIX = "@"  # a side message's lane for a person: ChannelRef(platform, workspace, "@<user>")


@dataclass(frozen=True, slots=True)
class SideMessage:
    """One side message, delivered through the outbox like an alert (its own lane, pacing,
    Retry-After, retries, dead letters) but never opening, editing or threading an outage.

    to: the lane. An announcement's is its channel; a notice's is the person
        (`ChannelRef(platform, workspace, "@<user id>")`), so it is paced apart from every channel.
    text: already rendered for the platform (bot.chat.*.render), sent as it is.
    key: exactly once: one message per key ever (the outbox's `fanned` marker; Slack's metadata;
        Discord's nonce).
    about: for operators (`aistatus deliveries`): why it exists, e.g. "subscribe by U42".
    """

    kind: SideKind
    to: ChannelRef
    text: str
    key: str
    at: datetime
    about: str = ""

    @classmethod
    def announcement(
        cls, channel: ChannelRef, text: str, *, key: str, at: datetime, about: str = ""
    ) -> SideMessage:
        return cls(SideKind.ANNOUNCE, channel, text, key, at, about)

    @classmethod
    def notice(
        cls,
        platform: Platform,
        workspace: str,
        user_id: str,
        text: str,
        *,
        key: str,
        at: datetime,
        about: str = "",
    ) -> SideMessage:
        to = ChannelRef(platform, workspace, DM_PREFIX + user_id)
        return cls(SideKind.NOTICE, to, text, key, at, about)

    @property
    def user(self) -> str:
        """A notice's person (user id); "" for an announcement."""
        if self.kind is SideKind.NOTICE and self.to.channel.startswith(DM_PREFIX):
            return self.to.channel[len(DM_PREFIX) :]
        return ""

    @property
    def what(self) -> str:
        """Readable: 'announcement in slack:T1:C1: "maria subscribed …"'."""
        where = f"DM to {self.user}" if self.kind is SideKind.NOTICE else "announcement"
        text = self.text if len(self.text) <= 60 else self.text[:59] + "…"
        about = f" ({self.about})" if self.about else ""
        return f'{where}{about}: "{text}"'


# -- codec ---------------------------------------------------------------------------------------

T = TypeVar("T")


@cache
def _adapter(cls: type[T]) -> TypeAdapter[T]:
    return TypeAdapter(cls)


def encode(value: Any) -> Any:
    """A domain value as JSON-safe data (datetimes as ISO-8601, enums as their values)."""
    return _adapter(type(value)).dump_python(value, mode="json")


def decode(cls: type[T], data: Any) -> T:
    """Inverse of `encode`. Raises: pydantic.ValidationError on data of the wrong shape."""
    return _adapter(cls).validate_python(data)


def encode_json(value: Any) -> bytes:
    return _adapter(type(value)).dump_json(value)


def decode_json(cls: type[T], data: str | bytes) -> T:
    return _adapter(cls).validate_json(data)


# -- command replies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One block of a reply: an optional heading, lines of text, and short label/value fields.
    Text is plain with `code` spans allowed (both Slack and Discord render backticks)."""

    title: str | None = None
    lines: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """Platform-neutral answer to a command; the Slack and Discord adapters render it.

    text: the whole answer as plain text (notification / screen-reader fallback, the console),
    always set; a time or channel token (`bot.core.text.stamp`, `channel_token`) in it is
    reduced to its plain fallback ("01:30 UTC") here.
    sections: what the chat platforms show; their times and channels are tokens, which each
    renderer turns into the reader's local time (`<!date^…>`, `<t:…>`) or a mention.
    ephemeral: shown only to the caller (status answers) or to the channel.
    announce: a line to post publicly in the channel as well ("@maria subscribed this channel to
    api, code (partial outages and worse)"), tokens and all; None for most verbs.
    """

    text: str
    sections: tuple[Section, ...] = ()
    ephemeral: bool = True
    announce: str | None = None
    error: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", plain(self.text))


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who asked, where, and when. `can_manage`: the platform says the user may change the
    channel's subscriptions (Discord: Manage Channels; Slack: any member)."""

    channel: ChannelRef
    user_id: str
    user_name: str
    now: datetime
    can_manage: bool = True

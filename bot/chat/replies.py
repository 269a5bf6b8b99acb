"""Builders of every `/aistatus` answer as a platform-neutral `Reply` (the Slack and Discord
adapters render it). Pure: values and `now` in, a Reply out; every Reply has a plain `text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.alerting.alert import NO_OFFICIAL_PAGE, NOT_OFFICIAL_YET
from bot.alerting.subscription import Subscription, severity_phrase
from bot.chat.commands import HELP_LINES, USAGE, Verb
from bot.core.catalog import Catalog
from bot.core.duration import humanize, lead_text
from bot.core.freshness import BLIND_TEXT, PageHealth, monitoring_blind, page_health, page_line
from bot.core.model import Backup, Reply, Section, Signal, Status, SurfaceState, Transition
from bot.core.suggest import BACKUPS_HEADING, no_backups_text
from bot.core.text import channel_token, clock, shorten, stamp, time_text, verbatim
from bot.core.uptime import (
    OutageSpan,
    bar,
    daily_bars,
    observed_from,
    observed_uptime,
    outages,
    percent,
)
from bot.errors import CommandError

FORBIDDEN_TEXT = (
    "You need the Manage Channels permission to change this channel's alerts. "
    "Anyone can use `/aistatus status`, `history` and `report`."
)
INTERNAL_ERROR_TEXT = "Sorry, something went wrong on our side. Please try again in a minute."
UPDATE_CHARS = 400  # an incident update quoted in `status` is cut to this many characters
HISTORY_LINES = 10  # outages listed by `history`

_SOURCE = {
    Signal.OFFICIAL: "the official status page",
    Signal.PROBE: "our own probes",
    Signal.CROWD: "user reports",
}


# -- small formatters -----------------------------------------------------------------------------


def state_label(state: SurfaceState) -> str:
    """'partial outage', 'suspected partial outage', 'unknown (no data yet)'."""
    if state.status is Status.UNKNOWN and not state.signals and state.source is None:
        return "unknown (no data yet)"
    if state.suspected and state.status.is_outage:
        return f"suspected {state.status.label}"
    return state.status.label


def one_line(text: str, limit: int = UPDATE_CHARS) -> str:
    """Status-page text (already plain: `bot.core.text.normalise`) on one chat line: its line
    breaks and runs of spaces as one space, shortened to `limit` characters."""
    return shorten(" ".join(text.split()), limit)


def _surfaces_text(surfaces: Sequence[str], all_claude: bool) -> str:
    parts = (["all Claude surfaces"] if all_claude else []) + list(surfaces)
    return ", ".join(parts) if parts else "nothing"


def _reply(
    title: str | None,
    lines: Sequence[str],
    *,
    ephemeral: bool = True,
    announce: str | None = None,
    error: bool = False,
) -> Reply:
    text = "\n".join([*([title] if title else []), *lines])
    return Reply(
        text=text,
        sections=(Section(title=title, lines=tuple(lines)),),
        ephemeral=ephemeral,
        announce=announce,
        error=error,
    )


# -- status ---------------------------------------------------------------------------------------


def _board_line(surface: str, state: SurfaceState, catalog: Catalog, now: datetime) -> str:
    line = f"{state.status.emoji} {catalog.name_of(surface)}: {state_label(state)}"
    if state.since is not None and state.status is not Status.UNKNOWN:
        line += f" since {stamp(state.since, now)}"
    if state.incident is not None and state.status is not Status.OPERATIONAL:
        line += f" — {verbatim(one_line(state.incident.name, 120))}"
    return line


def page_healths(states: Mapping[str, SurfaceState], catalog: Catalog) -> list[PageHealth]:
    """The status pages behind the board: Claude's first, then the other watched pages."""
    order = ["claude", *(p for p in catalog.watched_providers() if p != "claude")]
    found = (page_health(states, catalog, p) for p in order)
    return [h for h in found if h is not None]


def source_lines(
    states: Mapping[str, SurfaceState], catalog: Catalog, now: datetime
) -> tuple[str, ...]:
    """How fresh the board is: Claude's page always (when it last answered, or since when it
    has not), any other page only while it is not answering."""
    return tuple(
        page_line(h, now, local=True)
        for h in page_healths(states, catalog)
        if h.provider == "claude" or not h.answering
    )


def board(
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    now: datetime,
    *,
    blind: bool | None = None,
) -> Reply:
    """Every surface of the catalog: emoji, name, status, since when, the active incident's
    title. Claude surfaces first, then the backups. Rules for the top:

    1. While monitoring is blind (`blind`, else derived from the stored probe signals) the
       headline is BLIND_TEXT: our network, not a Claude outage.
    2. Then how fresh the sources are (`source_lines`): when the status page last answered,
       or "not answering (HTTP 500 since 10:02 UTC); last known (10:01 UTC): the states below".
    """
    blind = monitoring_blind(states) if blind is None else blind
    claude = catalog.claude_surfaces()
    backups = [s for s in catalog.surfaces if s not in claude]

    def lines(ids: Sequence[str]) -> tuple[str, ...]:
        return tuple(_board_line(s, states.get(s) or SurfaceState(s), catalog, now) for s in ids)

    troubled = [s for s in claude if (st := states.get(s)) is not None and st.status.is_outage]
    if troubled:
        names = ", ".join(f"{catalog.name_of(s)} ({state_label(states[s])})" for s in troubled)
        headline = f"Claude has problems: {names}."
    elif all((st := states.get(s)) is not None and st.status is Status.OPERATIONAL for s in claude):
        headline = "All Claude surfaces are operational."
    else:
        headline = "No Claude surface reports an outage."
    if blind:
        headline = BLIND_TEXT
    fresh = source_lines(states, catalog, now)
    claude_lines, backup_lines = lines(claude), lines(backups)
    sections = (
        Section(title=headline, lines=fresh),
        Section(title="Claude", lines=claude_lines),
        Section(title="Backups", lines=backup_lines),
    )
    text = "\n".join([headline, *fresh, "", "Claude", *claude_lines, "", "Backups", *backup_lines])
    return Reply(text=text, sections=sections)


def _source_line(state: SurfaceState, catalog: Catalog) -> str | None:
    if state.source is None:
        return None if state.status is not Status.UNKNOWN else "No signal has reported on it yet."
    line = f"Source: {_SOURCE.get(state.source, str(state.source))}"
    spec = catalog.surfaces.get(state.surface)
    if state.suspected:
        has_page = spec is None or spec.official is not None
        line += f" (suspected: {NOT_OFFICIAL_YET if has_page else NO_OFFICIAL_PAGE})"
    return line


def surface_detail(
    surface: str,
    state: SurfaceState,
    catalog: Catalog,
    now: datetime,
    crowd_users: int,
    backups: Sequence[Backup] | None,
    *,
    window_min: int = 10,
    unchecked: Sequence[Backup] = (),
) -> Reply:
    """One surface in depth: status, which source says so (and whether only suspected), since
    when, the active incident with its latest update quoted, recent crowd reports, and the
    backups that are up now (`backups` None: not asked, e.g. while the surface is fine; with none
    up, the `unchecked` alternatives are named: unknown is not down)."""
    name = catalog.name_of(surface)
    title = f"{state.status.emoji} {name}: {state_label(state)}"
    lines: list[str] = []
    spec = catalog.surfaces.get(surface)
    health = page_health({surface: state}, catalog, spec.provider) if spec else None
    if health is not None and health.answering and state.source is Signal.OFFICIAL:
        lines.append(page_line(health, now, local=True))  # "Source: the Anthropic status page, …"
    elif (source := _source_line(state, catalog)) is not None:
        lines.append(source)
    if health is not None and not health.answering and health.failures:
        lines.append(page_line(health, now, last_known=state_label(state), local=True))
    if state.since is not None and state.status is not Status.UNKNOWN:
        lines.append(f"Since {stamp(state.since, now)} ({humanize(now - state.since)} ago)")
    inc = state.incident
    if inc is not None:
        head = f"Incident: {verbatim(one_line(inc.name, 200))} ({inc.status})"
        lines.append(f"{head} {inc.url}" if inc.url else head)
        if inc.update_body:
            at = f" at {stamp(inc.update_at, now)}" if inc.update_at is not None else ""
            label = inc.update_status or "update"
            lines.append(f"Latest {label}{at}:")
            lines.append(f"> {verbatim(one_line(inc.update_body))}")
    reporters = "1 person" if crowd_users == 1 else f"{crowd_users} people"
    lines.append(f"User reports in the last {window_min} min: {reporters}")
    if backups is not None:
        if backups:
            lines.append(f"{BACKUPS_HEADING}: " + ", ".join(_backup_text(b) for b in backups))
        else:
            lines.append(no_backups_text(unchecked))
    return _reply(title, lines)


def _backup_text(b: Backup) -> str:
    parts = b.name + (f" ({b.note})" if b.note else "")
    return f"{parts} {b.url}" if b.url else parts


def combine(parts: Sequence[Reply]) -> Reply:
    """Several replies as one (e.g. `status api code`)."""
    if len(parts) == 1:
        return parts[0]
    return Reply(
        text="\n\n".join(p.text for p in parts),
        sections=tuple(s for p in parts for s in p.sections),
        ephemeral=all(p.ephemeral for p in parts),
        error=any(p.error for p in parts),
    )


# -- subscriptions --------------------------------------------------------------------------------


def _covered(sub: Subscription, catalog: Catalog) -> str:
    names = [catalog.name_of(s) for s in sorted(sub.surfaces)]
    return _surfaces_text(names, sub.all_claude)


def subscription_list(sub: Subscription | None, catalog: Catalog, now: datetime) -> Reply:
    """What this channel is subscribed to, its minimum severity, maintenance, mute and
    disabled state."""
    if sub is None:
        return _reply(
            None,
            ["This channel gets no aistatus alerts. Start with `/aistatus subscribe all`."],
        )
    lines = [
        f"Alerts here: {_covered(sub, catalog)}",
        f"Severity: {severity_phrase(sub.min_severity)}",
        f"Maintenance announcements: {'on' if sub.maintenance else 'off'}",
    ]
    if sub.is_muted(now) and sub.muted_until is not None:
        left = humanize(sub.muted_until - now)
        lines.append(f"Muted until {stamp(sub.muted_until, now)} ({left} left)")
    if sub.disabled_reason is not None:
        lines.append(
            f"Paused: the chat platform refused our last message ({sub.disabled_reason}). "
            "Run `/aistatus subscribe` here again to resume."
        )
    return _reply("This channel's aistatus alerts", lines)


def channel_list(subs: Sequence[Subscription], catalog: Catalog, now: datetime) -> Reply:
    """The App Home's list of a workspace's subscribed channels, each named (a mention on the
    platform), with what it gets and whether it is muted or paused."""
    title = "Channels with aistatus alerts"
    if not subs:
        return _reply(title, ["None yet: run `/aistatus subscribe all` in a channel."])
    lines = []
    for sub in subs:
        line = (
            f"{channel_token(sub.channel.channel)}: {_covered(sub, catalog)}"
            f" · {severity_phrase(sub.min_severity)}"
        )
        if sub.maintenance:
            line += " · maintenance announced"
        if sub.is_muted(now) and sub.muted_until is not None:
            line += f" · muted until {stamp(sub.muted_until, now)}"
        if sub.disabled_reason is not None:
            line += f" · paused ({sub.disabled_reason})"
        lines.append(line)
    return _reply(title, lines)


def subscribed(
    sub: Subscription,
    catalog: Catalog,
    *,
    user_name: str,
    added: Sequence[str],
    added_all: bool,
    changed: bool,
) -> Reply:
    """Confirmation of `subscribe` (to the caller) plus, when something changed, a public line
    like 'maria subscribed this channel to api, code (partial outages and worse)'."""
    phrase = severity_phrase(sub.min_severity)
    maintenance = " and maintenance" if sub.maintenance else ""
    if not changed:
        text = (
            f"This channel already gets alerts for {_covered(sub, catalog)} "
            f"({phrase}{maintenance}). Nothing changed."
        )
        return Reply(text=text, sections=(Section(lines=(text,)),))
    text = (
        f"Done. This channel now gets alerts for {_covered(sub, catalog)} ({phrase}{maintenance})."
    )
    what = _surfaces_text(added, added_all) if (added or added_all) else "updated alert settings"
    announce = (
        f"{user_name} subscribed this channel to {what} ({phrase})"
        if (added or added_all)
        else f"{user_name} changed this channel's alerts to {phrase}{maintenance}"
    )
    return Reply(text=text, sections=(Section(lines=(text,)),), announce=announce)


def unsubscribed(
    sub: Subscription | None,
    catalog: Catalog,
    *,
    user_name: str,
    removed: Sequence[str],
    removed_all: bool,
) -> Reply:
    """Confirmation of `unsubscribe` plus a public line when something was removed."""
    if not removed and not removed_all:
        text = "This channel was not subscribed to that. Nothing changed."
        if sub is not None:
            text += f" It gets alerts for {_covered(sub, catalog)}."
        return Reply(text=text, sections=(Section(lines=(text,)),))
    what = _surfaces_text(removed, removed_all)
    if sub is None:
        text = "Done. This channel gets no aistatus alerts any more."
    else:
        text = f"Done. This channel now gets alerts for {_covered(sub, catalog)} only."
    return Reply(
        text=text,
        sections=(Section(lines=(text,)),),
        announce=f"{user_name} unsubscribed this channel from {what}",
    )


def muted(until: datetime, now: datetime, *, user_name: str) -> Reply:
    """Confirmation of `mute`, announced in the channel."""
    text = f"Alerts are muted here until {stamp(until, now)} (for {humanize(until - now)})."
    return Reply(
        text=text,
        sections=(Section(lines=(text,)),),
        announce=f"{user_name} muted aistatus alerts here until {stamp(until, now)}",
    )


def unmuted(*, user_name: str) -> Reply:
    """Confirmation of `unmute`, announced in the channel."""
    text = "Alerts are back on in this channel."
    return Reply(
        text=text,
        sections=(Section(lines=(text,)),),
        announce=f"{user_name} unmuted aistatus alerts here",
    )


def not_subscribed(verb: str) -> Reply:
    """The channel has nothing to mute/unmute."""
    return _reply(
        None,
        [
            f"This channel gets no aistatus alerts, so there is nothing to {verb}. "
            "Start with `/aistatus subscribe all`."
        ],
    )


def forbidden() -> Reply:
    """Refusal for a user who may not change the channel's alerts."""
    return _reply(None, [FORBIDDEN_TEXT], error=True)


# -- crowd reports --------------------------------------------------------------------------------


def reported(
    surface: str,
    catalog: Catalog,
    *,
    users: int,
    workspaces: int,
    recorded: bool,
    crossed: bool,
    window_min: int = 10,
) -> Reply:
    """Thanks for a crowd report, with how many people reported the surface in the window."""
    name = catalog.name_of(surface)
    people = "1 person" if users == 1 else f"{users} people"
    places = "1 workspace" if workspaces == 1 else f"{workspaces} workspaces"
    tally = f"{people} from {places} reported {name} in the last {window_min} min"
    if recorded:
        text = f"Thanks — {tally}."
    else:
        text = f"You already reported {name} in the last {window_min} min — {tally}."
    if crossed:
        text += " That is enough to flag a suspected outage."
    return _reply(None, [text])


# -- history --------------------------------------------------------------------------------------


def outage_line(o: OutageSpan, catalog: Catalog, now: datetime, *, local: bool = False) -> str:
    """'Sep 22 00:57 → 06:01 UTC 🟠 Elevated errors for multiple models — claude.ai, Claude API ·
    5 h 3 min · aistatus saw this 7 min before the status page'. `local`: its times are tokens
    for a chat reader's own time zone."""
    names = ", ".join(catalog.name_of(s) for s in o.surfaces)
    what = o.title or (f"suspected {o.worst.label}" if o.suspected else o.worst.label)
    if o.ended_at is not None:
        start = clock(o.started_at, now).removesuffix(" UTC")
        start = time_text(o.started_at, now, local=local, fallback=start)
        span = f"{start} → {time_text(o.ended_at, o.started_at, local=local)}"
        lasted = humanize(o.ended_at - o.started_at)
    else:
        span = f"since {time_text(o.started_at, now, local=local)}"
        lasted = f"ongoing, {humanize(now - o.started_at)} so far"
    what = one_line(what, 120)
    line = f"{span} {o.worst.emoji} {verbatim(what) if local else what} — {names} · {lasted}"
    if o.suspected and o.ended_at is not None:
        line += " · never on the official status page"
    if o.official_lead is not None:
        line += f" · {lead_text(o.official_lead)}"
    return line


def history(
    surface: str | None,
    transitions: Mapping[str, Sequence[Transition]],
    catalog: Catalog,
    days: int,
    now: datetime,
    *,
    first_seen: Mapping[str, datetime | None] | None = None,
) -> Reply:
    """Uptime over `days`, and (for one surface) a bar per UTC day, then one line per outage
    (`outage_line`). `transitions` maps each surface shown to its transitions (newest first);
    `first_seen` its states' first known decision. Rules:

    1. Uptime counts only the time the bot watched (`observed_from`): days before it ran are
       "no data", never 100 %.
    2. Outages overlapping the window, newest first, at most HISTORY_LINES.
    """
    start = now - timedelta(days=days)
    span = "day" if days == 1 else f"{days} days"
    title = f"History of {catalog.name_of(surface) if surface else 'Claude'}, last {span}"
    seen = first_seen or {}
    since = {s: observed_from(ts, seen.get(s)) for s, ts in transitions.items()}
    sections: list[Section] = []
    if surface is not None:
        ts = transitions.get(surface, ())
        pct = observed_uptime(ts, start=start, end=now, since=since.get(surface))
        bars = tuple(
            f"{day:%b} {day.day:>2} {bar(p)} {percent(p)}"
            for day, p in daily_bars(ts, days=days, end=now, since=since.get(surface))
        )
        sections.append(Section(title=f"Uptime {percent(pct)}", lines=bars))
    else:
        lines = tuple(
            f"{bar(p)} {percent(p)} {catalog.name_of(s)}"
            for s, ts in transitions.items()
            for p in [observed_uptime(ts, start=start, end=now, since=since[s])]
        )
        sections.append(Section(title="Uptime", lines=lines))
    watched = [t for t in since.values() if t is not None]
    if not watched or min(watched) > start:
        note = (
            f"Counts only the time aistatus watched (since {stamp(min(watched), now)})."
            if watched
            else "aistatus has not watched these surfaces yet."
        )
        sections[-1] = replace(sections[-1], lines=(*sections[-1].lines, note))
    spans = [
        o
        for o in outages(t for ts in transitions.values() for t in ts)
        if o.ended_at is None or o.ended_at >= start
    ][:HISTORY_LINES]
    events = (
        tuple(outage_line(o, catalog, now, local=True) for o in spans)
        if spans
        else (f"No outages recorded in the last {span}.",)
    )
    sections.append(Section(title="Outages", lines=events))
    text_lines = [title]
    for sec in sections:
        text_lines += ["", sec.title or "", *sec.lines]
    return Reply(text="\n".join(text_lines), sections=(Section(title=title), *sections))


# -- help and errors ------------------------------------------------------------------------------


def help(topic: Verb | None = None) -> Reply:
    """Every verb with its usage, from the command parser's HELP_LINES (only `topic`'s when
    given)."""
    chosen = [(u, w) for u, w in HELP_LINES if topic is None or u == USAGE.get(topic)]
    lines = tuple(f"`{usage}` — {what}" for usage, what in chosen or HELP_LINES)
    title = "aistatus: is Claude down, or is it just me?"
    return Reply(text="\n".join([title, *lines]), sections=(Section(title=title, lines=lines),))


def error(e: CommandError) -> Reply:
    """A user's mistake: one line, then the usage."""
    lines = [e.user_message] + ([f"Usage: `{e.usage}`"] if e.usage else [])
    return _reply(None, lines, error=True)


def internal_error() -> Reply:
    """Our bug or outage, without any detail (the traceback goes to the log)."""
    return _reply(None, [INTERNAL_ERROR_TEXT], error=True)

"""Statuspage v2 (and incident.io-compatible) pages as values: the raw JSON shapes, `PageReading`,
the parsers `parse_summary` / `parse_incidents` / `parse_time` (bytes in, values out, never
raise) and `parse_hook` (a webhook delivery's page id). Pure; the IO twins are `bot.watch.fetch`
and the hook receiver `bot.ops.hook`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from bot.core.model import RESOLVED_STATUSES, Incident, Status
from bot.core.text import normalise

log = logging.getLogger(__name__)

SUMMARY_PATH = "/api/v2/summary.json"
INCIDENTS_PATH = "/api/v2/incidents.json"

# -- raw JSON at the edge (what the page sends; any key may be missing or null in practice) -----


class RawPage(TypedDict, total=False):
    id: str
    name: str
    url: str
    time_zone: str
    updated_at: str


class RawPageStatus(TypedDict, total=False):
    indicator: str  # none|minor|major|critical (NOT the incident impact: fact 1)
    description: str


class RawComponent(TypedDict, total=False):
    id: str
    name: str
    status: str
    group: bool
    group_id: str | None
    position: int
    created_at: str
    updated_at: str


class RawAffectedComponent(TypedDict, total=False):
    code: str  # the component id
    name: str
    old_status: str
    new_status: str


class RawIncidentUpdate(TypedDict, total=False):
    id: str
    status: str
    body: str
    created_at: str
    updated_at: str
    display_at: str  # may be back-dated (fact 4)
    affected_components: list[RawAffectedComponent] | None


class RawIncident(TypedDict, total=False):
    id: str
    name: str
    status: str
    impact: str
    shortlink: str | None  # null on incident.io pages
    created_at: str
    updated_at: str
    started_at: str
    resolved_at: str | None
    components: list[RawComponent] | None  # may be [] or absent (facts 1, 10)
    incident_updates: list[RawIncidentUpdate] | None
    scheduled_for: str
    scheduled_until: str


class RawSummary(TypedDict):
    page: NotRequired[RawPage]
    status: NotRequired[RawPageStatus]
    components: NotRequired[list[RawComponent]]
    incidents: NotRequired[list[RawIncident] | None]
    scheduled_maintenances: NotRequired[list[RawIncident] | None]  # absent on incident.io


# -- values ----------------------------------------------------------------------------------------

ACTIVE_MAINTENANCE_STATUSES = frozenset({"in_progress", "verifying"})
_STATUS_VALUES = {s.value for s in Status if s is not Status.UNKNOWN}


@dataclass(frozen=True, slots=True)
class ComponentReading:
    """One component as the page shows it. `raw_status` keeps the page's string; an unknown value
    maps to Status.UNKNOWN (never an outage)."""

    id: str
    name: str
    status: Status
    raw_status: str


@dataclass(frozen=True, slots=True)
class PageReading:
    """One read of a status page.

    ok: False when the payload as a whole is unusable (not JSON, no `components` list); then
    `error` says why in a few words and every surface it feeds should be `unknown`.
    problems: parts that were skipped (a malformed component or incident) while the rest was read.
    """

    provider: str
    observed_at: datetime
    ok: bool
    error: str | None = None
    components: Mapping[str, ComponentReading] = field(default_factory=dict)  # by component id
    incidents: tuple[Incident, ...] = ()  # unresolved incidents only
    maintenances: tuple[Incident, ...] = ()  # in-progress / verifying maintenances only
    indicator: str | None = None
    page_url: str | None = None
    problems: tuple[str, ...] = ()

    def component(
        self, component_id: str | None, name: str | None = None
    ) -> ComponentReading | None:
        """The component with this id; else the first whose name matches, ignoring case."""
        if component_id and component_id in self.components:
            return self.components[component_id]
        if name:
            wanted = name.casefold().strip()
            for comp in self.components.values():
                if comp.name.casefold().strip() == wanted:
                    return comp
        return None


# -- pure parsing ----------------------------------------------------------------------------------


def parse_summary(
    payload: bytes | str,
    *,
    provider: str,
    observed_at: datetime,
    base_url: str | None = None,
) -> PageReading:
    """Read a summary.json payload. Never raises: bad input gives ok=False and an `error`.

    Rules:
    1. The payload must be a JSON object with a `components` list holding at least one usable
       component, else ok=False.
    2. A malformed component or incident is skipped and named in `problems`.
    3. Incidents whose status is resolved/postmortem are dropped (posted already resolved).
    4. Only in_progress/verifying scheduled maintenances are kept (missing/null list = none).
    `base_url` is the page URL to use when the payload names none (incident links).
    """
    data, error = _load_json(payload)
    if error is not None:
        return PageReading(provider=provider, observed_at=observed_at, ok=False, error=error)
    if not isinstance(data, dict):
        return PageReading(
            provider=provider, observed_at=observed_at, ok=False, error="not a JSON object"
        )
    problems: list[str] = []
    page_url = _page_url(data, base_url)
    status = data.get("status")
    indicator = _text(status.get("indicator")) if isinstance(status, dict) else None

    incidents = tuple(
        inc
        for inc in _incidents(data.get("incidents"), "incidents", page_url, problems, False)
        if inc.status not in RESOLVED_STATUSES
    )
    maintenances = tuple(
        inc
        for inc in _incidents(
            data.get("scheduled_maintenances"), "scheduled_maintenances", page_url, problems, True
        )
        if inc.status in ACTIVE_MAINTENANCE_STATUSES
    )

    raw_components = data.get("components")
    error = None
    components: dict[str, ComponentReading] = {}
    if not isinstance(raw_components, list):
        error = "missing 'components'" if raw_components is None else "'components' is not a list"
    else:
        components = _components(raw_components, problems)
        if not components:
            error = "no usable components"
    return PageReading(
        provider=provider,
        observed_at=observed_at,
        ok=error is None,
        error=error,
        components=components,
        incidents=incidents,
        maintenances=maintenances,
        indicator=indicator,
        page_url=page_url,
        problems=tuple(problems),
    )


def parse_incidents(
    payload: bytes | str,
    *,
    provider: str,
    observed_at: datetime,
    base_url: str | None = None,
) -> tuple[Incident, ...]:
    """Every incident in an incidents.json payload, resolved ones included (their last update is
    the resolution text). Never raises: an unreadable payload gives (); problems are logged."""
    data, error = _load_json(payload)
    if error is None and not isinstance(data, dict):
        error = "not a JSON object"
    if error is not None:
        log.warning("%s incidents.json unreadable at %s: %s", provider, observed_at, error)
        return ()
    problems: list[str] = []
    out = tuple(
        _incidents(data.get("incidents"), "incidents", _page_url(data, base_url), problems, False)
    )
    for problem in problems:
        log.warning("%s incidents.json: %s", provider, problem)
    return out


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp with any offset (`Z`, `-08:00`, with or without fractional seconds)
    as an aware UTC datetime; None when absent or unreadable. A timestamp without an offset is
    taken as UTC (Statuspage always sends one)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fraction digits; some producers send 7-9 (or 1-2).
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def normalise_body(text: str) -> str:
    """An update body or incident name as plain text: `bot.core.text.normalise`."""
    return normalise(text)


class RawHook(TypedDict, total=False):
    """A Statuspage subscriber webhook delivery: `meta` (unsubscribe link), `page`, and either
    `incident` or `component_update` + `component`. Read only for `page.id`: a hint, never a
    status."""

    meta: dict[str, Any]
    page: dict[str, Any]
    incident: dict[str, Any]
    component_update: dict[str, Any]
    component: dict[str, Any]


HOOK_KINDS = ("incident", "component_update", "component", "page")


def parse_hook(body: bytes) -> str | None:
    """The page id a webhook delivery names, or None when it names none. Nothing else in it is
    believed: the delivery only says "poll this page now".
    Raises: ValueError (with a short reason) for a body that is no Statuspage delivery."""
    data, error = _load_json(body)
    if error is not None:
        raise ValueError(error)
    if not isinstance(data, dict) or not any(isinstance(data.get(k), dict) for k in HOOK_KINDS):
        raise ValueError("not a Statuspage webhook delivery")
    page = data.get("page")
    return _text(page.get("id")) if isinstance(page, dict) else None


# -- parsing helpers -------------------------------------------------------------------------------


def _load_json(payload: bytes | str) -> tuple[Any, str | None]:
    """(data, None) or (None, a short reason). Never raises."""
    try:
        if isinstance(payload, bytes | bytearray | memoryview):
            try:
                text = bytes(payload).decode("utf-8-sig")
            except UnicodeDecodeError:
                return None, "not UTF-8 text"
        elif isinstance(payload, str):
            text = payload.removeprefix("\ufeff")
        else:
            return None, "no payload"
        stripped = text.strip()
        if not stripped:
            return None, "empty body"
        if stripped.startswith("<"):
            return None, "not JSON (HTML error page?)"
        try:
            return json.loads(stripped), None
        except json.JSONDecodeError as e:
            if e.pos >= len(stripped) or e.msg.startswith("Unterminated string"):
                return None, "truncated JSON"
            return None, "not JSON"
    except (ValueError, RecursionError, MemoryError):  # huge ints, absurd nesting
        return None, "not JSON"


def _text(value: object) -> str | None:
    """A non-empty stripped string, else None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _lower(value: object) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def _page_url(data: Mapping[str, Any], base_url: str | None) -> str | None:
    page = data.get("page")
    url = _text(page.get("url")) if isinstance(page, dict) else None
    url = url or _text(base_url)
    return url.rstrip("/") if url else None


def _components(raw: list[Any], problems: list[str]) -> dict[str, ComponentReading]:
    out: dict[str, ComponentReading] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"component #{i}: not an object")
            continue
        cid = _text(item.get("id"))
        if cid is None:
            problems.append(f"component #{i}: no 'id'")
            continue
        if cid in out:
            problems.append(f"component {cid}: listed twice (first kept)")
            continue
        raw_status = item.get("status")
        if not isinstance(raw_status, str):
            problems.append(f"component {cid}: no 'status'")
            raw_status = ""
        clean = raw_status.strip().lower()
        status = Status(clean) if clean in _STATUS_VALUES else Status.UNKNOWN
        if raw_status and status is Status.UNKNOWN:
            problems.append(f"component {cid}: unknown status {raw_status[:40]!r}")
        out[cid] = ComponentReading(
            id=cid, name=_text(item.get("name")) or cid, status=status, raw_status=raw_status
        )
    return out


def _incidents(
    raw: object, key: str, page_url: str | None, problems: list[str], maintenance: bool
) -> Iterable[Incident]:
    if raw is None:  # absent or null on incident.io pages (fact 10)
        return
    if not isinstance(raw, list):
        problems.append(f"'{key}' is not a list")
        return
    for i, item in enumerate(raw):
        try:
            incident, why = _incident(item, page_url, maintenance)
        except (TypeError, ValueError, AttributeError, OverflowError) as e:  # belt and braces
            incident, why = None, f"unreadable ({type(e).__name__})"
        if incident is None:
            problems.append(f"{key} #{i}: {why}")
        else:
            yield incident


def _incident(item: object, page_url: str | None, maintenance: bool) -> tuple[Incident | None, str]:
    if not isinstance(item, dict):
        return None, "not an object"
    iid = _text(item.get("id"))
    if iid is None:
        return None, "no 'id'"
    newest = _newest_update(item.get("incident_updates"))
    status = _text(item.get("status")) or (newest and _text(newest.get("status"))) or "unknown"
    impact = _text(item.get("impact")) or ("maintenance" if maintenance else "unknown")
    url = _text(item.get("shortlink"))
    if url is None and page_url:
        url = f"{page_url}/incidents/{iid}"
    update_body = None
    update_at = None
    if newest is not None:
        body = newest.get("body")
        update_body = normalise_body(body) if isinstance(body, str) else None
        update_at = parse_time(newest.get("display_at")) or parse_time(newest.get("created_at"))
    return (
        Incident(
            id=iid,
            name=normalise_body(item["name"]) if isinstance(item.get("name"), str) else iid,
            status=status.lower(),
            impact=impact.lower(),
            url=url,
            components=_incident_components(item),
            update_id=_text(newest.get("id")) if newest else None,
            update_status=_lower(newest.get("status")) if newest else None,
            update_body=update_body or None,
            update_at=update_at,
            started_at=parse_time(item.get("started_at")) or parse_time(item.get("created_at")),
            is_maintenance=maintenance,
        ),
        "",
    )


def _updates(raw: object) -> list[dict[str, Any]]:
    return [u for u in raw if isinstance(u, dict)] if isinstance(raw, list) else []


_NEVER = datetime.min.replace(tzinfo=UTC)


def _newest_update(raw: object) -> dict[str, Any] | None:
    """The newest update, by this rule (fact 4):
    1. by `created_at` (when it was really posted; `display_at` can be back-dated);
    2. then by `display_at`, for updates without `created_at` or posted in the same instant;
    3. then by list position (the page lists newest first), for updates with no time at all.
    """
    updates = _updates(raw)
    if not updates:
        return None

    def key(pair: tuple[int, dict[str, Any]]) -> tuple[datetime, datetime, int]:
        i, u = pair
        created = parse_time(u.get("created_at"))
        shown = parse_time(u.get("display_at"))
        return (created or shown or _NEVER, shown or created or _NEVER, -i)

    return max(enumerate(updates), key=key)[1]


def _incident_components(item: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids named by the incident, then the codes its updates touched, oldest update first
    (components are added mid-way: fact 6)."""
    ids: list[str] = []
    raw = item.get("components")
    if isinstance(raw, list):
        for comp in raw:
            cid = _text(comp.get("id")) if isinstance(comp, dict) else _text(comp)
            if cid:
                ids.append(cid)
    updates = _updates(item.get("incident_updates"))
    for update in reversed(updates):
        affected = update.get("affected_components")
        if isinstance(affected, list):
            for comp in affected:
                code = _text(comp.get("code")) if isinstance(comp, dict) else None
                if code:
                    ids.append(code)
    return tuple(dict.fromkeys(ids))

"""How fresh the board's sources are: when each status page last answered, since when it has
not, and whether monitoring is blind (every probe and canary failed). Pure: stored states in,
values and one line of text out; `now` is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.core.catalog import Catalog
from bot.core.model import Signal, Status, SurfaceState
from bot.core.text import time_text

BLIND_ERROR = "monitoring blind"  # the probe error every check carries while we cannot see out
BLIND_TEXT = (
    "aistatus cannot reach the internet right now — this is not a Claude outage. "
    "The states below are the last ones we could check."
)
FAILED_POLLS = 3  # "a few": one failed poll is a blip, three in a row is a page not answering


@dataclass(frozen=True, slots=True)
class PageHealth:
    """One provider's status page as the board's source.

    answered_at: the newest poll that gave a readable answer (None: never).
    failing_since / error / failures: the current run of failed polls (0 while it answers).
    """

    provider: str
    name: str
    answered_at: datetime | None
    failing_since: datetime | None
    error: str | None
    failures: int

    @property
    def answering(self) -> bool:
        """False after FAILED_POLLS failed polls in a row (or when it never answered)."""
        return self.failures < FAILED_POLLS and self.answered_at is not None


def page_health(
    states: Mapping[str, SurfaceState], catalog: Catalog, provider: str
) -> PageHealth | None:
    """The health of `provider`'s page from its surfaces' official signals (None when no
    surface reads that page). The freshest surface speaks for the page: every surface of a
    page is decided by the same poll."""
    spec = catalog.providers.get(provider)
    sids = [s.id for s in catalog.surfaces_of(provider) if s.official is not None]
    if spec is None or not sids:
        return None
    signals = [
        st.signals[Signal.OFFICIAL.value]
        for sid in sids
        if (st := states.get(sid)) is not None and Signal.OFFICIAL.value in st.signals
    ]
    if not signals:
        return PageHealth(provider, spec.name, None, None, None, 0)
    newest = max(signals, key=lambda s: (s.observed_at, s.failing_since or s.observed_at))
    answered = newest.observed_at if newest.effective is not Status.UNKNOWN else None
    failing = newest.raw is Status.UNKNOWN
    return PageHealth(
        provider,
        spec.name,
        answered,
        newest.failing_since if failing else None,
        newest.error if failing else None,
        newest.streak if failing else 0,
    )


def page_line(
    health: PageHealth,
    now: datetime,
    *,
    last_known: str = "the states below",
    local: bool = False,
) -> str:
    """'Source: the Anthropic status page, last answered 10:07 UTC', or after FAILED_POLLS
    failed polls 'The Anthropic status page is not answering (HTTP 500 since 10:02 UTC); last
    known (10:01 UTC): partial outage'. `local`: its times are tokens for a chat reader's own
    time zone (`bot.core.text.stamp`)."""
    page = f"the {health.name} status page"
    if health.answering and health.answered_at is not None:
        return f"Source: {page}, last answered {time_text(health.answered_at, now, local=local)}"
    why = health.error or "no answer"
    failing = health.failing_since
    since = f" since {time_text(failing, now, local=local)}" if failing else ""
    head = f"{page[0].upper()}{page[1:]} is not answering ({why}{since})"
    if health.answered_at is None:
        return f"{head}; it has not answered yet."
    known = time_text(health.answered_at, now, local=local)
    return f"{head}; last known ({known}): {last_known}"


def monitoring_blind(states: Mapping[str, SurfaceState]) -> bool:
    """Every stored probe signal says BLIND_ERROR: the last probe round failed everywhere,
    canaries included (our network, not theirs). False when nothing was ever probed."""
    probes = [
        st.signals[Signal.PROBE.value] for st in states.values() if Signal.PROBE.value in st.signals
    ]
    return bool(probes) and all(p.error == BLIND_ERROR for p in probes)

"""Prometheus metrics, exported on /metrics and named by Prometheus conventions (base units,
`_seconds`, `_total`, `_info`): the watcher's and the bot's module-level collectors (the
prometheus_client convention; they hold counts, not clients or settings) and the delivery
engine's `DeliveryMetrics` (a registry can be passed in, for tests). IO (prometheus_client)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info

from bot import __version__

BUILD = Info("aistatus_build", "The running aistatus build (exported as aistatus_build_info).")
BUILD.info({"version": __version__})

POLLS = Counter(
    "aistatus_polls_total",
    "Status page polls by provider and outcome (ok, not_modified, error, skipped).",
    ["provider", "outcome"],
)
POLL_SECONDS = Histogram(
    "aistatus_poll_seconds",
    "Wall time of one status page poll (fetch + parse + assess + store).",
    ["provider"],
)
TRANSITIONS = Counter(
    "aistatus_transitions_total",
    "Recorded transitions by surface and kind.",
    ["surface", "kind"],
)
CAS_CONFLICTS = Counter(
    "aistatus_cas_conflicts_total",
    "Commits another job or replica beat (the decision was retried).",
    ["provider"],
)
BLIND = Gauge(
    "aistatus_monitoring_blind",
    "1 while every probe and canary fails: our own network, not an outage.",
)
SURFACE_STATUS = Gauge(
    "aistatus_surface_status_rank",
    "Committed status of each surface: -1 unknown, 0 operational, 1 maintenance, 2 degraded, "
    "3 partial outage, 4 major outage.",
    ["surface"],
)
PROBE_SECONDS = Histogram(
    "aistatus_probe_seconds",
    "Wall time of one synthetic check by surface and result (ok: an expected status; "
    "bad_status: another status; error: no HTTP answer).",
    ["surface", "result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
LAST_POLL = Gauge(
    "aistatus_last_successful_poll_timestamp_seconds",
    "Unix time of the last status page poll that read the page (200 or 304), by provider.",
    ["provider"],
)
OFFICIAL_LAG = Histogram(
    "aistatus_official_lag_seconds",
    "How long the official status page lagged our own evidence: from a suspected outage's "
    "start (probes, crowd) to the page confirming it, per incident.",
    buckets=(30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200),
)
OUTBOX_ENTRIES = Gauge(
    "aistatus_outbox_entries",
    "Alert deliveries not yet accepted by a chat API (queued, in flight or retrying); "
    "read from Redis on each scrape.",
)
DEAD_LETTERS = Gauge(
    "aistatus_dead_letters",
    "Dead-lettered deliveries kept in Redis (listed by `aistatus deliveries`); "
    "read on each scrape.",
)
CHAT_CONNECTED = Gauge(
    "aistatus_chat_connected",
    "1 while the chat platform's live connection is up (Discord gateway, Slack Socket Mode), "
    "else 0; read on each scrape.",
    ["platform"],
)


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    """Prometheus collectors of delivery. `create(registry)` for tests; `default()` is the
    process-wide set on the global registry (created once)."""

    skipped: Counter
    delivered: Counter
    retried: Counter
    dead: Counter
    latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> DeliveryMetrics:
        reg = registry if registry is not None else REGISTRY
        return cls(
            skipped=Counter(
                "aistatus_fanout_skipped_total",
                "Subscribed channels an alert did not go to, by reason (disabled, muted, "
                "not_covered, not_in_audience, no_maintenance, below_min, no_parent).",
                ["reason"],
                registry=reg,
            ),
            delivered=Counter(
                "aistatus_deliveries_total",
                "Alerts a chat API accepted, by platform and first step (post, edit, reply).",
                ["platform", "step"],
                registry=reg,
            ),
            retried=Counter(
                "aistatus_delivery_retries_total",
                "Failed chat API attempts that will be retried, by platform and outcome "
                "(retry_after, backoff, parent_gone).",
                ["platform", "outcome"],
                registry=reg,
            ),
            dead=Counter(
                "aistatus_delivery_dead_total",
                "Deliveries given up and dead-lettered, by platform and outcome.",
                ["platform", "outcome"],
                registry=reg,
            ),
            latency=Histogram(
                "aistatus_delivery_latency_seconds",
                "From fan-out (entry queued) to the chat API accepting it.",
                ["platform"],
                buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
                registry=reg,
            ),
        )

    @classmethod
    def default(cls) -> DeliveryMetrics:
        global _DEFAULT_DELIVERY
        if _DEFAULT_DELIVERY is None:
            _DEFAULT_DELIVERY = cls.create(REGISTRY)
        return _DEFAULT_DELIVERY


_DEFAULT_DELIVERY: DeliveryMetrics | None = None

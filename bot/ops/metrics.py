"""Prometheus metrics of the watcher and the bot, exported on /metrics (named by Prometheus
conventions: base units, `_seconds`, `_total`, `_info`). Module-level collectors are the
prometheus_client convention; they hold counts, not clients or settings. Delivery's own counters
live in `bot.delivery` (DeliveryMetrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

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
    "Dead-lettered deliveries kept in Redis (retry or drop them with `aistatus deliveries`); "
    "read on each scrape.",
)
CHAT_CONNECTED = Gauge(
    "aistatus_chat_connected",
    "1 while the chat platform's live connection is up (Discord gateway, Slack Socket Mode), "
    "else 0; read on each scrape.",
    ["platform"],
)

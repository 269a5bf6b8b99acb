"""Prometheus metrics of the watcher, exported on /metrics. Module-level collectors are the
prometheus_client convention; they hold counts, not clients or settings."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
CHAT_CONNECTED = Gauge(
    "aistatus_chat_connected",
    "1 while a chat connection that brings commands in is up (discord_gateway, slack_socket_mode), "
    "0 while it is down or reconnecting.",
    ["connection"],
)

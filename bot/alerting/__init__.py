"""Alerting: recorded transitions grouped into platform-neutral alerts, and which channels want
them (with the reason the others don't). Pure."""

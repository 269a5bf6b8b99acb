"""The pure core: domain values, the catalog, assessment, hysteresis, crowd, backups, uptime,
durations and text. Pure: no IO library, no clock reads (ruff's banned-api keeps it so)."""

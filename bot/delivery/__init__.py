"""Delivery: fan-out of alerts to channels, the outbox, per-channel lanes, pacing and retries.
Plan, retry and pacing are pure; the engine's units are thin IO."""

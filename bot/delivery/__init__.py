"""Delivery: fan-out of alerts to channels, the outbox, per-channel lanes, pacing and retries.
`engine` composes the units (fanout, reader, gate, lane, attempt, failure, lease, loop: thin IO);
plan, retry, pacing and config are pure."""

"""Watching: status pages and probes fetched (IO) and parsed/classified (pure), the watcher that
commits decided states, and the scheduler that drives it."""

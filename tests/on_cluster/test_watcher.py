"""tests/watch/test_watcher.py on a 3-master Redis Cluster."""

from tests.watch.test_watcher import *  # noqa: F403

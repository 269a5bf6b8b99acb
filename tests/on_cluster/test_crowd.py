"""tests/core/test_crowd.py on a 3-master Redis Cluster."""

from tests.core.test_crowd import *  # noqa: F403

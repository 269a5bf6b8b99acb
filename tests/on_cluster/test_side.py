"""tests/delivery/test_side.py on a 3-master Redis Cluster."""

from tests.delivery.test_side import *  # noqa: F403

"""tests/delivery/test_delivery.py on a 3-master Redis Cluster."""

from tests.delivery.test_delivery import *  # noqa: F403

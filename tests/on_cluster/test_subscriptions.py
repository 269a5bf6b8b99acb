"""tests/alerting/test_subscriptions.py on a 3-master Redis Cluster."""

from tests.alerting.test_subscriptions import *  # noqa: F403

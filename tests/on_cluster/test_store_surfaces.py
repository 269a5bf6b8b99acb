"""tests/store/test_store_surfaces.py on a 3-master Redis Cluster."""

from tests.store.test_store_surfaces import *  # noqa: F403

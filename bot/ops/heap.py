"""The process's heap once it has started: taken out of the garbage collector's full scans.

`aistatus run` builds everything that lives as long as the process first (modules, the catalog,
clients, the stores, the engine). Python's full collections walk every tracked object each time,
so a long fan-out paid for walking all of that again and again: 1.0 s of the 10.6 s of CPU a
10,000-message paced fan-out cost (bench delivery), 0.27 s once frozen. `gc.freeze` moves what is
alive into a permanent generation the collector leaves alone (what CPython's docs suggest for a
long-lived server); objects made later are collected as before.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then freeze everything still alive out of later collections."""
    gc.collect()
    gc.freeze()

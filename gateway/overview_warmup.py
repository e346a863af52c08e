"""The HQ overview's units read when the gateway starts, in the background.

Without it the first overview of each period after a start read every unit it sums (a
90-day overview and its comparison: ~30 units of 4,000 stores; 90-890 ms measured), and
the first requests of a busy morning queued behind those reads. The warm-up makes today's
1-, 7-, 28- and 90-day overviews of the whole chain once, in a thread of its own, so start
and ingest go on while it runs and the requests find the units kept (gateway/period_cache.py).
What it costs is in docs/gateway.md ("Warm-up at start").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from gateway.overview import PERIODS, overview
from gateway.period_cache import cache_for
from gateway.storage import Storage

log = logging.getLogger(__name__)
TREND_DAYS = 28  # the dashboard's default trend: its rows are read at every request anyway


def warm(storage: Storage, now: datetime, status_interval_s: float) -> int:
    """Today's overview of every period for the whole chain, made once so that its units are
    kept in ``storage``'s cache; returns how many units were read."""
    cache = cache_for(storage)
    before = cache.reads
    registry = storage.registry
    ids = sorted(registry.stores)
    if not ids:
        return 0
    conn = storage.read()
    for days in PERIODS:
        overview(conn, registry, ids, None, TREND_DAYS, now, status_interval_s, days, cache)
    return cache.reads - before


def start(storage: Storage, clock: Callable[[], datetime],
          status_interval_s: float) -> threading.Thread:
    """``warm`` in a daemon thread; a failure is logged (requests then read what they need)."""
    def run() -> None:
        t0 = time.perf_counter()
        try:
            n = warm(storage, clock(), status_interval_s)
        except Exception:
            log.exception("overview warm-up failed: the first requests read their units")
            return
        cache = cache_for(storage)
        log.info("overview warm-up: %d units read in %.2f s, %.1f MB kept, %d stores", n,
                 time.perf_counter() - t0, cache.held_bytes() / 1e6,
                 len(storage.registry.stores))

    thread = threading.Thread(target=run, name="overview-warm-up", daemon=True)
    thread.start()
    return thread

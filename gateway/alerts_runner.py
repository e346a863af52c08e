"""The gateway's alert task: every ``interval_s``, judge the stored facts (gateway/alerts.py),
record what was raised and resolved (gateway/alerts_store.py), then deliver notifications
(gateway/alerts_webhook.py). One thread in the API process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from gateway import alerts_store
from gateway.alerts import AlertSettings, Changes, evaluate
from gateway.alerts_facts import read_facts
from gateway.alerts_webhook import deliver_due
from gateway.rollups import utc_text
from gateway.storage import Storage
from storesense.schema import utcnow

log = logging.getLogger(__name__)


def evaluate_once(storage: Storage, rules: AlertSettings, now: datetime,
                  hearing_since: datetime | None = None) -> Changes:
    """Read the facts (outside the write lock: ingest must not wait for them), then judge
    against the open alerts and record, in one transaction."""
    storage.refresh_registry(max_age_s=5.0)
    facts = replace(read_facts(storage.read(), storage.registry, now, rules.traffic_weeks),
                    hearing_since=hearing_since)
    with storage.transaction() as conn:
        changes = evaluate(facts, rules, now, alerts_store.open_keys(conn))
        alerts_store.apply(conn, changes, utc_text(now))
    for a in changes.raised:
        log.warning("alert raised: %s %s", a.key, a.detail)
    for key in changes.resolved:
        log.info("alert resolved: %s", key)
    return changes


class Hearing:
    """Since when the gateway's ingest has been connected to the broker without a break."""

    def __init__(self) -> None:
        self.since: datetime | None = None

    def update(self, connected: bool, now: datetime) -> datetime | None:
        if not connected:
            self.since = None
        elif self.since is None:
            self.since = now
        return self.since


def run_forever(storage: Storage, rules: AlertSettings, stop: threading.Event,
                clock: Callable[[], datetime] = utcnow,
                connected: Callable[[], bool] = lambda: True) -> None:
    """Every interval: judge and deliver. While the ingest has no broker nothing is judged
    (what the gateway cannot hear says nothing about the devices); open alerts stay open."""
    hearing = Hearing()
    while True:
        try:
            since = hearing.update(connected(), clock())
            if since is not None:
                evaluate_once(storage, rules, clock(), since)
            deliver_due(storage, rules, clock())
        except Exception:  # a database hiccup must not end alerting
            log.exception("alert evaluation failed")
        if stop.wait(rules.interval_s):
            return


def start(storage: Storage, rules: AlertSettings, stop: threading.Event,
          connected: Callable[[], bool], clock: Callable[[], datetime] = utcnow,
          ) -> threading.Thread | None:
    if not rules.enabled:
        return None
    thread = threading.Thread(target=run_forever,
                              args=(storage, rules, stop, clock, connected),
                              name="alerts", daemon=True)
    thread.start()
    return thread

"""Alert notifications POSTed to the webhook, in order, with retries and backoff.

Deliveries are rows written with the alert (gateway/alerts_store.py), so one made is never
lost: a receiver that is down gets each one later, retried after ``retry_initial_s``, then
twice as long each time up to ``retry_max_s``. The first one not delivered holds back the
later ones (a "resolved" never arrives before its "raised"). Runs on the alert thread of the
API process, never on the ingest's: a slow receiver delays notifications, not windows.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway import alerts_store
from gateway.alerts import AlertSettings
from gateway.rollups import utc_text
from gateway.storage import Storage

log = logging.getLogger(__name__)


def backoff_s(rules: AlertSettings, attempts: int) -> float:
    """Wait before the next try after ``attempts`` failed ones (1, 2, ...)."""
    return float(min(rules.retry_max_s, rules.retry_initial_s * 2 ** min(attempts - 1, 30)))


def post(url: str, body: bytes, timeout_s: float) -> str | None:
    """POST JSON; None on a 2xx answer, else what went wrong."""
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "storesense-gateway"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read(65536)
            return None
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def deliver_due(storage: Storage, rules: AlertSettings, now: datetime,
                send: Callable[[str, bytes, float], str | None] = post) -> int:
    """Send the notifications due by ``now``, in order; stop at the first failure. Returns
    how many were delivered."""
    if rules.webhook_url is None:
        return 0
    sent = 0
    for delivery_id, payload, attempts in alerts_store.due(storage.read(), utc_text(now)):
        error = send(rules.webhook_url, payload.encode(), rules.webhook_timeout_s)
        with storage.transaction() as conn:
            if error is None:
                alerts_store.delivered(conn, delivery_id, utc_text(now))
            else:
                retry = now + timedelta(seconds=backoff_s(rules, attempts + 1))
                alerts_store.failed(conn, delivery_id, error, utc_text(retry))
        if error is not None:
            log.warning("alert webhook delivery %d failed (attempt %d): %s; next try in "
                        "%.0f s", delivery_id, attempts + 1, error, backoff_s(rules, attempts + 1))
            return sent
        sent += 1
    return sent

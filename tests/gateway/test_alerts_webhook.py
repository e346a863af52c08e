"""Alert notifications to a real HTTP receiver on localhost: in order, retried with backoff
while the receiver fails, each delivered once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway import alerts_store
from gateway.alerts import Alert, AlertSettings, Changes
from gateway.alerts_webhook import backoff_s, deliver_due
from gateway.storage import Storage
from storesense.broker import free_port

T = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver: records each POST's JSON; answers 500 while ``failing`` > 0."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.failing = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.failing > 0:
                    outer.failing -= 1
                    self.send_response(500)
                else:
                    outer.got.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _raise_and_resolve(storage: Storage) -> None:
    a = Alert("outbox_backlog", "s1", "edge1", {"outbox_depth": 5000})
    with storage.transaction() as conn:
        alerts_store.apply(conn, Changes(raised=(a,)), "2026-12-06T14:00:00Z")
        alerts_store.apply(conn, Changes(resolved=(a.key,)), "2026-12-06T14:30:00Z")


def test_failed_deliveries_are_retried_with_backoff_then_delivered_in_order(
        storage: Storage, receiver: Receiver) -> None:
    rules = AlertSettings(webhook_url=receiver.url, retry_initial_s=10, retry_max_s=25)
    _raise_and_resolve(storage)
    receiver.failing = 3
    assert deliver_due(storage, rules, T) == 0  # attempt 1 fails: next in 10 s
    assert deliver_due(storage, rules, T + timedelta(seconds=9)) == 0  # not due: no request
    assert receiver.failing == 2
    assert deliver_due(storage, rules, T + timedelta(seconds=10)) == 0  # 2nd fails: +20 s
    assert deliver_due(storage, rules, T + timedelta(seconds=29)) == 0
    assert receiver.failing == 1
    assert deliver_due(storage, rules, T + timedelta(seconds=30)) == 0  # 3rd fails: +25 (cap)
    assert deliver_due(storage, rules, T + timedelta(seconds=54)) == 0
    assert deliver_due(storage, rules, T + timedelta(seconds=55)) == 2
    assert [(g["event"], g["alert"]["kind"]) for g in receiver.got] == [
        ("raised", "outbox_backlog"), ("resolved", "outbox_backlog")]
    assert receiver.got[1]["alert"]["resolved_at"] == "2026-12-06T14:30:00Z"
    assert deliver_due(storage, rules, T + timedelta(hours=1)) == 0  # nothing twice
    assert len(receiver.got) == 2
    log = alerts_store.delivery_log(storage.read(), receiver.got[0]["alert"]["id"])
    assert [(x["event"], x["attempts"], x["last_error"]) for x in log] == [
        ("raised", 4, None), ("resolved", 1, None)]


def test_an_unreachable_receiver_is_an_error_kept_for_the_next_try(storage: Storage) -> None:
    rules = AlertSettings(webhook_url=f"http://127.0.0.1:{free_port()}/hook",
                          webhook_timeout_s=2, retry_initial_s=5)
    _raise_and_resolve(storage)
    assert deliver_due(storage, rules, T) == 0
    (row,) = storage.read().execute(
        "SELECT attempts, last_error, next_at FROM alert_deliveries WHERE attempts > 0")
    assert row[0] == 1 and "refused" in row[1].lower() and row[2] == "2026-12-06T15:00:05Z"


def test_backoff_doubles_up_to_the_cap() -> None:
    rules = AlertSettings(retry_initial_s=5, retry_max_s=600)
    assert [backoff_s(rules, n) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]


def test_without_a_webhook_nothing_is_sent_and_alerts_still_stored(storage: Storage) -> None:
    _raise_and_resolve(storage)
    assert deliver_due(storage, AlertSettings(), T) == 0
    assert len(alerts_store.due(storage.read(), "2026-12-07T00:00:00Z")) == 2

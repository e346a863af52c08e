"""The outbox replayed over MQTT: oldest window first, throttled, deleted only when acked.

``OutboxPublisher`` is the single thread that takes rows from the outbox oldest first and
publishes them at QoS 1, at most ``max_inflight`` unacknowledged at once and at most
``rate`` per second, so a whole chain reconnecting after an outage does not flood the
broker. A PUBACK with a success reason code (see edge.node.transport for why MQTT 5) marks the
row sent; the gateway's confirmation (``confirmed``, storesense.acks) deletes it, and a
sent row that stays unconfirmed is sent again (edge.node.resend). With ``confirm=False`` the
PUBACK deletes the row, as before end-to-end confirmation.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from edge.node.outbox import Outbox, Row, write_error
from edge.node.resend import ResendTracker
from edge.node.transport import MqttTransport
from storesense.acks import decode_confirmation

log = logging.getLogger(__name__)
PACING_BURST = 5  # sends that may follow each other without pause to make up for lateness


class OutboxPublisher:
    """One thread: outbox rows -> QoS 1 publishes, oldest window first, throttled.

    A row the broker refuses stays in the outbox; rows of other topics go on being sent,
    and the refused topic's rows wait, in order, until the transport's retry time for it.
    """

    def __init__(
        self, outbox: Outbox, transport: MqttTransport, *, rate: float = 50.0,
        max_inflight: int = 20, confirm: bool = False, confirm_timeout_s: float = 300.0,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.rate = rate
        self.max_inflight = max_inflight
        self.confirm = confirm
        self._inflight: set[int] = set()
        # rows sent before a restart and never confirmed count as sent now
        self.resends = ResendTracker(confirm_timeout_s)
        for seq in outbox.sent_seqs() if confirm else []:
            self.resends.sent(seq, time.monotonic())
        self.resent = 0
        self._write_errors: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self.published = 0

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """New rows in the outbox or a reconnect: look again now rather than at the timeout."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.notify()
        self._thread.join(timeout)

    def confirmed(self, payload: bytes) -> float | None:
        """A confirmation from the gateway (paho's thread): forget the windows it names.
        Returns the gateway's clock as the confirmation states it, if it does."""
        try:
            ids, gateway_now = decode_confirmation(payload)
        except ValueError as e:
            log.warning("ignoring a confirmation: %s", e)
            return None
        try:
            seqs = self.outbox.confirm(ids)
        except sqlite3.Error as e:  # disk full: the rows stay and are confirmed again later
            self._write_failed("deleting confirmed windows", e)
            return gateway_now
        with self._wake:
            self.resends.confirmed(seqs)
            self._wake.notify()
        return gateway_now

    def _write_failed(self, what: str, e: sqlite3.Error) -> None:
        """Logged once per kind of failure (paho's thread must not raise, nor flood)."""
        text = f"{what}: {write_error(e)}"
        if text not in self._write_errors:
            self._write_errors.add(text)
            log.error("outbox: %s (%s)", text, e)

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (used at graceful stop); True if it is. Gives up
        early when all that is left waits for a refused topic's retry time (sent rows wait
        for their confirmation until the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.stats().depth == 0:
                return True
            with self._wake:
                if not self._inflight and not len(self.resends) and not self.outbox.oldest(
                    1, skip_topics=self.transport.held_topics()
                ):
                    return False
            self.notify()
            time.sleep(0.05)
        return self.outbox.stats().depth == 0

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            row = self._next_row()
            if row is None:
                continue
            if self.rate > 0:
                # Pace sends. A late wake-up (loaded CPU) may be made up by at most
                # PACING_BURST back-to-back sends; an idle spell earns nothing more.
                period = 1.0 / self.rate
                now = time.monotonic()
                if next_send > now and self._stop.wait(next_send - now):
                    return
                next_send = max(next_send, time.monotonic() - PACING_BURST * period) + period
            if not self._send(row):
                self._stop.wait(0.5)  # paho refused (queue full?): do not spin

    def _next_row(self) -> Row | None:
        """The oldest row not in flight, once connected and below max_inflight; else wait.
        A sent row due again (edge.node.resend) goes before unsent ones."""
        with self._wake:
            ready = self.transport.connected.is_set() and len(self._inflight) < self.max_inflight
            if ready and self.confirm and (row := self._due_resend()) is not None:
                self._inflight.add(row.seq)
                self.resent += 1
                return row
            if ready:
                # Refused topics wait for their retry time; the others keep their order.
                # A row of a topic not accepted yet may have to wait for what is in
                # flight (MqttTransport.may_publish): it is not overtaken meanwhile.
                rows = self.outbox.oldest(
                    1, frozenset(self._inflight), self.transport.held_topics()
                )
                if rows and self.transport.may_publish(rows[0].topic):
                    self._inflight.add(rows[0].seq)
                    return rows[0]
            self._wake.wait(0.5)
        return None

    def _due_resend(self) -> Row | None:  # with self._wake held
        seq = self.resends.due(time.monotonic())
        if seq is None or seq in self._inflight:
            return None
        row = self.outbox.get(seq)
        if row is None:  # confirmed or dropped meanwhile
            self.resends.forget(seq)
            return None
        if self.transport.held(row.topic):
            self.resends.sent(seq, time.monotonic())  # refused topic: its turn comes later
            return None
        return row if self.transport.may_publish(row.topic) else None

    def _send(self, row: Row) -> bool:
        def acked() -> None:
            try:
                if not self.confirm:
                    self.outbox.ack(row.seq)
                # confirmed already (the gateway can be quicker than the PUBACK), or not yet
                keep = self.confirm and self.outbox.mark_sent(row.seq)
            except sqlite3.Error as e:  # disk full: the row stays unsent and goes again
                self._write_failed("marking a window sent", e)
                keep = False
            with self._wake:
                self._inflight.discard(row.seq)
                if keep:
                    self.resends.sent(row.seq, time.monotonic())
                self.published += 1
                self._wake.notify()

        def refused(error: str) -> None:
            # Keep the row: the transport holds its topic back and the row goes again
            # (oldest of its topic first) once the retry time has come.
            with self._wake:
                self._inflight.discard(row.seq)
                self._wake.notify()

        if self.transport.publish(row.topic, row.payload, what=row.message_id, on_ack=acked,
                                  on_refused=refused):
            return True
        with self._wake:
            self._inflight.discard(row.seq)
        return False

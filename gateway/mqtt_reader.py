"""paho with buffered reads that hands over QoS 1 PUBLISH packets in batches.

Stock paho reads each packet's header with one ``recv(1)`` per byte, handles one packet per
``select()``, builds an ``MQTTMessage`` (with a ``threading.Condition``) and, over MQTT 5, a
``Properties`` object for every message, and calls ``on_message`` once per message. At
thousands of messages a second that costs more CPU than validating them. This client:

- reads up to READ_CHUNK bytes per syscall and handles every packet in the buffer before
  selecting again;
- parses the QoS 1 PUBLISH packets it finds complete in the buffer itself
  (``take_publishes``: topic, packet id, payload and the DUP flag; MQTT 5 properties are
  skipped by their length, the gateway reads none and allows no topic aliases) and hands
  them to ``on_publishes`` as one list per read;
- sends many PUBACKs as one write (``ack_many``).

Everything else (CONNACK, SUBACK, PINGRESP, QoS 0 publishes, a packet split across two reads)
goes through paho's own code, and so do connects and reconnects. Only used with
``manual_ack``: the caller acks after its commit.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_CHUNK = 256 * 1024  # bytes per recv(): ~500 aggregates of a backlog in one syscall
READ_PACKETS = 4096  # packets handled per select() before paho gets to write (acks)
_PUBLISH_QOS1 = 0x32  # PUBLISH with QoS 1 (flags DUP 0x08 and RETAIN 0x01 masked off)
_DUP = 0x08  # set by the broker on a message it sent this session before (never acked)
_PUBACK = 0x40
Publish = tuple[int, bytes, bytes, bool]  # packet id, topic (UTF-8 bytes), payload, DUP


def varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it).
    IndexError when the buffer ends inside it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("malformed variable byte integer")


def parse_publish(body: bytes | bytearray, start: int, end: int, v5: bool,
                  header: int) -> Publish:
    """The variable header and payload of a QoS 1 PUBLISH in ``body[start:end]``, whose
    fixed header's first byte is ``header``."""
    topic_end = start + 2 + int.from_bytes(body[start:start + 2], "big")
    mid = int.from_bytes(body[topic_end:topic_end + 2], "big")
    pos = topic_end + 2
    if v5:
        props_len, pos = varint(body, pos)
        pos += props_len
    if pos > end:
        raise ValueError("PUBLISH header runs past its packet")
    return mid, bytes(body[start + 2:topic_end]), bytes(body[pos:end]), bool(header & _DUP)


def take_publishes(buf: bytes, pos: int, v5: bool, out: list[Publish]) -> int:
    """Parse the complete QoS 1 PUBLISH packets at ``buf[pos:]`` into ``out``; stop at the
    first packet of another kind, an incomplete one or a malformed one (paho then reads it,
    and reports what is wrong). Returns the position after the last packet taken."""
    n = len(buf)
    while pos < n and buf[pos] & 0xF6 == _PUBLISH_QOS1:
        try:
            length, start = varint(buf, pos + 1)
            end = start + length
            if end > n:
                break
            out.append(parse_publish(buf, start, end, v5, buf[pos]))
        except (IndexError, ValueError):
            break
        pos = end
    return pos


class BatchReadingClient(mqtt.Client):
    """paho Client for a subscriber that acks by hand, reading QoS 1 publishes in batches."""

    _rbuf: bytes = b""
    _rpos: int = 0
    # called with the QoS 1 publishes of one read, in the order they arrived
    on_publishes: Callable[[list[Publish]], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Publish] = []

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0  # never parse a dead connection's leftovers
        self._pending = []  # their packet ids belong to the dead connection too
        return super().reconnect()

    def message_callback_add(self, sub: str, callback: Any) -> None:
        raise NotImplementedError("this client delivers every message through on_publishes")

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when nothing is there
            if not data:
                return data  # EOF: paho reports the connection lost
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start:self._rpos]

    def _batching(self, header: int) -> bool:
        return (header & 0xF6 == _PUBLISH_QOS1 and self._manual_ack
                and self.on_publishes is not None)

    def _handle_publish(self) -> MQTTErrorCode:
        # paho read this packet (the first of a read, or one split across two reads)
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        if not self._batching(header):
            return super()._handle_publish()
        try:
            self._pending.append(parse_publish(packet, 0, len(packet),
                                               self._protocol == mqtt.MQTTv5, header))
        except (IndexError, ValueError):
            return super()._handle_publish()  # malformed: paho says how
        return MQTTErrorCode.MQTT_ERR_SUCCESS  # acked by the caller after its commit

    def _take_buffered(self) -> None:
        if self._in_packet["command"] != 0 or not self._batching(_PUBLISH_QOS1):
            return  # paho is inside a packet, or batching is off
        pos = take_publishes(self._rbuf, self._rpos, self._protocol == mqtt.MQTTv5,
                             self._pending)
        if pos != self._rpos:
            self._rpos = pos
            with self._msgtime_mutex:  # keepalive: the broker is alive
                self._last_bytes_received = time.monotonic()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        try:
            for _ in range(READ_PACKETS):
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = self._packet_read()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:  # buffer and socket both empty
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
                self._take_buffered()
            if self._rpos < len(self._rbuf) and self._sockpairW is not None:
                # packets are left in our buffer, which select() cannot see: wake it at once
                with contextlib.suppress(BlockingIOError):
                    self._sockpairW.send(b"0")
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            self._deliver()

    def _deliver(self) -> None:
        if self._pending and self.on_publishes is not None:
            batch, self._pending = self._pending, []
            with self._in_callback_mutex:
                self.on_publishes(batch)

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each packet id, in order, queued as one write."""
        if mids:
            packet = b"".join(struct.pack("!BBH", _PUBACK, 2, m) for m in mids)
            self._packet_queue(_PUBACK, packet, 0, 0)

"""The batch PUBLISH parser on hand-built packets (the real broker is in test_ingest_mqtt)."""

from __future__ import annotations

import pytest

from gateway.mqtt_reader import Publish, take_publishes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(mid: int, topic: bytes, payload: bytes, *, props: bytes | None = None,
            header: int = 0x32) -> bytes:
    """A PUBLISH packet; ``props`` given means MQTT 5 (b"" = no properties)."""
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big")
    if props is not None:
        body += _varint(len(props)) + props
    body += payload
    return bytes([header]) + _varint(len(body)) + body


def _take(buf: bytes, v5: bool, pos: int = 0) -> tuple[list[Publish], int]:
    out: list[Publish] = []
    return out, take_publishes(buf, pos, v5, out)


def test_complete_packets_are_taken_in_order_and_a_partial_one_is_left() -> None:
    big = b"x" * 20_000  # a three-byte remaining length
    a = publish(1, b"ss/v1/s1/cam/agg", b'{"a":1}', props=b"")
    b = publish(65535, b"t", big, props=b"\x02" + (3600).to_bytes(4, "big"))
    c = publish(7, b"t", b"tail", props=b"")
    out, pos = _take(a + b + c[:-1], v5=True)
    assert out == [(1, b"ss/v1/s1/cam/agg", b'{"a":1}', False), (65535, b"t", big, False)]
    assert pos == len(a + b)
    out, pos = _take(a + b + c, v5=True, pos=len(a))
    assert [m[0] for m in out] == [65535, 7] and pos == len(a + b + c)


def test_mqtt5_properties_longer_than_127_bytes_are_skipped() -> None:
    user = b"\x26" + (10).to_bytes(2, "big") + b"edge-build" + (150).to_bytes(2, "big") + b"y" * 150
    out, _ = _take(publish(3, b"t", b"payload", props=user), v5=True)
    assert out == [(3, b"t", b"payload", False)]


def test_mqtt311_has_no_properties_and_the_dup_flag_is_read_and_retain_ignored() -> None:
    buf = publish(9, b"t", b"p1", header=0x3A) + publish(10, b"t", b"p2", header=0x33)
    out, pos = _take(buf, v5=False)
    assert out == [(9, b"t", b"p1", True), (10, b"t", b"p2", False)] and pos == len(buf)


@pytest.mark.parametrize("other", [
    bytes([0x30]) + publish(1, b"t", b"q0")[1:],  # QoS 0: paho's own path
    bytes([0x34]) + publish(1, b"t", b"q2")[1:],  # QoS 2
    b"\xd0\x00",  # PINGRESP
    b"\x90\x03\x00\x01\x01",  # SUBACK
])
def test_other_packets_stop_the_batch_for_paho(other: bytes) -> None:
    first = publish(1, b"t", b"ok", props=b"")
    out, pos = _take(first + other + publish(2, b"t", b"after", props=b""), v5=True)
    assert out == [(1, b"t", b"ok", False)] and pos == len(first)


def test_a_malformed_publish_is_left_for_paho_to_report() -> None:
    bad = publish(1, b"t", b"", props=b"")[:-1] + b"\x7f"  # properties longer than the packet
    bad = bytes([bad[0], len(bad) - 2]) + bad[2:]
    out, pos = _take(bad, v5=True)
    assert out == [] and pos == 0

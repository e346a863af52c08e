"""Incoming MQTT messages -> schema objects, or a reason to dead-letter them.

Uses the very classes the edge publishes with (storesense.schema), so edge and gateway agree
on what is valid. Pure: no database, no clock. Never raises on any input.
"""

from __future__ import annotations

from dataclasses import dataclass

from storesense.schema import DeviceStatus, MessageError, WindowAggregate
from storesense.topics import Topics

MAX_REASON = 1000


@dataclass(frozen=True)
class Rejected:
    reason: str


Parsed = WindowAggregate | DeviceStatus | Rejected


def _reason(text: str) -> Rejected:
    return Rejected(text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "...")


def _model_error(kind: str, err: MessageError) -> Rejected:
    return _reason(f"invalid {kind}: {err}")


def parse_message(topics: Topics, topic: str, payload: bytes) -> Parsed:
    """Validate one message against its topic; a Rejected carries the dead-letter reason."""
    parts = topics.parse(topic)
    if parts is None:
        return _reason(f"topic not under {topics.prefix}/<store>/<id>/(agg|status)")
    store, ident, kind = parts
    try:
        if kind == "agg":
            window = WindowAggregate.from_json(payload)
            if (window.store_id, window.camera_id) != (store, ident):
                return _reason(
                    f"topic says store/camera {store}/{ident}, payload says "
                    f"{window.store_id}/{window.camera_id}"
                )
            return window
        if kind == "status":
            status = DeviceStatus.from_json(payload)
            if (status.store_id, status.device_id) != (store, ident):
                return _reason(
                    f"topic says store/device {store}/{ident}, payload says "
                    f"{status.store_id}/{status.device_id}"
                )
            return status
    except MessageError as e:
        return _model_error("window aggregate" if kind == "agg" else "device status", e)
    except Exception as e:  # no input may stop the gateway
        return _reason(f"unreadable payload: {type(e).__name__}: {e}")
    return _reason(f"the gateway does not ingest {kind!r} messages")

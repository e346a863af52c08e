"""Incoming MQTT messages -> schema objects, or a reason to dead-letter them.

Uses the very classes the edge publishes with (storesense.schema), so edge and gateway agree
on what is valid. Pure: no database, no clock. Never raises on any input.
"""

from __future__ import annotations

from dataclasses import dataclass

from storesense.schema import NAME_PATTERN, DeviceStatus, MessageError, WindowAggregate
from storesense.topics import Topics

MAX_REASON = 1000
# msgspec names a broken pattern by the pattern itself; say what it means instead
_NAME_RULE = f"matching regex {(NAME_PATTERN[:-1] + chr(92) + 'Z')!r}"
_IDENT_RULE = "matching regex '^[A-Za-z0-9]"


@dataclass(frozen=True)
class Rejected:
    reason: str


Parsed = WindowAggregate | DeviceStatus | Rejected


def _reason(text: str) -> Rejected:
    return Rejected(text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "...")


def _model_error(kind: str, err: MessageError) -> Rejected:
    text = str(err)
    if _NAME_RULE in text:
        text = text.replace(_NAME_RULE, "without control characters (NUL, newline, escape...)")
    elif _IDENT_RULE in text:
        text = f"{text} (letters, digits, '_', '.', '-'; no control characters)"
    return _reason(f"invalid {kind}: {text}")


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

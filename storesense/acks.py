"""End-to-end confirmations: the gateway tells an edge which of its windows it has committed.

After each committed batch the gateway publishes, per camera topic that had windows in it,
``{prefix}/{store}/{camera}/ack`` with ``{"confirmed": [message_id, ...], "now": <unix s>}``
(docs/mqtt.md). ``now`` is the gateway's clock, which lets an edge see that its own clock
is wrong even when it never stepped.
The edge keeps a window in its outbox until its id comes back this way, so a broker that
crashes after acknowledging a publish (PUBACK) but before saving it loses nothing: the edge
sends again what was never confirmed, and the gateway collapses repeats on message_id.
"""

from __future__ import annotations

import msgspec

MAX_IDS_PER_MESSAGE = 500  # ~50 kB at most, well under the broker's message_size_limit
MAX_ID_CHARS = 256


class _Confirmation(msgspec.Struct, forbid_unknown_fields=False):
    confirmed: list[str]
    now: float | None = None


class _MessageId(msgspec.Struct, forbid_unknown_fields=False):
    message_id: str


_decode_confirmation = msgspec.json.Decoder(_Confirmation).decode
_decode_id = msgspec.json.Decoder(_MessageId).decode
_encode = msgspec.json.Encoder().encode


def encode_confirmations(ids: list[str], now: float | None = None) -> list[bytes]:
    """Payloads confirming ``ids``, at most MAX_IDS_PER_MESSAGE each, stamped ``now``."""
    step = MAX_IDS_PER_MESSAGE
    return [_encode({"confirmed": ids[i:i + step], "now": now})
            for i in range(0, len(ids), step)]


def decode_confirmation(payload: bytes) -> tuple[list[str], float | None]:
    """The confirmed message ids and the gateway's clock; ValueError for anything else."""
    try:
        c = _decode_confirmation(payload)
    except msgspec.DecodeError as e:
        raise ValueError(f"not a confirmation: {e}") from e
    if len(c.confirmed) > MAX_IDS_PER_MESSAGE or any(len(i) > MAX_ID_CHARS for i in c.confirmed):
        raise ValueError("confirmation too large")
    return c.confirmed, c.now


def message_id_of(payload: bytes) -> str | None:
    """A window payload's message_id, read without validating the rest; None if absent."""
    try:
        mid = _decode_id(payload).message_id
    except msgspec.DecodeError:
        return None
    return mid if 0 < len(mid) <= MAX_ID_CHARS else None

"""What the broker last answered per topic: accepted, or refused and held back for a while."""

from __future__ import annotations

import time
from dataclasses import dataclass

# A refused topic is tried again after RETRY_MIN_S, doubling up to RETRY_MAX_S: an ACL is
# fixed by a person, so seconds do not matter, and each refusal costs a reconnect.
RETRY_MIN_S = 10.0
RETRY_MAX_S = 300.0
# Nor in the first second of a connection: a refusal ends the connection (Mosquitto 2.0.11),
# so the status and topics the broker accepts go first.
RETRY_AFTER_CONNECT_S = 1.0


@dataclass
class _Hold:
    """A topic the broker refused: nothing is published to it before ``until``."""

    error: str
    delay: float
    since: float  # when (re)armed; refusals of publishes sent earlier change nothing
    until: float


class TopicVerdicts:
    """Accepted topics and held-back refused ones.

    Not locked: MqttTransport calls it under its own lock, because whether a publish may
    go also depends on what is in flight there.
    """

    def __init__(self) -> None:
        self._accepted: set[str] = set()  # topics the broker took a publish to
        self._holds: dict[str, _Hold] = {}  # topics it refused, until one gets through

    def accepted(self, topic: str) -> bool:
        return topic in self._accepted

    def held(self, topic: str) -> bool:
        hold = self._holds.get(topic)
        return hold is not None and hold.until > time.monotonic()

    def held_topics(self) -> frozenset[str]:
        now = time.monotonic()
        return frozenset(t for t, h in self._holds.items() if h.until > now)

    def refusal(self, topic: str) -> str | None:
        hold = self._holds.get(topic)
        return hold.error if hold else None

    def accept(self, topic: str) -> None:
        self._accepted.add(topic)
        self._holds.pop(topic, None)

    def refuse(
        self, topic: str, error: str, sent_at: float, retry_min_s: float, retry_max_s: float,
    ) -> float | None:
        """Hold ``topic`` back; seconds until it is tried again, or None if this refusal
        changes nothing (the publish was sent before the hold began)."""
        self._accepted.discard(topic)
        now = time.monotonic()
        hold = self._holds.get(topic)
        if hold is None:
            self._holds[topic] = _Hold(error, retry_min_s, now, now + retry_min_s)
            return retry_min_s
        if sent_at < hold.since:  # in flight with the first refusal: nothing new
            return None
        # A retry after the hold, refused again: back off.
        hold.delay = min(hold.delay * 2, retry_max_s)
        hold.error, hold.since, hold.until = error, now, now + hold.delay
        return hold.delay

    def after_connect(self) -> None:
        earliest = time.monotonic() + RETRY_AFTER_CONNECT_S
        for hold in self._holds.values():
            hold.until = max(hold.until, earliest)

"""When to send again a window the broker acknowledged but the gateway never confirmed.

Pure: every time is an argument (monotonic seconds). Two rules:

- **Overtaken**: a window sent at least ``grace_s`` later has been confirmed, so the gateway
  is up and committing, and this one is missing (a broker crash lost it, or its
  confirmation was lost). Sent again at once. ``grace_s`` allows for ingest workers that
  commit in a different order than the broker received.
- **Timed out**: nothing confirmed it for ``timeout_s`` (the gateway is down, or every
  confirmation is lost). Each such round doubles the timeout up to ``max_timeout_s`` until a
  confirmation arrives, so a long gateway outage does not fill the broker's queue for it
  with copies of every window.

Windows are tracked in the order they were (last) sent; both rules pick a prefix of it.
"""

from __future__ import annotations

from collections import OrderedDict


class ResendTracker:
    def __init__(self, timeout_s: float, max_timeout_s: float | None = None,
                 grace_s: float = 30.0) -> None:
        self.base_timeout_s = timeout_s
        self.max_timeout_s = max(timeout_s, max_timeout_s or 12 * timeout_s)
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self._sent: OrderedDict[int, float] = OrderedDict()  # seq -> when last sent
        self._confirmed_sent_at = float("-inf")  # latest send time of a confirmed window
        self._timeout_round_until = float("-inf")  # the timed-out round being resent

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, seq: int, now: float) -> None:
        self._sent.pop(seq, None)
        self._sent[seq] = now

    def confirmed(self, seqs: list[int]) -> None:
        for seq in seqs:
            at = self._sent.pop(seq, None)
            if at is not None:
                self._confirmed_sent_at = max(self._confirmed_sent_at, at)
        if seqs:
            self.timeout_s = self.base_timeout_s  # the gateway is back

    def forget(self, seq: int) -> None:
        """The row is gone (dropped by the outbox bound)."""
        self._sent.pop(seq, None)

    def due(self, now: float) -> int | None:
        """The oldest-sent window to send again now, if any (it stays tracked until
        ``sent`` is called for it again)."""
        if not self._sent:
            return None
        seq, at = next(iter(self._sent.items()))
        if at + self.grace_s < self._confirmed_sent_at or at <= self._timeout_round_until:
            return seq
        if now - at >= self.timeout_s:
            # everything sent up to now - timeout goes again in this round; the next round
            # waits twice as long unless a confirmation comes first
            self._timeout_round_until = now - self.timeout_s
            self.timeout_s = min(self.timeout_s * 2, self.max_timeout_s)
            return seq
        return None

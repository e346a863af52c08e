"""How far a live stream's reader is behind the stream, and when to catch up.

Pure: ``StreamLag.observe(now, media_t, waited_s)`` takes the monotonic time a frame was read,
its media time (its presentation time in the stream) and how long the reader waited for the
frame's data to arrive, and returns how late the frame was read.

A camera sends frames at its own rate. A reader slower than that (the crowd detector on one
core against a 25 frames/s camera) reads each frame later than the one before, and nothing in
the frame says so: the frames wait in the socket, the lag grows until the camera drops the
connection, and every time taken from the read (dwell, the tracker's motion, the window a
count falls in) stretches with it.

A frame whose data the reader had to wait for (``WAITED_S``) was read on time: nothing was
queued behind it. Its offset ``now - media_t`` is the anchor, and a later frame's lateness is
its offset above the anchor (and above none lower since: network jitter only delays). Frames
read without waiting were queued; their offsets climb while the reader falls behind. Anchoring
on frames waited for, rather than on the least offset ever seen, keeps a camera's clock out of
it: one that drifts against ours, runs at the wrong rate or does not advance at all (cameras'
timestamps are not to be trusted) moves every offset, but a reader that keeps up still waits
for each frame and is re-anchored at each.

``behind`` says when to catch up, in two steps. Over ``max_lag_s`` late, only the frames the
pipeline cannot do without get their image (its cadence, about 10 a second: the line focus's
extra frames go first); over twice that, none does. Frames without an image go to the pipeline
as frames the decoder skipped (the tracker predicts across them) and cost a decode at most, so
the reader gains on the stream several times faster than it lost. Once it waits for a frame
again it has drained the queue, and is on time.
"""

from __future__ import annotations

from dataclasses import dataclass

# Half a second of lag: shedding it skips about two thirds of a second of video (a 1080p frame
# decodes about four times faster than a 25 frames/s stream sends it), which the tracker's IoU
# buffer (up to 1.5 s, TrackerSettings.max_lost_s) bridges for anyone followed that long. Not
# measured on any sequence.
MAX_LAG_S = 0.5
# Data already in the socket is demuxed in well under a millisecond; a reader that keeps up with
# a 25 frames/s camera waits tens of milliseconds for each frame. Ten milliseconds tells the two
# apart but for scheduling stalls, which at worst read a queued frame as on time, so that the
# lag is shed a little later. Not measured on any sequence.
WAITED_S = 0.010


@dataclass
class StreamLag:
    max_lag_s: float = MAX_LAG_S
    waited_s: float = WAITED_S
    behind: int = 0  # 0 on time; 1 keep only the frames the pipeline needs; 2 keep none
    _anchor: float | None = None  # offset of the last frame read on time, or a lower one since

    def observe(self, now: float, media_t: float, waited_s: float) -> float:
        """Lateness of a frame of media time ``media_t`` read at monotonic ``now`` after waiting
        ``waited_s`` for its data; updates ``behind``."""
        offset = now - media_t
        on_time = waited_s >= self.waited_s
        if on_time or self._anchor is None or offset < self._anchor:
            self._anchor = offset
        late = offset - self._anchor
        if on_time:
            self.behind = 0
        elif late > 2 * self.max_lag_s:
            self.behind = 2
        elif late > self.max_lag_s:
            self.behind = max(self.behind, 1)
        elif self.behind == 2:
            self.behind = 1  # shedding: the pipeline's own frames may go through again
        return late

"""How far a live stream's reader is behind the stream, and when to catch up.

Pure: ``StreamLag.observe(now, media_t)`` takes the monotonic time a frame was read and its
media time (its presentation time in the stream) and returns how late it was read.

A camera sends frames at its own rate. A reader slower than that (the crowd detector on one
core against a 25 frames/s camera) reads each frame later than the one before, and nothing in
the frame says so: the frames wait in the socket, the lag grows until the camera drops the
connection, and every time taken from the read (dwell, the tracker's motion, the window a
count falls in) stretches with it. While the reader keeps up, ``now - media_t`` stays
constant; network jitter only ever delays a frame, so the least offset seen is the on-time
one, and a frame's lateness is its offset above that least. The least is taken over the last
``window_s`` rather than ever, since a camera's clock drifts against ours (100 ppm is 0.36 s
an hour) and a least from hours ago would read that drift as lateness or hide real lag.

``behind`` says when to catch up: once a frame is more than ``max_lag_s`` late, frames go to
the pipeline without their image (the tracker predicts across them, as across frames the
decoder skipped) until the reader has drained what waited for it. Frames without an image cost
a decode at most, so while frames wait, each is read sooner after the one before than the
stream sent it, and its offset falls; the first frame whose offset does not fall (by a quarter
of the interval the stream sent them at) was waited for: the reader is on time again, and that
frame is an on-time offset seen afresh, so a reader that catches up again and again keeps
measuring from a true least.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Half a second of lag: shedding it skips about two thirds of a second of video (a 1080p frame
# decodes about four times faster than a 25 frames/s stream sends it), which the tracker's IoU
# buffer (up to 1.5 s, TrackerSettings.max_lost_s) bridges for anyone followed that long. Not
# measured on any sequence.
MAX_LAG_S = 0.5


@dataclass
class StreamLag:
    max_lag_s: float = MAX_LAG_S
    window_s: float = 60.0
    behind: bool = False
    _least: deque[tuple[float, float]] = field(default_factory=deque)  # (now, offset), rising
    _last: tuple[float, float] | None = None  # (media_t, offset) of the frame before

    def observe(self, now: float, media_t: float) -> float:
        """Lateness of a frame of media time ``media_t`` read at monotonic ``now``; updates
        ``behind``."""
        offset = now - media_t
        if self._last is not None and media_t < self._last[0]:
            # The stream's clock went back (a restart, or MPEG-TS timestamps wrapping after
            # 26.5 h): no reader falls behind faster than time passes, so this is not lag.
            self._least.clear()
            self._last = None
        while self._least and self._least[-1][1] >= offset:
            self._least.pop()
        self._least.append((now, offset))
        while self._least[0][0] < now - self.window_s:
            self._least.popleft()
        late = offset - self._least[0][1]
        if not self.behind:
            self.behind = late > self.max_lag_s
        elif self._last is not None and offset >= self._last[1] - (media_t - self._last[0]) / 4:
            self.behind = False  # this frame was waited for: nothing is queued behind it
        self._last = (media_t, offset)
        return late

"""A live camera's frame times are the wall clock's, which NTP (or an operator) may step back.

What keeps times between frames (the tracker's tracks, the detector profile's probe schedule,
the re-entry memory's looks) moves them by such a step, the step itself counted as no time:
otherwise everything kept before it lies in the future until the clock catches up (an hour
for an hour's step). ``BackSteps`` says by how much a frame's time went back; each keeper
shifts its own times. A step forward needs nothing: it reads as time passed.

Pure: times are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BackSteps:
    _last_t: float | None = None

    def back(self, t: float) -> float:
        """How far ``t`` went back from the last time seen (a negative step), or 0."""
        last, self._last_t = self._last_t, t
        return t - last if last is not None and t < last else 0.0

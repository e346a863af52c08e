"""Ground-truth-track mode: the counter fed the true tracks instead of detector + tracker.

With perfect tracks, whatever the counter gets wrong is the counter's own doing. Configured
to the banded truth's own definition (``truth_counting``: the same dead band, one frame on
the new side) it must reproduce that truth exactly; with its default settings it shows what
the counting rules alone cost or save.

The tracks are the considered gt rows (``edge.mot.read_gt``), every frame, fed to
``edge.pipeline.Analytics``, the object the pipeline itself counts with: ids, foot points
(bottom centre, normalised) and box heights (normalised to the frame's height).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edge.counting import CrossingEvent
from edge.mot import SeqInfo
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, CountingSettings, LineSpec

F64 = npt.NDArray[np.float64]


def truth_counting(
    points: tuple[float, float, float, float], size: tuple[int, int], band: float,
    base: CountingSettings | None = None,
) -> CountingSettings:
    """Counting settings that define a crossing as the banded truth does, for one line.

    The truth's band is ``band * min(width, height)`` pixels. ``hysteresis`` is a distance in
    normalised coordinates; for a given line the two distances are proportional (both are
    affine in the point and vanish on the line), by ``L_px / (w * h * L_norm)``, so a vertical
    line's band is ``band * min(w, h) / w`` and a horizontal one's ``... / h``. Any field whose
    name holds "height" (a band scaled by the person's height) is set to 0: the truth's band
    does not depend on the person.
    """
    w, h = size
    x1, y1, x2, y2 = points
    ratio = math.hypot((x2 - x1) * w, (y2 - y1) * h) / (w * h * math.hypot(x2 - x1, y2 - y1))
    fields = CountingSettings.model_fields
    update: dict[str, float | int] = {"hysteresis": band * min(w, h) * ratio,
                                      "min_frames_on_side": 1}
    update |= {name: 0.0 for name in fields if "height" in name}
    base = base or CountingSettings()
    return base.model_copy(update={k: v for k, v in update.items() if k in fields})


def frames_of(gt: F64, length: int) -> list[F64]:
    """The gt rows of each frame 1..length (a frame nobody is in gets no rows)."""
    order = np.argsort(gt[:, 0], kind="stable")
    rows = gt[order]
    cuts = np.searchsorted(rows[:, 0], np.arange(1, length + 2), side="left")
    return [rows[cuts[i] : cuts[i + 1]] for i in range(length)]


def count_gt_tracks(
    gt: F64, info: SeqInfo, config: AnalyticsConfig
) -> list[tuple[int, CrossingEvent]]:
    """Crossings the analytics report on the true tracks, keyed by 1-based frame."""
    analytics = Analytics(config)
    w, h = info.width, info.height
    events: list[tuple[int, CrossingEvent]] = []
    t = 0.0
    for i, rows in enumerate(frames_of(gt, info.length)):
        t = i / info.fps
        feet = np.stack([(rows[:, 2] + rows[:, 4] / 2) / w, (rows[:, 3] + rows[:, 5]) / h], 1)
        out = analytics.update(rows[:, 1].astype(np.int64), feet, t, rows[:, 5] / h)
        events.extend((_frame(e.t, info.fps), e) for e in out.crossings)
    events.extend((_frame(e.t, info.fps), e) for e in analytics.finish().crossings)
    return events


def count_lines(
    gt: F64,
    info: SeqInfo,
    config: AnalyticsConfig,
    settings_for: Callable[[LineSpec], CountingSettings] | None = None,
) -> list[tuple[int, CrossingEvent]]:
    """``count_gt_tracks`` over ``config.lines``, each line counted with its own settings when
    ``settings_for`` gives them (one Analytics per distinct settings: a config holds one)."""
    if settings_for is None:
        return count_gt_tracks(gt, info, config)
    groups: dict[CountingSettings, list[LineSpec]] = {}
    for line in config.lines:
        groups.setdefault(settings_for(line), []).append(line)
    events: list[tuple[int, CrossingEvent]] = []
    for counting, lines in groups.items():
        sub = config.model_copy(update={"lines": lines, "counting": counting})
        events.extend(count_gt_tracks(gt, info, sub))
    return sorted(events, key=lambda fe: fe[0])


def _frame(t: float, fps: float) -> int:
    return round(t * fps) + 1

"""Ground-truth-track mode: the counter fed the true tracks instead of detector + tracker.

With perfect tracks, whatever the counter gets wrong is the counter's own doing. Configured
to the banded truth's own definition (``truth_counting``: the same dead band, one frame on
the new side) it must reproduce that truth exactly; with its default settings it shows what
the counting rules alone cost or save.

The tracks are the considered gt rows (``edge.evaluation.mot.read_gt``), every frame, fed to
``edge.pipeline.Analytics``, the object the pipeline itself counts with: ids, foot points
(bottom centre, normalised) and box heights (normalised to the frame's height).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.analytics.counting import CrossingEvent, LineCounter
from edge.evaluation.mot import SeqInfo
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, CountingSettings, LineSpec

F64 = npt.NDArray[np.float64]


def counter_measures_short_side() -> bool:
    """Whether the counter measures its band in units of the frame's shorter side (it takes
    the frame's size) rather than in normalised coordinates (the counter before the
    2026-12-06 rewrite, whose ``hysteresis`` was a normalised distance)."""
    return "frame_size" in inspect.signature(LineCounter.update).parameters


def truth_counting(
    points: tuple[float, float, float, float], size: tuple[int, int], band: float,
    base: CountingSettings | None = None,
) -> CountingSettings:
    """Counting settings that define a crossing as the banded truth does, for one line: a
    dead band of ``band * min(width, height)`` pixels, one observation on the new side, and
    any band scaled by the person's size (a field named "...height..." or "...bodies...")
    off: the truth's band does not depend on the person.

    A counter measuring in units of the shorter side takes ``band`` as it is. One measuring
    normalised distances needs, per line, the pixel band times ``L_px / (w * h * L_norm)``:
    both distances are affine in the point and vanish on the line, so they are proportional
    (a vertical line: ``band * min(w, h) / w``; a horizontal one: ``... / h``).
    """
    w, h = size
    x1, y1, x2, y2 = points
    if counter_measures_short_side():
        hysteresis = band
    else:
        ratio = math.hypot((x2 - x1) * w, (y2 - y1) * h) / (w * h * math.hypot(x2 - x1, y2 - y1))
        hysteresis = band * min(w, h) * ratio
    fields = CountingSettings.model_fields
    update: dict[str, float | int] = {"hysteresis": hysteresis, "min_frames_on_side": 1}
    update |= {name: 0.0 for name in fields if "height" in name or "bodies" in name}
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
    """Crossings the analytics report on the true tracks, keyed by 1-based frame.

    A true id is one person however long the annotation leaves them out (the truth keeps
    their side across any gap), so where the analytics take them, each track ends at its last
    row (``ended``) and no timeout ends one earlier; the frame's size goes along too.
    """
    analytics = Analytics(config, **_supported(Analytics.__init__, track_timeout_s=math.inf))
    w, h = info.width, info.height
    last = {int(i): int(gt[gt[:, 1] == i, 0].max()) for i in np.unique(gt[:, 1])}
    events: list[tuple[int, CrossingEvent]] = []
    for i, rows in enumerate(frames_of(gt, info.length)):
        ids = rows[:, 1].astype(np.int64)
        feet = np.stack([(rows[:, 2] + rows[:, 4] / 2) / w, (rows[:, 3] + rows[:, 5]) / h], 1)
        ended = [tid for tid in ids.tolist() if last[tid] == i + 1]
        extra = _supported(Analytics.update, ended=ended, frame_size=(w, h))
        out = analytics.update(ids, feet, i / info.fps, rows[:, 5] / h, **extra)
        events.extend((_frame(e.t, info.fps), e) for e in out.crossings)
    events.extend((_frame(e.t, info.fps), e) for e in analytics.finish().crossings)
    return events


def _supported(func: Callable[..., object], **kwargs: Any) -> dict[str, Any]:
    """The keyword arguments ``func`` takes. The analytics are being rewritten (2026-12-06) to
    take the frame's size, the tracker's ended ids and a track timeout; before that they did
    not, and ground-truth mode runs on both."""
    params = inspect.signature(func).parameters
    return {k: v for k, v in kwargs.items() if k in params}


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

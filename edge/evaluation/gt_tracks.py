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

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edge.analytics.counting import CrossingEvent
from edge.evaluation.mot import SeqInfo
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, CountingSettings, LineSpec

F64 = npt.NDArray[np.float64]


def truth_counting(
    points: tuple[float, float, float, float], size: tuple[int, int], band: float,
    base: CountingSettings | None = None,
) -> CountingSettings:
    """Counting settings that define a crossing as the banded truth does: a dead band of
    ``band`` of the frame's shorter side (the counter measures in those units), one
    observation on the new side, no band in body heights (the truth's does not depend on the
    person), no settling (the truth counts a crossing reversed at once as two) and no side
    inferred for a track first seen inside the band (the truth gives it none). The same for
    every line; ``points`` and ``size`` are taken so a line could differ."""
    update = {"hysteresis": band, "min_frames_on_side": 1, "band_bodies": 0.0, "settle_s": 0.0,
              "band_start_across": 0.0}
    return (base or CountingSettings()).model_copy(update=update)


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
    analytics = Analytics(config, track_timeout_s=math.inf)
    w, h = info.width, info.height
    last = {int(i): int(gt[gt[:, 1] == i, 0].max()) for i in np.unique(gt[:, 1])}
    events: list[tuple[int, CrossingEvent]] = []
    for i, rows in enumerate(frames_of(gt, info.length)):
        ids = rows[:, 1].astype(np.int64)
        feet = np.stack([(rows[:, 2] + rows[:, 4] / 2) / w, (rows[:, 3] + rows[:, 5]) / h], 1)
        ended = [tid for tid in ids.tolist() if last[tid] == i + 1]
        out = analytics.update(ids, feet, i / info.fps, rows[:, 5] / h, ended=ended,
                               frame_size=(w, h))
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

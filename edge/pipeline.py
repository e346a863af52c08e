"""A camera's pipeline: detector -> tracker -> analytics -> window aggregates.

``Analytics`` is the pure core: confirmed tracks (ids + normalised foot points) and a
timestamp in, events out; tests drive it with plain arrays. ``CameraPipeline`` is the thin
loop around it that the edge node and ``analyze`` use: it runs the detector on every
``detect_every``-th frame and lets the tracker's motion model predict in between.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.analytics.cadence import FrameRate
from edge.analytics.counting import CrossingEvent, LineCounter, hidden_feet, signed_distance
from edge.analytics.groups import GroupCounter
from edge.analytics.heatmap import HeatmapGrid
from edge.analytics.passes import PassCounter, ReentryMemory, TrackerLooks
from edge.analytics.paths import PathRecorder, TransitionCounter
from edge.analytics.queues import QueueTracker, QueueVisit
from edge.analytics.staff import StaffMarker
from edge.analytics.windows import WindowAccumulator
from edge.analytics.zones import Visit, ZoneTracker
from edge.tracking.track_life import TrackLife
from edge.tracking.tracker import Tracker, boxes_of, iou_matrix
from edge.vision.demographics import DemographicsEstimator, load_demographics
from edge.vision.detections import Detections, foot_points
from edge.vision.detector import Detector
from edge.vision.profile import CHEAP_SCORE, ProfilePolicy
from edge.vision.profile import CONFIDENT as CROWD_CONFIDENT
from edge.vision.zoom import CONFIDENT, ZoomPolicy
from storesense.schema import AnalyticsConfig, ModelInfo, Trajectory, WindowAggregate

log = logging.getLogger(__name__)

TRACK_TIMEOUT_S = 2.0  # a track unseen this long has ended (> the tracker's lost buffer)
# With detect_every > 1, frames are still detected while a track whose identity is at risk
# (see identity_at_risk) is this close to a counting line (normalised): crossings, often made
# behind someone else, need every frame; occupancy, dwell and heatmaps do not.
LINE_FOCUS = 0.1

__all__ = ["Analytics", "AnalyticsOutput", "CameraPipeline", "load_demographics"]


@dataclass
class AnalyticsOutput:
    crossings: list[CrossingEvent] = field(default_factory=list)
    started: list[Visit] = field(default_factory=list)
    ended: list[Visit] = field(default_factory=list)
    transitions: list[tuple[str, str]] = field(default_factory=list)
    paths: list[Trajectory] = field(default_factory=list)
    finished_tracks: list[int] = field(default_factory=list)
    staff_crossings: list[CrossingEvent] = field(default_factory=list)  # of visitor lines
    new_staff: list[int] = field(default_factory=list)
    finished_staff: list[int] = field(default_factory=list)  # of finished_tracks
    groups: int = 0  # groups started by this frame's 'in' crossings
    queue_visits: list[QueueVisit] = field(default_factory=list)


class Analytics:
    """Lines, zones, transitions, paths and track life, as pure functions of tracks and time.

    Track lifetimes have one owner (``TrackLife``): every analytic settles a track at the frame
    the table says it ended, so a person the tracker re-identifies after an occlusion is one
    track to all of them.
    """

    def __init__(self, config: AnalyticsConfig, track_timeout_s: float = TRACK_TIMEOUT_S) -> None:
        self.paths = PathRecorder()
        self.transitions = TransitionCounter()
        self.life = TrackLife(track_timeout_s)
        self.config = config
        self.lines: list[LineCounter] = []  # visitor lines
        self.staff_lines: list[LineCounter] = []
        self.zones: list[ZoneTracker] = []  # every zone but the staff-only ones
        self.queues: list[QueueTracker] = []
        self.staff = StaffMarker([])
        self.groups = GroupCounter()
        self.reconfigure(config)

    def reconfigure(self, config: AnalyticsConfig) -> None:
        """New lines/zones; counters of lines and zones that keep their name keep their state."""
        old_lines = {c.spec.name: c for c in (*self.lines, *self.staff_lines)}
        old_zones = {z.spec.name: z for z in self.zones}
        old_queues = {q.spec.name: q for q in self.queues}
        self.lines, self.staff_lines = [], []
        for spec in config.lines:
            c = old_lines.get(spec.name)
            if c is None or c.spec != spec or c.settings != config.counting:
                c = LineCounter(spec, config.counting)
            (self.staff_lines if spec.staff else self.lines).append(c)
        self.zones, self.queues = [], []
        for zs in config.zones:
            if zs.staff_only:
                continue
            z = old_zones.get(zs.name)
            if z is None or z.spec != zs or z.settings != config.zone:
                z = ZoneTracker(zs, config.zone)
            self.zones.append(z)
            if zs.kind == "queue" and zs.exit_edge is not None:
                q = old_queues.get(zs.name)
                if q is None or q.spec != zs or q.settings != config.zone:
                    q = QueueTracker(zs, config.zone)
                self.queues.append(q)
        self.staff.zones = [zs for zs in config.zones if zs.staff_only]
        self.staff.min_frames = config.zone.inertia_frames
        self.config = config

    def update(
        self,
        ids: npt.NDArray[np.int64],
        feet: npt.NDArray[np.floating],
        t: float,
        heights: npt.NDArray[np.floating] | None = None,
        *,
        ended: list[int] | tuple[int, ...] = (),
        frame_size: tuple[int, int] | None = None,
        hidden: npt.NDArray[np.bool_] | None = None,
    ) -> AnalyticsOutput:
        """One frame's tracks (ids, normalised foot points, heights normalised to the frame's),
        the ids the tracker gave up on at this frame, the frame's (width, height), and whose
        feet are hidden behind someone nearer (counting.hidden_feet)."""
        out = AnalyticsOutput()
        _, gone = self.life.update(ids.tolist(), t, ended)
        crossed_staff = [e.track_id for line in self.staff_lines
                         for e in line.update(ids, feet, t, heights, frame_size, hidden)]
        self._mark_staff(out, self.staff.update(ids, feet, t, crossed_staff))
        crossings = [e for line in self.lines
                     for e in line.update(ids, feet, t, heights, frame_size, hidden)]
        # Staff are left out of dwell, queues, paths and groups from the frame they are marked.
        keep = ~self.staff.staff_mask(ids)
        ids, feet = ids[keep], feet[keep]
        for zone in self.zones:
            started, left = zone.update(ids, feet, t)
            out.started.extend(started)
            out.ended.extend(left)
        for q in self.queues:
            out.queue_visits.extend(q.update(ids, feet, t))
        self.paths.update(ids, feet, t)
        self.groups.frame_size = frame_size
        self.groups.observe(ids, feet, None if heights is None else heights[keep], t)
        self._settle(out, gone, t, crossings)
        return out

    def _mark_staff(self, out: AnalyticsOutput, new: list[int]) -> None:
        """Tracks marked staff now: their open visits are dropped, not reported."""
        if not new:
            return
        out.new_staff.extend(new)
        for zone in self.zones:
            zone.end(new)
        for q in self.queues:
            q.forget(new)
        self.paths.end(new)

    def finish(self) -> AnalyticsOutput:
        out = AnalyticsOutput()
        self._settle(out, self.life.finish(), float("inf"), [])
        return out

    def _settle(
        self, out: AnalyticsOutput, gone: list[int], t: float, crossings: list[CrossingEvent]
    ) -> None:
        """Tracks that ended: every analytic closes them now; then staff, groups and zone
        transitions."""
        for line in self.staff_lines:
            line.end(gone)
        for line in self.lines:
            crossings.extend(line.end(gone))
        for e in crossings:
            staff = self.staff.is_staff(e.track_id)
            (out.staff_crossings if staff else out.crossings).append(e)
            if not staff and e.direction == "in":
                out.groups += self.groups.on_in(e.track_id, e.t)
        out.finished_staff = [k for k in gone if self.staff.is_staff(k)]
        self.staff.end(gone)
        for zone in self.zones:
            out.ended.extend(zone.end(gone))
        for q in self.queues:
            out.queue_visits.extend(q.end(gone))
        for v in out.started:
            move = self.transitions.on_visit_start(v.track_id, v.zone, v.start)
            if move:
                out.transitions.append(move)
        for v in out.ended:
            self.transitions.on_visit_end(v.track_id, v.zone, v.end if v.end is not None else t)
        if t != float("inf"):
            self.transitions.expire(t)
        out.paths = self.paths.end(gone)
        out.finished_tracks = gone

    def zone_occupancy(self) -> dict[str, int]:
        return {z.spec.name: z.occupancy() for z in self.zones}

    def queue_lengths(self) -> dict[str, int]:
        return {q.spec.name: q.length() for q in self.queues}


def _reentry_memory(config: AnalyticsConfig) -> ReentryMemory:
    return ReentryMemory(window_s=config.identity.reentry_window_s)


def make_tracker(
    config: AnalyticsConfig, models_dir: str | Path | None = None, threads: int = 1
) -> Tracker:
    """The tracker a camera runs: with re-identification unless the config turns it off."""
    ident = config.identity
    if not ident.reid:
        return Tracker()
    from edge.tracking.reid import AppearanceReid
    from edge.vision.appearance import load_appearance  # onnxruntime session: only when asked for

    model = load_appearance(models_dir=models_dir, threads=threads)
    reid = AppearanceReid(model, max_age_s=ident.reid_max_age_s,
                          max_distance=ident.reid_max_distance)
    return Tracker(reid=reid)


def in_frame(boxes: npt.NDArray[np.floating], size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Whether each box's foot point (bottom centre) lies inside a frame of ``size`` (width,
    height): a lost person predicted past the frame's edge has walked out of view."""
    fx, fy = foot_points(boxes).T
    w, h = size
    return np.asarray((fx >= 0) & (fx <= w) & (fy >= 0) & (fy <= h), bool)


def identity_at_risk(
    boxes: npt.NDArray[np.float64],
    unsure: npt.NDArray[np.bool_],
    lines: list[tuple[float, float, float, float]],
    frame_size: tuple[int, int],
    focus: float,
) -> bool:
    """Whether a track within ``focus`` of a line may lose or swap its identity before the next
    detection: it is lost or tentative, or its box touches another track's box.

    Tracks alone near a line are followed well enough by the motion model between detections;
    the ones that overlap someone are where occlusions and id switches happen, and a crossing
    made then is lost or counted twice.
    """
    w, h = frame_size
    feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / (2 * w), boxes[:, 3] / h], axis=1)
    near = np.zeros(len(boxes), bool)
    for points in lines:
        near |= np.abs(signed_distance(points, feet)) < focus
    idx = np.flatnonzero(near)
    if idx.size == 0:
        return False
    if unsure[idx].any():
        return True
    iou = iou_matrix(boxes[idx], boxes)
    iou[np.arange(idx.size), idx] = 0.0  # a box always overlaps itself
    return bool((iou > 0.0).any())


def normalised_feet(tracks: Detections, frame_hw: tuple[int, int]) -> npt.NDArray[np.float64]:
    h, w = frame_hw
    feet = tracks.foot_points().astype(np.float64)
    feet[:, 0] /= w
    feet[:, 1] /= h
    return feet


class CameraPipeline:
    def __init__(
        self,
        store_id: str,
        camera_id: str,
        config: AnalyticsConfig,
        detector: Detector,
        *,
        demographics: DemographicsEstimator | None = None,
        frame_size: tuple[int, int] | None = None,
        tracker: Tracker | None = None,
        line_focus: float = LINE_FOCUS,
        crowd_detector: Detector | None = None,
    ) -> None:
        self.detector = detector
        # With a crowd detector beside the cheap one, the camera's profile is chosen from what
        # it sees (edge/vision/profile.py); without, ``detector`` is pinned.
        self.crowd_detector = crowd_detector
        self.profile = ProfilePolicy()
        self.profile_frames: Counter[str] = Counter()  # detector frames run per profile
        self.camera_id = camera_id
        self.demographics = demographics
        self.tracker = tracker or Tracker()
        self.frame_size = frame_size  # (width, height); taken from the first frame if None
        # The tracker ends tracks; the table's own timeout is only a backstop behind it.
        self.analytics = Analytics(config, self.tracker.max_keep_s() + TRACK_TIMEOUT_S)
        self.windows = WindowAccumulator(
            store_id, camera_id, config.window_s, config.zone.stop_threshold_s
        )
        self.heatmap = HeatmapGrid(config.heatmap_cols, config.heatmap_rows)
        self.config = config
        self.last_events: list[CrossingEvent] = []
        self.last_tracks: Detections = Detections.empty()
        self.people_in_view = 0  # at the last frame: tracks, and people hidden for a moment
        self.frames = 0
        self._near_line = False
        self.detector_frames = 0
        self.line_focus = line_focus  # 0 turns the line focus off: strictly every k-th frame
        self.zoom = ZoomPolicy(config.zoom)
        self.zoom_frames: Counter[float] = Counter()  # detector frames run at each zoom
        self.rate = FrameRate()  # for detect_every = 0 (auto)
        # Passes and unique visitors (edge/analytics/passes.py): looks in memory only.
        self.looks = TrackerLooks.of(self.tracker)
        self.reentry = _reentry_memory(config)
        self.passes = PassCounter(self.reentry)

    def model_infos(self) -> list[ModelInfo]:
        infos = self.detector.model_infos()
        if self.crowd_detector is not None:
            infos += self.crowd_detector.model_infos()
        if self.demographics is not None:
            infos += self.demographics.model_infos()
        return infos

    def reconfigure(self, config: AnalyticsConfig) -> None:
        self.analytics.reconfigure(config)
        if (config.heatmap_cols, config.heatmap_rows) != (self.heatmap.cols, self.heatmap.rows):
            self.heatmap = HeatmapGrid(config.heatmap_cols, config.heatmap_rows)
        self.windows.stop_threshold_s = config.zone.stop_threshold_s
        self.reentry.window_s = config.identity.reentry_window_s
        if config.zoom != self.config.zoom:
            self.zoom = ZoomPolicy(config.zoom)
        if config.window_s != self.windows.window_s:
            self.windows.window_s = config.window_s  # takes effect from the next window
        self.config = config

    def detects_next(self) -> bool:
        """Whether the next process() call runs the detector (callers may skip decoding else)."""
        return self.needs_frame(0)

    def detect_every(self) -> int:
        """The cadence in force: the configured k, or for 0 (auto) ~10 detections a second of
        the frames' own timestamps (edge/analytics/cadence.py)."""
        return self.config.detect_every or self.rate.detect_every()

    def detects_on_cadence(self, ahead: int = 0) -> bool:
        """Whether the frame ``ahead`` frames after the next one is one of the cadence's (about
        10 detections a second): the frames a node behind its live camera keeps, the line
        focus's extra ones going first (edge/vision/live_lag.py)."""
        k = self.detect_every()
        return k == 1 or (self.frames + ahead) % k == 0

    def needs_frame(self, ahead: int) -> bool:
        """Whether the frame ``ahead`` frames after the next one may run the detector.

        Judged by what is known now (the cadence, and the line focus as it stands), for sources
        that decide before the frame is due whether to decode it at all (B-frames are decoded
        ahead of display). A frame the source then did not decode goes in with
        ``process(None, t, decoded=False)``.
        """
        # The focus judges the next frame only: a frame further ahead (a B-frame decoded before
        # its turn) is not decoded for it; if it is decoded anyway, it is detected when due.
        return self.detects_on_cadence(ahead) or (self._near_line and ahead <= 0)

    def process(
        self, image_bgr: npt.NDArray[np.uint8] | None, t: float, *, decoded: bool = True
    ) -> list[WindowAggregate]:
        """One frame. ``image_bgr`` may be None on frames where detects_next() was False.

        ``decoded=False``: the source did not decode this frame (a non-reference frame skipped
        because needs_frame() said no when it was decoded ahead); the tracker predicts across
        it even if the detector was due. ``image_bgr`` may be a copy scaled down to
        ``detector.input_size()``: the frame's size must then be given as ``frame_size``.
        """
        closed = self._roll(t)
        detect = self.detects_next() and decoded
        self.rate.observe(t)
        self.frames += 1
        if detect and image_bgr is None:
            raise ValueError("process(): this frame runs the detector and needs the image")
        if image_bgr is not None and self.frame_size is None:
            self.frame_size = (image_bgr.shape[1], image_bgr.shape[0])
        full = image_bgr is not None and (image_bgr.shape[1], image_bgr.shape[0]) == self.frame_size
        dets = None
        if detect and image_bgr is not None:
            if full or self.frame_size is None:
                dets = self._detect(image_bgr, t)
            else:  # a pre-scaled image has no more pixels to zoom into
                dets = self.detector(image_bgr, (self.frame_size[1], self.frame_size[0]))
                self.profile_frames["pinned"] += 1  # pre-scaled: the cheap detector only
            self.detector_frames += 1
        # Re-identification crops people from the frame the boxes are in (not a pre-scaled one).
        tracks = self.tracker.step(dets, t, image_bgr if full else None)
        self.last_tracks = tracks
        if self.frame_size is None:
            raise ValueError("process(): the first frame must carry an image")
        w, h = self.frame_size
        ids = tracks.tracker_id if tracks.tracker_id is not None else np.zeros(0, np.int64)
        feet = normalised_feet(tracks, (h, w))
        heights = (tracks.xyxy[:, 3] - tracks.xyxy[:, 1]).astype(np.float64) / h
        out = self.analytics.update(
            ids, feet, t, heights, ended=self.tracker.ended, frame_size=self.frame_size,
            hidden=hidden_feet(tracks.xyxy),
        )
        if self.config.demographics and self.demographics is not None and full:
            assert image_bgr is not None
            self.demographics.observe(image_bgr, tracks)
        still_here = in_frame(self.tracker.coasting(t), self.frame_size)
        self.people_in_view = len(tracks) + int(still_here.sum())
        self._record(out, t, self.people_in_view)
        if self.looks is not None:
            self.looks.refresh(self.tracker.tracks)
        self.reentry.forget_before(t)
        self.heatmap.add(feet[~self.analytics.staff.staff_mask(ids)], t)
        self.last_events = out.crossings
        self._near_line = self._tracks_near_line()
        return closed

    def _detect(self, image: npt.NDArray[np.uint8], t: float) -> Detections:
        """The profile's detector on a full frame; both on a probe frame, to choose the
        profile from what each finds (edge/vision/profile.py)."""
        crowd, policy = self.crowd_detector, self.profile
        in_use = policy.profile if crowd is not None else "sparse"
        self.profile_frames[in_use if crowd is not None else "pinned"] += 1
        if crowd is None or not policy.probe_due(t):
            if in_use == "crowd" and crowd is not None:
                return crowd(image)
            return self._cheap(image, t)
        cheap = self._at_zoom(image, self.zoom.zoom)
        dense = crowd(image)
        after = policy.observe(
            cheap.xyxy[cheap.confidence >= CHEAP_SCORE],
            dense.xyxy[dense.confidence >= CROWD_CONFIDENT],
            t,
        )
        if after != in_use:
            log.info("camera %s: detector profile %s -> %s (cheap detector's recall %.2f)",
                     self.camera_id, in_use, after, policy.recall or 0.0)
        return dense if in_use == "crowd" else cheap

    def cost_summary(self) -> dict[str, int]:
        """Where the work went: detector frames per profile (sparse, crowd, or pinned to one
        model), people embedded for re-identification, and tracks it revived."""
        reid = self.tracker.reid
        embed = getattr(reid, "embed", None)
        return {
            **{f"detector_frames_{p}": n for p, n in sorted(self.profile_frames.items())},
            "reid_crops_embedded": int(getattr(embed, "crops_embedded", 0)),
            "tracks_revived": self.tracker.revived,
            "identities_exchanged": self.tracker.exchanged,
        }

    def zoom_summary(self) -> dict[str, int]:
        """Detector frames per zoom, keyed "1", "1.25", ..., for the JSON that reports them."""
        return {f"{z:g}": n for z, n in sorted(self.zoom_frames.items())}

    def _cheap(self, image: npt.NDArray[np.uint8], t: float) -> Detections:
        """The cheap (or pinned) detector at the camera's zoom. On a zoom probe frame it runs
        at zoom 1 and at the largest zoom, the zoom is chosen from what zoom 1 missed
        (edge/vision/zoom.py), and the frame gets the closer look's boxes."""
        (h, w), zoom, det = image.shape[:2], self.zoom, self.detector
        closer = zoom.settings.max_zoom
        probe = det.layout.zoom_probed and det.ratio(h, w, closer) > det.ratio(h, w)
        if not (probe and zoom.probe_due(t)):
            return self._at_zoom(image, zoom.zoom)
        near, far = det(image, zoom=1.0), det(image, zoom=closer)
        self.zoom_frames[1.0] += 1
        before = zoom.zoom
        after = zoom.observe_probe(near.xyxy[near.confidence >= CHEAP_SCORE],
                                   far.xyxy[far.confidence >= CROWD_CONFIDENT], t)
        if after != before:
            log.info("camera %s: detector zoom %.2f -> %.2f (zoom 1 finds %.2f of the people "
                     "zoom %.2f finds)", self.camera_id, before, after,
                     zoom.probe.recall or 0.0, closer)
        self._observe_zoom(far, h, w, closer)
        return far

    def _at_zoom(self, image: npt.NDArray[np.uint8], zoom: float) -> Detections:
        """The cheap (or pinned) detector at ``zoom``, its people fed to the zoom's heights."""
        dets = self.detector(image, zoom=zoom)
        self._observe_zoom(dets, image.shape[0], image.shape[1], zoom)
        return dets

    def _observe_zoom(self, dets: Detections, height: int, width: int, used: float) -> None:
        self.zoom_frames[used] += 1
        box = dets.xyxy[dets.confidence >= CONFIDENT]
        at_unit = (box[:, 3] - box[:, 1]) * self.detector.ratio(height, width)
        before = self.zoom.zoom
        after = self.zoom.observe(at_unit)
        if after != before:
            log.info(
                "camera %s: detector zoom %.2f -> %.2f (median person %.0f px at zoom 1)",
                self.camera_id, before, after, self.zoom.median_px,
            )

    def _tracks_near_line(self) -> bool:
        if self.detect_every() == 1 or self.line_focus <= 0 or not self.tracker.tracks:
            return False
        if self.frame_size is None:
            return False
        trs = self.tracker.tracks
        unsure = np.array([tr.lost or tr.hits < self.tracker.settings.min_hits for tr in trs])
        return identity_at_risk(
            boxes_of(trs),
            unsure,
            [line.spec.points for line in self.analytics.lines],
            self.frame_size,
            self.line_focus,
        )

    def flush(self, t: float) -> list[WindowAggregate]:
        """Settle pending crossings and visits and close the current window (shutdown)."""
        out = self.analytics.finish()
        self.last_events = out.crossings
        if self.windows.is_open:
            self._record(out, t, None)
        return self.windows.close(self.heatmap.take(), early_at=t)

    def _roll(self, t: float) -> list[WindowAggregate]:
        if self.windows.due(t):
            return self.windows.close(self.heatmap.take())
        return []

    def _record(self, out: AnalyticsOutput, t: float, occupancy: int | None) -> None:
        w = self.windows
        if occupancy is not None:
            w.add_frame(t, occupancy, self.analytics.zone_occupancy(),
                        self.analytics.queue_lengths())
        w.add_crossings(t, out.crossings, [c.spec.name for c in self.analytics.lines])
        w.add_visits(t, out.started, out.ended)
        w.add_transitions(t, out.transitions)
        w.add_paths(t, out.paths)
        w.add_retail(t, out.staff_crossings, len(out.new_staff), out.groups, self._unique(out))
        w.add_queue_visits(t, out.queue_visits)
        self._vote(out.finished_tracks, set(out.finished_staff), t)

    def _unique(self, out: AnalyticsOutput) -> int:
        """Unique visitors among this frame's 'in' crossings (the rest are re-entries)."""
        n = 0
        ids = self.last_tracks.tracker_id
        in_view = frozenset(ids.tolist()) if ids is not None else frozenset()
        for e in out.crossings:
            if e.direction != "in":
                continue
            n += self.passes.on_in(e.track_id, partial(self._look, e.track_id), e.t, in_view)
        return n

    def _look(self, track_id: int) -> npt.NDArray[np.float32] | None:
        return self.looks.look(track_id) if self.looks is not None else None

    def _vote(self, finished: list[int], staff: set[int], t: float) -> None:
        """Demographics: one vote per unique visitor, cast when their track ends (the
        estimate is then over the whole track); other tracks' estimates are dropped, and so
        is the vote of a visitor who turned out to be staff."""
        est = self.demographics
        people = []
        for k in finished:
            person = est.end_track(k) if est else ("unknown", "unknown")
            if self.passes.end(k) and k not in staff:
                people.append(person)
        if self.config.demographics:
            self.windows.add_demographics(t, people)

"""The one versioned message schema shared by edge and gateway.

Every message an edge node publishes, and every remote configuration HQ sends, is one of the
models below. The gateway validates with the same classes. No model has a field that can carry
pixels, face crops or embeddings: only counts, seconds, normalised coordinates and names.

Versioning: ``SCHEMA_VERSION`` is bumped on any change that an older reader would misread.
Readers reject other versions (the gateway dead-letters them with the reason).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1

# Ids appear in MQTT topics and file names: keep them to a safe alphabet.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, strict=True)]
# Names (lines, zones) are shown on dashboards and written to exports: no control characters
# (NUL, newline, escape, C1). Configuration is checked by pydantic's regex engine, in which
# `$` is the end of the text; messages by Python's re (msgspec), where `$` also matches
# before a final newline, hence `\Z` in the message patterns below.
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True,
                                        pattern=NAME_PATTERN)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Seconds = Annotated[float, Field(ge=0.0, le=86_400.0 * 31, allow_inf_nan=False)]
Point = tuple[UnitFloat, UnitFloat]

# Dwell histogram bin edges in seconds: bin i holds visits with edges[i] <= dwell < edges[i+1],
# the last bin is open-ended. Fixed in the schema so the gateway can merge windows and give
# percentiles over any period (window p50/p90 alone cannot be merged).
DWELL_BIN_EDGES_S: tuple[float, ...] = (0, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)

# Coarse age bands for the age/gender model (valid for adults 18-75 per its maker; younger
# faces fall into the first band, which is why it is not called "18-24").
AGE_BANDS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS: tuple[str, ...] = ("female", "male")


class Strict(BaseModel):
    """Base: unknown keys are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- analytics config


class LineSpec(Strict):
    """A counting line in normalised image coordinates (0..1, origin top-left).

    Walking from the line's left side to its right side (seen from (x1, y1) towards (x2, y2))
    counts as "in", unless ``in_direction`` says otherwise.
    """

    name: Name
    points: tuple[UnitFloat, UnitFloat, UnitFloat, UnitFloat] = Field(
        description="x1, y1, x2, y2 normalised to the frame"
    )
    in_direction: Literal["left_to_right", "right_to_left"] = "left_to_right"
    staff: bool = Field(
        False, description="a staff line (the stock room door): a track that crosses it is "
        "staff for the rest of its life; its crossings are not visitors (edge/analytics/staff.py)",
    )

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineSpec:
        x1, y1, x2, y2 = self.points
        if math.hypot(x2 - x1, y2 - y1) < 1e-3:
            raise ValueError(f"line {self.name!r}: points must be distinct, got {self.points}")
        return self


class ZoneSpec(Strict):
    """A polygon zone (display, queue, area) in normalised image coordinates."""

    name: Name
    polygon: list[Point] = Field(min_length=3, max_length=64)
    kind: Literal["display", "area", "queue", "checkout", "entrance"] = "area"
    staff_only: bool = Field(
        False, description="a staff-only zone (behind the till): a track whose feet stay in it "
        "is staff for the rest of its life; the zone reports no visits of its own",
    )
    exit_edge: int | None = Field(
        None, ge=0, le=63,
        description="queue zones: the polygon edge from vertex i to vertex i+1 (the last to "
        "the first) that people leave by when served; leaving by another edge is abandonment",
    )

    @model_validator(mode="after")
    def _queue_rules(self) -> ZoneSpec:
        if self.exit_edge is not None:
            if self.kind != "queue":
                raise ValueError(f"zone {self.name!r}: exit_edge is for kind 'queue' only, "
                                 f"got kind {self.kind!r}")
            if self.exit_edge >= len(self.polygon):
                raise ValueError(f"zone {self.name!r}: exit_edge must be < "
                                 f"{len(self.polygon)} (its vertices), got {self.exit_edge}")
        if self.staff_only and self.kind == "queue":
            raise ValueError(f"zone {self.name!r}: a staff-only zone cannot be a queue")
        return self


class CountingSettings(Strict):
    """The dead band and confirmation that stop box jitter at a line from double counting."""

    hysteresis: float = Field(
        0.01, ge=0.0, le=0.2,
        description="least half-width of the dead band around a line, in units of the frame's "
        "shorter side; a foot point inside the band keeps the side it had",
    )
    band_bodies: float = Field(
        0.05, ge=0.0, le=2.0,
        description="half-width of the dead band in the person's own box heights, when that is "
        "wider than `hysteresis`: a box's bottom edge strays from the feet by about this "
        "much (docs/accuracy.md), more for people drawn large",
    )
    min_frames_on_side: int = Field(
        2, ge=1, le=100,
        description="consecutive observations on the new side before a crossing counts",
    )
    settle_s: float = Field(
        1.0, ge=0.0, le=10.0,
        description="a crossing the same track reverses within this many seconds is a sway or "
        "a swap of identities on the line, not two crossings: neither counts (0 = off)",
    )
    band_start_across: float = Field(
        2.0, ge=0.0, le=100.0,
        description="a track first seen inside the band that leaves it having moved at least "
        "this many times as far across the line as along it came from the far side, and "
        "crossed (a person found only on reaching the line, after being hidden behind others); "
        "one that leaves it otherwise, walking along the line, did not (0 = off: a track's "
        "first side is where it first leaves the band)",
    )


class ZoneSettings(Strict):
    inertia_frames: int = Field(
        3, ge=1, le=100, description="consecutive observations inside before a visit starts"
    )
    exit_grace_s: float = Field(
        1.0, ge=0.0, le=60.0, description="absence tolerated before a visit ends"
    )
    stop_threshold_s: float = Field(
        5.0, ge=0.0, le=600.0, description="a visit at least this long counts as a stop"
    )


class DetectorZoom(Strict):
    """How much larger than its trained scale the detector sees a frame.

    At the trained scale (416 px across for yolox_nano) a person far from an elevated camera
    is a few dozen pixels tall, and a small model misses most of them. ``auto`` watches the
    heights of the people the detector finds and zooms in while most are short; the
    detector's cost grows with the square of the zoom, so it zooms out again when they grow.
    Heights are in pixels of the trained-scale canvas, whatever the zoom, so the rule reads
    the same for every camera and resolution. The people a detector misses are not among the
    heights it reports, so ``auto`` also runs it at zoom 1 and at ``max_zoom`` on a few
    sampled frames (the first five, then five every ten minutes) and holds ``max_zoom`` while
    zoom 1 finds fewer than 0.8 of the people the closer look finds (edge/vision/zoom.py).
    """

    mode: Literal["auto", "fixed"] = Field(
        "auto",
        description="auto: chosen from the people found and from what zoom 1 misses on "
        "sampled frames; fixed: always `zoom`",
    )
    zoom: float = Field(
        1.0, ge=1.0, le=3.0, description="fixed: the zoom; auto: the zoom to start at"
    )
    max_zoom: float = Field(
        2.0, ge=1.0, le=3.0, description="auto: the largest zoom it may choose"
    )
    small_px: float = Field(
        32.0, ge=8.0, le=256.0,
        description="auto: zoom in when the median person found is shorter than this at zoom 1 "
        "(four cells of the model's finest 8 px stride)",
    )
    target_px: float = Field(
        48.0, ge=8.0, le=256.0,
        description="auto: zoom so that the median person is this tall; at zoom 1 people this "
        "tall need no zoom, and it returns to 1",
    )

    @model_validator(mode="after")
    def _ordered(self) -> DetectorZoom:
        if self.small_px > self.target_px:
            raise ValueError(
                f"small_px must be <= target_px, got {self.small_px} > {self.target_px}"
            )
        if self.mode == "auto" and self.zoom > self.max_zoom:
            raise ValueError(f"zoom must be <= max_zoom, got {self.zoom} > {self.max_zoom}")
        return self


class IdentitySettings(Strict):
    """Keeping a person's identity through occlusions: re-identification inside the tracker."""

    reid: bool = Field(
        True, description="continue a lost track when a person who looks the same appears where "
        "they could have walked (appearance embeddings stay inside the edge process)",
    )
    reid_max_age_s: float = Field(
        3.0, ge=0.5, le=30.0, description="how long a lost person may be found again"
    )
    reid_max_distance: float = Field(
        0.4, gt=0.0, lt=2.0,
        description="largest cosine distance between two looks of the same person",
    )
    reentry_window_s: float = Field(
        1800.0, ge=0.0, le=4 * 3600.0,
        description="an entrance 'in' whose look matches one of the last this many seconds is "
        "a re-entry: a pass, not a new unique visitor; looks are kept in memory only, this "
        "long (edge/analytics/passes.py; 0 = every pass is a unique visitor)",
    )


class AnalyticsConfig(Strict):
    """Everything a camera's analytics need; sent as remote config and read from edge.toml."""

    lines: list[LineSpec] = Field(default_factory=list, max_length=16)
    zones: list[ZoneSpec] = Field(default_factory=list, max_length=64)
    counting: CountingSettings = Field(default_factory=CountingSettings)
    zone: ZoneSettings = Field(default_factory=ZoneSettings)
    window_s: int = Field(60, ge=10, le=3600, description="aggregation window length")
    detect_every: int = Field(
        0, ge=0, le=30,
        description="run the detector on every k-th frame and predict between; 0 = auto: "
        "about 10 detections a second of the camera's own frame times",
    )
    zoom: DetectorZoom = Field(default_factory=DetectorZoom)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    heatmap_cols: int = Field(32, ge=4, le=128)
    heatmap_rows: int = Field(18, ge=4, le=128)
    demographics: bool = Field(True, description="estimate age band and gender per track")

    @model_validator(mode="after")
    def _unique_names(self) -> AnalyticsConfig:
        for kind, names in (
            ("line", [x.name for x in self.lines]),
            ("zone", [z.name for z in self.zones]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"duplicate {kind} names: {sorted(dup)}")
        return self


# --------------------------------------------------------------------------- messages
#
# What devices publish is decoded by the gateway thousands of times a second, so messages are
# msgspec Structs: decoding and validating one window takes a quarter of the time pydantic
# took (docs/gateway.md). Configuration above stays pydantic: it is read once, and its errors
# name the field in the words an operator needs. Constructing a Struct does not validate;
# ``to_json`` does, by decoding what it is about to send with the gateway's own decoder.

MsgCount = Annotated[int, Meta(ge=0, le=10_000_000)]
MsgIdent = Annotated[str, Meta(pattern=IDENT_PATTERN[:-1] + r"\Z")]
MsgName = Annotated[str, Meta(min_length=1, max_length=64, pattern=NAME_PATTERN[:-1] + r"\Z")]
MsgSeconds = Annotated[float, Meta(ge=0.0, le=86_400.0 * 31)]
MsgUnit = Annotated[float, Meta(ge=0.0, le=1.0)]
Instant = Annotated[datetime, Meta(tz=True)]  # an instant: a time without a zone is refused
CameraState = Literal["starting", "ok", "reconnecting", "failed", "stopped"]
DeviceState = Literal["online", "offline"]
M = TypeVar("M", bound="Message")
MessageError = msgspec.DecodeError  # bad JSON, or JSON that breaks a rule (its ValidationError)


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False):
    """Base of every published message: unknown keys are an error, instances are immutable.

    Each subclass repeats kw_only (per class in msgspec: required fields may then follow
    ones with defaults) and frozen (inherited at run time, but mypy wants it said)."""

    def to_json(self) -> bytes:
        data = _ENCODER.encode(self)
        _decoder(type(self)).decode(data)  # raises MessageError, naming the field
        return data

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @classmethod
    def from_json(cls: type[M], data: bytes | str) -> M:
        decoded: M = _decoder(cls).decode(data)
        return decoded

    @classmethod
    def from_dict(cls: type[M], data: Any) -> M:
        """Validate builtins (dicts, lists, ISO strings) as if they had come as JSON."""
        return cls.from_json(_ENCODER.encode(data))


_ENCODER = msgspec.json.Encoder()


@cache
def _decoder(cls: type[M]) -> msgspec.json.Decoder[M]:
    return msgspec.json.Decoder(cls)


class LineCount(Message, frozen=True, kw_only=True):
    line: MsgName
    in_count: MsgCount
    out_count: MsgCount


class OccupancyStats(Message, frozen=True, kw_only=True):
    """People tracked in view (or in a zone) sampled over the window."""

    avg: Annotated[float, Meta(ge=0.0, le=10_000.0)]
    max: MsgCount

    def __post_init__(self) -> None:
        if self.avg > self.max + 1e-6:
            raise ValueError(f"occupancy avg {self.avg} exceeds max {self.max}")


class ZoneStats(Message, frozen=True, kw_only=True):
    zone: MsgName
    entries: MsgCount  # visits that started in the window (people passing)
    visits: MsgCount  # visits that ended in the window (the dwell figures are theirs)
    stops: MsgCount  # ended visits at least stop_threshold_s long
    dwell_total_s: MsgSeconds
    dwell_mean_s: MsgSeconds
    dwell_p50_s: MsgSeconds
    dwell_p90_s: MsgSeconds
    dwell_histogram: list[MsgCount]  # counts per DWELL_BIN_EDGES_S bin
    occupancy: OccupancyStats

    def __post_init__(self) -> None:
        if len(self.dwell_histogram) != len(DWELL_BIN_EDGES_S):
            raise ValueError(
                f"dwell_histogram needs {len(DWELL_BIN_EDGES_S)} bins, got "
                f"{len(self.dwell_histogram)}"
            )
        if sum(self.dwell_histogram) != self.visits:
            raise ValueError("dwell_histogram must sum to visits")
        if self.stops > self.visits:
            raise ValueError(f"stops {self.stops} exceed visits {self.visits}")


class Transition(Message, frozen=True, kw_only=True):
    from_zone: MsgName
    to_zone: MsgName
    count: Annotated[int, Meta(ge=1, le=10_000_000)]


class Heatmap(Message, frozen=True, kw_only=True):
    """Dwell-weighted foot points: seconds spent per cell, row-major, normalised frame grid."""

    cols: Annotated[int, Meta(ge=1, le=128)]
    rows: Annotated[int, Meta(ge=1, le=128)]
    cells: list[Annotated[float, Meta(ge=0.0, le=1e9)]]

    def __post_init__(self) -> None:
        if len(self.cells) != self.cols * self.rows:
            raise ValueError(
                f"heatmap cells: expected {self.cols}x{self.rows}={self.cols * self.rows}, "
                f"got {len(self.cells)}"
            )


# Largest cell a PackedHeatmap holds: uint32 thousandths of a second (~49.7 person-days in one
# cell in one window; 500 people for an hour is 1.8M s).
_U32_MAX = 2**32 - 1
PACKED_CELL_MAX = _U32_MAX / 1000


class PackedHeatmap(Message, frozen=True, kw_only=True):
    """A Heatmap whose cells are little-endian uint32 thousandths of a second, row-major
    (``cells_ms``: base64 in JSON). The edge rounds cells to thousandths anyway, so nothing
    is lost, and a reader takes 4 bytes a cell without parsing a number: for a 64x48 grid
    ~0.1 ms less gateway CPU a window than 3,072 JSON numbers (docs/gateway.md). Sent in a
    WindowAggregatePacked, only to gateways that read it."""

    cols: Annotated[int, Meta(ge=1, le=128)]
    rows: Annotated[int, Meta(ge=1, le=128)]
    cells_ms: Annotated[bytes, Meta(max_length=4 * 128 * 128)]

    def __post_init__(self) -> None:
        if len(self.cells_ms) != 4 * self.cols * self.rows:
            raise ValueError(
                f"heatmap_packed cells_ms: expected 4 bytes x {self.cols}x{self.rows}="
                f"{4 * self.cols * self.rows}, got {len(self.cells_ms)}")

    @classmethod
    def of(cls, heatmap: Heatmap) -> PackedHeatmap | None:
        """The heatmap packed, or None when a cell is not a whole number of thousandths
        within PACKED_CELL_MAX (then send the Heatmap)."""
        ms = [round(c * 1000) for c in heatmap.cells]
        if any(m / 1000 != c for m, c in zip(ms, heatmap.cells, strict=True)) or \
                max(ms, default=0) > _U32_MAX:
            return None
        return cls(cols=heatmap.cols, rows=heatmap.rows,
                   cells_ms=b"".join(m.to_bytes(4, "little") for m in ms))


class Demographics(Message, frozen=True, kw_only=True):
    """Visitors (completed tracks) per age band and gender; 'unknown' when no face was seen."""

    age_bands: dict[str, MsgCount] = msgspec.field(default_factory=dict)
    genders: dict[str, MsgCount] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _AGE_KEYS.issuperset(self.age_bands):
            bad = sorted(set(self.age_bands) - _AGE_KEYS)
            raise ValueError(f"unknown age bands {bad}; allowed {list(AGE_BANDS)}")
        if not _GENDER_KEYS.issuperset(self.genders):
            bad = sorted(set(self.genders) - _GENDER_KEYS)
            raise ValueError(f"unknown genders {bad}; allowed {list(GENDERS)}")


_AGE_KEYS = frozenset((*AGE_BANDS, "unknown"))
_GENDER_KEYS = frozenset((*GENDERS, "unknown"))


class StaffCounts(Message, frozen=True, kw_only=True):
    """Crossings of the visitor lines by tracks marked staff (edge/analytics/staff.py): left
    out of ``lines`` and reported here; ``tracks``: tracks marked staff in the window."""

    in_count: MsgCount = 0
    out_count: MsgCount = 0
    tracks: MsgCount = 0


class QueueStats(Message, frozen=True, kw_only=True):
    """A queue zone over the window (edge/analytics/queues.py): its length (people in it,
    sampled per frame), and the visits that ended: served (left by the exit edge; their
    waits in ``wait_histogram``, DWELL_BIN_EDGES_S bins, so the gateway merges windows),
    abandoned (left by another edge after waiting) and lost (the track ended inside)."""

    zone: MsgName
    length: OccupancyStats
    served: MsgCount
    abandoned: MsgCount
    lost: MsgCount = 0
    wait_histogram: list[MsgCount]

    def __post_init__(self) -> None:
        if len(self.wait_histogram) != len(DWELL_BIN_EDGES_S):
            raise ValueError(f"wait_histogram needs {len(DWELL_BIN_EDGES_S)} bins, got "
                             f"{len(self.wait_histogram)}")
        if sum(self.wait_histogram) != self.served:
            raise ValueError("wait_histogram must sum to served")


class Trajectory(Message, frozen=True, kw_only=True):
    """A short anonymous path: a few normalised foot points, no id, no time of day."""

    points: Annotated[list[tuple[MsgUnit, MsgUnit]], Meta(min_length=2, max_length=32)]
    duration_s: MsgSeconds


def message_id(store_id: str, camera_id: str, window_start: datetime) -> str:
    """Stable id of a window: the gateway upserts on it, so redeliveries collapse."""
    return f"{store_id}/{camera_id}/{window_key(window_start)}"


def window_key(window_start: datetime) -> str:
    """The part of a message id after '<store>/<camera>/'. Keys sort as their window starts
    do, so one camera's windows over a time span are one range of message ids."""
    return f"{_compact_utc(window_start)}/v{SCHEMA_VERSION}"


@lru_cache(maxsize=4096)  # the windows of a batch share a few starts
def _compact_utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class WindowAggregate(Message, frozen=True, kw_only=True):
    """What an edge camera publishes once per window (QoS 1, from the durable outbox)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["window"] = "window"
    message_id: str
    store_id: MsgIdent
    camera_id: MsgIdent
    window_start: Instant
    window_end: Instant
    frames: MsgCount
    simulated: bool = False  # true for demo data not measured from video
    lines: Annotated[list[LineCount], Meta(max_length=16)] = msgspec.field(default_factory=list)
    occupancy: OccupancyStats
    zones: Annotated[list[ZoneStats], Meta(max_length=64)] = msgspec.field(default_factory=list)
    transitions: Annotated[list[Transition], Meta(max_length=4096)] = msgspec.field(
        default_factory=list)
    heatmap: Heatmap | None = None
    demographics: Demographics = msgspec.field(default_factory=Demographics)
    paths: Annotated[list[Trajectory], Meta(max_length=64)] = msgspec.field(default_factory=list)
    # Retail figures (issue 16); None from devices that do not compute them. ``groups``:
    # groups that crossed in (edge/analytics/groups.py); ``unique_visitors``: 'in' crossings
    # that were not re-entries (edge/analytics/passes.py). Both count the lines' in_count.
    staff: StaffCounts | None = None
    groups: MsgCount | None = None
    unique_visitors: MsgCount | None = None
    queues: Annotated[list[QueueStats], Meta(max_length=64)] = msgspec.field(
        default_factory=list)

    def __post_init__(self) -> None:
        span = (self.window_end - self.window_start).total_seconds()
        if not 0 < span <= 86_400:
            raise ValueError(f"window_end must be 0-86400 s after window_start, got {span} s")
        ins = sum(x.in_count for x in self.lines)
        for name, n in (("groups", self.groups), ("unique_visitors", self.unique_visitors)):
            if n is not None and n > ins:
                raise ValueError(f"{name} {n} exceeds the lines' in_count {ins}")
        expected = message_id(self.store_id, self.camera_id, self.window_start)
        if self.message_id != expected:
            raise ValueError(f"message_id {self.message_id!r} should be {expected!r}")


class WindowAggregatePacked(WindowAggregate, frozen=True, kw_only=True):
    """A WindowAggregate with its heatmap packed (issue 17): the same message plus one
    field, ``heatmap_packed``, in place of ``heatmap``. Gateways from 2026-12-06 on decode
    every window with this class, so they take both forms; an older gateway refuses the
    field (unknown key), so an edge sends this only to gateways that read it, and sends the
    plain WindowAggregate (no new key) otherwise (docs/gateway.md, rolling upgrades)."""

    heatmap_packed: PackedHeatmap | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.heatmap is not None and self.heatmap_packed is not None:
            raise ValueError("heatmap and heatmap_packed: send one of them")

    @classmethod
    def packing(cls, w: WindowAggregate) -> WindowAggregate:
        """``w`` with its heatmap packed, or ``w`` itself when it has none or a cell does
        not pack (PackedHeatmap.of)."""
        packed = None if w.heatmap is None else PackedHeatmap.of(w.heatmap)
        if packed is None:
            return w
        fields = {f: getattr(w, f) for f in WindowAggregate.__struct_fields__}
        return cls(**{**fields, "heatmap": None, "heatmap_packed": packed})


# --------------------------------------------------------------------------- status


class CameraStatus(Message, frozen=True, kw_only=True):
    camera_id: MsgIdent
    state: CameraState
    since: Instant
    fps: Annotated[float, Meta(ge=0.0, le=10_000.0)]
    lag_s: Annotated[float, Meta(ge=0.0, le=1e9)]  # processing lag behind the source
    frames_total: MsgCount
    dropped_frames: MsgCount
    last_error: Annotated[str, Meta(max_length=500)] | None = None
    # reason the last remote config was rejected
    config_error: Annotated[str, Meta(max_length=2000)] | None = None
    config_version: Annotated[str, Meta(max_length=128)] | None = None


class ModelInfo(Message, frozen=True, kw_only=True):
    name: MsgName
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]


class DeviceStatus(Message, frozen=True, kw_only=True):
    """Retained on the status topic; the broker's last will replaces it with state=offline."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["status"] = "status"
    store_id: MsgIdent
    device_id: MsgIdent
    state: DeviceState
    sent_at: Instant
    uptime_s: MsgSeconds = 0.0
    cpu_percent: Annotated[float, Meta(ge=0.0, le=100.0 * 256)] = 0.0
    rss_mb: Annotated[float, Meta(ge=0.0, le=1e9)] = 0.0
    outbox_depth: MsgCount = 0
    outbox_dropped: MsgCount = 0
    outbox_full: bool = False
    cameras: Annotated[list[CameraStatus], Meta(max_length=64)] = msgspec.field(
        default_factory=list)
    models: Annotated[list[ModelInfo], Meta(max_length=16)] = msgspec.field(
        default_factory=list)
    software_version: Annotated[str, Meta(max_length=64)] = ""
    # why the last model update HQ sent was refused or rolled back (edge/node/model_update.py)
    model_error: Annotated[str, Meta(max_length=2000)] | None = None


# --------------------------------------------------------------------------- remote config


class CameraConfigMessage(Strict):
    """Retained on a camera's config topic, sent by HQ; applied without restart."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["camera_config"] = "camera_config"
    store_id: Ident
    camera_id: Ident
    config_version: str = Field(min_length=1, max_length=128)
    analytics: AnalyticsConfig


SHA256_PATTERN = r"^[0-9a-f]{64}$"
MODEL_MAX_BYTES = 512 * 1024 * 1024


class ModelUpdateMessage(Strict):
    """Retained on a device's model topic, sent by HQ: the detector file to run next.

    ``name`` says how the file is decoded (a detector layout the edge knows, such as
    yolox_nano); the edge fetches ``url`` (a path on the gateway its edge.toml names, never
    another host), checks ``bytes`` and ``sha256`` before loading, swaps at a window
    boundary and rolls back by itself if the new file fails (docs/operations.md)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["model_update"] = "model_update"
    store_id: Ident
    device_id: Ident
    update_id: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    name: Ident
    sha256: str = Field(pattern=SHA256_PATTERN)
    bytes: int = Field(ge=1, le=MODEL_MAX_BYTES)
    url: str = Field(min_length=2, max_length=2048, pattern=r"^/[\x21-\x7e]*$",
                     description="path (and query) on the gateway, starting with /")


def utcnow() -> datetime:
    """The one place code outside pure analytics asks for the wall clock in UTC."""
    return datetime.now(UTC)

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
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1

# Ids appear in MQTT topics and file names: keep them to a safe alphabet.
Ident = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", strict=True)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
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


class CountingSettings(Strict):
    """Knobs that stop jitter and id switches at a line from double counting."""

    hysteresis: float = Field(
        0.01, ge=0.0, le=0.2,
        description="half-width of the dead band around a line, in normalised units; a foot "
        "point inside the band keeps the side it had",
    )
    min_frames_on_side: int = Field(
        2, ge=1, le=100,
        description="consecutive observations on the new side before a crossing counts",
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


class AnalyticsConfig(Strict):
    """Everything a camera's analytics need; sent as remote config and read from edge.toml."""

    lines: list[LineSpec] = Field(default_factory=list, max_length=16)
    zones: list[ZoneSpec] = Field(default_factory=list, max_length=64)
    counting: CountingSettings = Field(default_factory=CountingSettings)
    zone: ZoneSettings = Field(default_factory=ZoneSettings)
    window_s: int = Field(60, ge=10, le=3600, description="aggregation window length")
    detect_every: int = Field(
        1, ge=1, le=30, description="run the detector on every k-th frame; predict between"
    )
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


# --------------------------------------------------------------------------- window aggregate


class LineCount(Strict):
    line: Name
    in_count: Count
    out_count: Count


class OccupancyStats(Strict):
    """People tracked in view (or in a zone) sampled over the window."""

    avg: float = Field(ge=0.0, le=10_000.0, allow_inf_nan=False)
    max: Count

    @model_validator(mode="after")
    def _avg_le_max(self) -> OccupancyStats:
        if self.avg > self.max + 1e-6:
            raise ValueError(f"occupancy avg {self.avg} exceeds max {self.max}")
        return self


class ZoneStats(Strict):
    zone: Name
    entries: Count = Field(description="visits that started in the window (people passing)")
    visits: Count = Field(description="visits that ended in the window (dwell below is theirs)")
    stops: Count = Field(description="ended visits at least stop_threshold_s long")
    dwell_total_s: Seconds
    dwell_mean_s: Seconds
    dwell_p50_s: Seconds
    dwell_p90_s: Seconds
    dwell_histogram: list[Count] = Field(description="counts per DWELL_BIN_EDGES_S bin")
    occupancy: OccupancyStats

    @model_validator(mode="after")
    def _consistent(self) -> ZoneStats:
        if len(self.dwell_histogram) != len(DWELL_BIN_EDGES_S):
            raise ValueError(
                f"dwell_histogram needs {len(DWELL_BIN_EDGES_S)} bins, got "
                f"{len(self.dwell_histogram)}"
            )
        if sum(self.dwell_histogram) != self.visits:
            raise ValueError("dwell_histogram must sum to visits")
        if self.stops > self.visits:
            raise ValueError(f"stops {self.stops} exceed visits {self.visits}")
        return self


class Transition(Strict):
    from_zone: Name
    to_zone: Name
    count: Annotated[int, Field(ge=1, le=10_000_000)]


class Heatmap(Strict):
    """Dwell-weighted foot points: seconds spent per cell, row-major, normalised frame grid."""

    cols: int = Field(ge=1, le=128)
    rows: int = Field(ge=1, le=128)
    cells: list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]]

    @model_validator(mode="after")
    def _size(self) -> Heatmap:
        if len(self.cells) != self.cols * self.rows:
            raise ValueError(
                f"heatmap cells: expected {self.cols}x{self.rows}={self.cols * self.rows}, "
                f"got {len(self.cells)}"
            )
        return self


class Demographics(Strict):
    """Visitors (completed tracks) per age band and gender; 'unknown' when no face was seen."""

    age_bands: dict[str, Count] = Field(default_factory=dict)
    genders: dict[str, Count] = Field(default_factory=dict)

    @field_validator("age_bands")
    @classmethod
    def _known_bands(cls, v: dict[str, int]) -> dict[str, int]:
        bad = set(v) - set(AGE_BANDS) - {"unknown"}
        if bad:
            raise ValueError(f"unknown age bands {sorted(bad)}; allowed {list(AGE_BANDS)}")
        return v

    @field_validator("genders")
    @classmethod
    def _known_genders(cls, v: dict[str, int]) -> dict[str, int]:
        bad = set(v) - set(GENDERS) - {"unknown"}
        if bad:
            raise ValueError(f"unknown genders {sorted(bad)}; allowed {list(GENDERS)}")
        return v


class Trajectory(Strict):
    """A short anonymous path: a few normalised foot points, no id, no time of day."""

    points: list[Point] = Field(min_length=2, max_length=32)
    duration_s: Seconds


def message_id(store_id: str, camera_id: str, window_start: datetime) -> str:
    """Stable id of a window: the gateway upserts on it, so redeliveries collapse."""
    ts = window_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{store_id}/{camera_id}/{ts}/v{SCHEMA_VERSION}"


class WindowAggregate(Strict):
    """What an edge camera publishes once per window (QoS 1, from the durable outbox)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["window"] = "window"
    message_id: str
    store_id: Ident
    camera_id: Ident
    window_start: AwareDatetime
    window_end: AwareDatetime
    frames: Count
    simulated: bool = Field(False, description="true for demo data not measured from video")
    lines: list[LineCount] = Field(default_factory=list, max_length=16)
    occupancy: OccupancyStats
    zones: list[ZoneStats] = Field(default_factory=list, max_length=64)
    transitions: list[Transition] = Field(default_factory=list, max_length=4096)
    heatmap: Heatmap | None = None
    demographics: Demographics = Field(default_factory=Demographics)
    paths: list[Trajectory] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> WindowAggregate:
        span = (self.window_end - self.window_start).total_seconds()
        if not 0 < span <= 86_400:
            raise ValueError(f"window_end must be 0-86400 s after window_start, got {span} s")
        expected = message_id(self.store_id, self.camera_id, self.window_start)
        if self.message_id != expected:
            raise ValueError(f"message_id {self.message_id!r} should be {expected!r}")
        return self


# --------------------------------------------------------------------------- status


class CameraStatus(Strict):
    camera_id: Ident
    state: Literal["starting", "ok", "reconnecting", "failed", "stopped"]
    since: AwareDatetime
    fps: float = Field(ge=0.0, le=10_000.0, allow_inf_nan=False)
    lag_s: float = Field(ge=0.0, allow_inf_nan=False, description="processing lag behind source")
    frames_total: Count
    dropped_frames: Count
    last_error: str | None = Field(None, max_length=500)
    config_error: str | None = Field(
        None, max_length=2000, description="reason the last remote config was rejected"
    )
    config_version: str | None = Field(None, max_length=128)


class ModelInfo(Strict):
    name: Name
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class DeviceStatus(Strict):
    """Retained on the status topic; the broker's last will replaces it with state=offline."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["status"] = "status"
    store_id: Ident
    device_id: Ident
    state: Literal["online", "offline"]
    sent_at: AwareDatetime
    uptime_s: Seconds = 0.0
    cpu_percent: float = Field(0.0, ge=0.0, le=100.0 * 256, allow_inf_nan=False)
    rss_mb: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    outbox_depth: Count = 0
    outbox_dropped: Count = 0
    outbox_full: bool = False
    cameras: list[CameraStatus] = Field(default_factory=list, max_length=64)
    models: list[ModelInfo] = Field(default_factory=list, max_length=16)
    software_version: str = Field("", max_length=64)


# --------------------------------------------------------------------------- remote config


class CameraConfigMessage(Strict):
    """Retained on a camera's config topic, sent by HQ; applied without restart."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["camera_config"] = "camera_config"
    store_id: Ident
    camera_id: Ident
    config_version: str = Field(min_length=1, max_length=128)
    analytics: AnalyticsConfig


def utcnow() -> datetime:
    """The one place code outside pure analytics asks for the wall clock in UTC."""
    return datetime.now(UTC)

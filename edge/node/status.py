"""Building the device status (heartbeat) message from the node's parts.

The status is retained on the broker, so HQ always sees each device's latest state; the
broker's last will replaces it with ``offline`` when the device vanishes without saying so.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Protocol

import psutil

from edge.node.outbox import OutboxStats
from storesense import __version__
from storesense.schema import CameraState, CameraStatus, DeviceStatus, ModelInfo, utcnow

_ERROR_MAX = 500
_CONFIG_ERROR_MAX = 2000


class SourceHealth(Protocol):
    """What status reads from a frame source (edge.vision.sources.FrameSource has these)."""

    @property
    def state(self) -> CameraState: ...
    @property
    def since(self) -> float: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def dropped_frames(self) -> int: ...
    @property
    def frames_total(self) -> int: ...
    @property
    def fps(self) -> float: ...


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def _finite(x: float, default: float = 0.0) -> float:
    return x if math.isfinite(x) and x >= 0 else default


def camera_status(
    camera_id: str, source: SourceHealth | None, *, state: CameraState | None = None,
    since: float | None = None, fps: float | None = None, lag_s: float = 0.0,
    last_error: str | None = None,
    config_error: str | None = None, config_version: str | None = None,
) -> CameraStatus:
    """One camera's status; ``state``/``since``/``fps``/``last_error`` override the source's.

    ``fps`` should be the frames actually processed per second: a source's own figure is
    the stream's nominal rate, which hides a pipeline that cannot keep up.
    """
    src_state = source.state if source else "starting"
    src_since = source.since if source else time.time()
    return CameraStatus(
        camera_id=camera_id,
        state=state or src_state,
        since=datetime.fromtimestamp(since if since is not None else src_since, UTC),
        fps=min(_finite(fps if fps is not None else (source.fps if source else 0.0)), 10_000.0),
        lag_s=_finite(lag_s),
        frames_total=source.frames_total if source else 0,
        dropped_frames=source.dropped_frames if source else 0,
        last_error=_clip(last_error or (source.last_error if source else None), _ERROR_MAX),
        config_error=_clip(config_error, _CONFIG_ERROR_MAX),
        config_version=config_version,
    )


class ProcessProbe:
    """Uptime, CPU and memory of this process (psutil; CPU averaged between calls)."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # first call primes the counter and returns 0
        self._started = time.monotonic()

    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def cpu_percent(self) -> float:
        return float(self._proc.cpu_percent(None))

    def rss_mb(self) -> float:
        return float(self._proc.memory_info().rss) / 2**20


def device_status(
    store_id: str, device_id: str, *, probe: ProcessProbe, outbox: OutboxStats,
    cameras: list[CameraStatus], models: list[ModelInfo],
) -> DeviceStatus:
    return DeviceStatus(
        store_id=store_id, device_id=device_id, state="online", sent_at=utcnow(),
        uptime_s=min(probe.uptime_s(), 86_400.0 * 31), cpu_percent=probe.cpu_percent(),
        rss_mb=probe.rss_mb(), outbox_depth=outbox.depth, outbox_dropped=outbox.dropped,
        # full also while the outbox's disk is (DeviceStatus has no error field of its own;
        # each camera's last_error says "outbox disk full")
        outbox_full=outbox.full or outbox.error is not None, cameras=cameras, models=models,
        software_version=__version__,
    )


def offline_status(store_id: str, device_id: str) -> DeviceStatus:
    """The last will and the goodbye message: state offline, nothing else claimed."""
    return DeviceStatus(store_id=store_id, device_id=device_id, state="offline", sent_at=utcnow())

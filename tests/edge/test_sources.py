from __future__ import annotations

import itertools
import shutil
import threading
import time
from pathlib import Path

import pytest

from edge.sources import file_frames, open_source, parse_spec
from storesense.errors import SourceError


def test_parse_spec():
    assert parse_spec("usb:2") == ("usb", 2)
    assert parse_spec(0) == ("usb", 0)
    assert parse_spec("rtsp://cam/stream") == ("url", "rtsp://cam/stream")
    assert parse_spec("/videos/a.mp4") == ("file", "/videos/a.mp4")
    with pytest.raises(SourceError):
        parse_spec("usb:x")


def test_file_frames_have_media_time_and_end(pets_clip: Path):
    src = open_source(str(pets_clip))
    frames = []
    while (f := src.read(timeout=5)) is not None:
        frames.append(f)
    assert src.ended and src.state == "stopped"
    assert [f.index for f in frames] == list(range(1, 61))
    assert frames[7].t == pytest.approx(7 / 7.0)
    assert frames[0].image.shape == (576, 768, 3) and frames[0].image.dtype.name == "uint8"
    assert src.frames_total == 60 and src.fps == pytest.approx(7.0)


def test_loop_keeps_time_increasing(pets_clip: Path):
    src = open_source(str(pets_clip), loop=True)
    ts = [src.read(timeout=5).t for _ in range(70)]  # type: ignore[union-attr]
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert not src.ended
    src.close()
    assert src.read(timeout=0.1) is None and src.ended


def test_missing_file_reconnects_and_recovers(pets_clip: Path, tmp_path: Path):
    path = tmp_path / "late.avi"
    src = open_source(str(path))
    assert src.read(timeout=0.3) is None  # timeout, not the end
    assert not src.ended and src.state == "reconnecting" and "cannot open" in (src.last_error or "")
    threading.Timer(0.2, lambda: shutil.copy(pets_clip, path)).start()
    deadline = time.monotonic() + 10
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = src.read(timeout=0.5)
    assert frame is not None and src.state == "ok"
    src.close()


def test_realtime_stamps_with_the_clock_and_drops_when_slow(pets_clip: Path):
    now = [1000.0]
    src = open_source(str(pets_clip), realtime=True, clock=lambda: now[0])
    f1 = src.read(timeout=5)
    assert f1 is not None and f1.t == 1000.0
    now[0] += 2.0  # the consumer took 2 s: 14 frames at 7 fps are due
    f2 = src.read(timeout=5)
    assert f2 is not None and src.dropped_frames >= 12


def test_file_frames_skips_colour_conversion_when_not_wanted(pets_clip: Path):
    info, it = file_frames(str(pets_clip), lambda: False)
    got = list(it)
    assert info.fps == pytest.approx(7.0) and len(got) == 60
    assert all(img is None for _, _, img in got)
    with pytest.raises(SourceError):
        file_frames(str(pets_clip) + ".missing", lambda: True)

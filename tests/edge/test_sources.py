from __future__ import annotations

import itertools
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.evaluation.live_replay import replay
from edge.vision.sources import av_available, file_frames, open_source, parse_spec
from storesense.demo import bundled_clip
from storesense.errors import SourceError


def test_parse_spec():
    assert parse_spec("usb:2") == ("usb", 2)
    assert parse_spec(0) == ("usb", 0)
    assert parse_spec("rtsp://cam/stream") == ("url", "rtsp://cam/stream")
    assert parse_spec("/videos/a.mp4") == ("file", "/videos/a.mp4")
    with pytest.raises(SourceError):
        parse_spec("usb:x")


def test_file_frames_have_media_time_from_the_recording_start_and_end(pets_clip: Path):
    src = open_source(str(pets_clip))
    frames = []
    while (f := src.read(timeout=5)) is not None:
        frames.append(f)
    assert src.ended and src.state == "stopped"
    assert [f.index for f in frames] == list(range(1, 61))
    # 60 frames at 7 fps, so the recording began 60/7 s before the file was last written
    assert src.origin == pytest.approx(pets_clip.stat().st_mtime - 60 / 7.0)
    assert frames[7].t == pytest.approx(src.origin + 7 / 7.0)
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


MOT17 = "MOT17-09/video.mp4"  # 1080p H.264 with B-frames (x264 preset slow)


def _read_all(path: str, **kw) -> tuple[list[tuple[int, float, bool]], int]:
    info, it = file_frames(path, lambda: True, **kw)
    got = [(i, t, img is not None) for i, t, img in it]
    return got, info.not_decoded


def test_pyav_is_the_offline_decoder():
    assert av_available()  # a dependency: without it the B-frame skipping silently disappears


def test_skipped_b_frames_are_still_handed_out_in_order_with_their_own_time(eval_dir: Path):
    path = str(eval_dir / MOT17)
    every, skipped_none = _read_all(path)
    assert skipped_none == 0 and len(every) == 525 and all(ok for _, _, ok in every)
    assert [t for _, t, _ in every[:3]] == pytest.approx([0.0, 1 / 30, 2 / 30])
    # Nothing but frame 0 of each 3 is wanted: non-reference frames are not decoded at all.
    wanted = lambda n: False  # noqa: E731
    info, it = file_frames(path, lambda: True, wants_ahead=wanted)
    got = list(it)
    assert [i for i, _, _ in got] == list(range(1, 526))
    assert [t for _, t, _ in got] == pytest.approx([t for _, t, _ in every])
    skipped = [i for i, _, img in got if img is None]
    assert info.not_decoded == len(skipped) > 100  # the x264 slow file has many B-frames
    assert 1 not in skipped  # the first frame is a key frame


def test_frames_wanted_ahead_are_decoded(eval_dir: Path):
    path = str(eval_dir / MOT17)
    handed = [0]  # frames handed out so far, counted by the consumer

    def wants_ahead(n: int) -> bool:  # frames with an even index (0-based) are wanted
        return (handed[0] + n) % 2 == 0

    info, it = file_frames(path, lambda: True, wants_ahead=wants_ahead)
    missing = []
    for i, _, img in it:
        handed[0] += 1
        if img is None:
            missing.append(i - 1)
    assert handed[0] == 525 and missing and all(i % 2 == 1 for i in missing)
    assert info.not_decoded == len(missing)


def test_decoded_frames_match_opencv_and_scaling_is_close(eval_dir: Path):
    import cv2

    path = str(eval_dir / MOT17)
    cap = cv2.VideoCapture(path)
    refs = [cap.read()[1] for _ in range(3)]
    cap.release()
    _, it = file_frames(path, lambda: True)
    mine = [next(it)[2] for _ in range(3)]
    for a, b in zip(mine, refs, strict=True):  # same FFmpeg conversion: bit-exact BGR
        assert a is not None and b is not None and np.array_equal(a, b)
    _, small_it = file_frames(path, lambda: True, scale_to=lambda w, h: (416, 234))
    small = [next(small_it)[2] for _ in range(3)]
    for a, b in zip(small, refs, strict=True):
        assert a is not None and a.shape == (234, 416, 3)
        expected = cv2.resize(b, (416, 234), interpolation=cv2.INTER_LINEAR)
        assert np.abs(a.astype(int) - expected).mean() < 4  # another resampling, same picture



def test_a_live_stream_read_slower_than_it_is_sent_keeps_pace_and_dates_frames_when_sent():
    """A real H.264 stream over TCP at 7 frames/s, and a reader that takes twice the stream's
    interval over every frame whose image it gets (a detector too slow for the camera)."""
    with replay(bundled_clip(), 60) as url:
        src = open_source(url)
        assert src.kind == "url"
        frames = [src.read(timeout=30)]
        start = time.monotonic()
        while time.monotonic() - start < 8.0:
            f = src.read(timeout=5)
            assert f is not None, src.last_error
            frames.append(f)
            if f.image is not None:
                time.sleep(2 / 7)
        elapsed = time.monotonic() - start
        src.close()
    analysed = [f for f in frames if f is not None and f.image is not None]
    # Read without catching up, it would get 28 frames of the 56 sent, ever later.
    assert len(frames) - 1 >= 0.8 * 7 * elapsed
    assert src.dropped_frames > 0 and len(analysed) >= 0.5 * elapsed / (2 / 7)
    assert not any(f.decoded for f in frames if f is not None and f.image is None)
    # Dated when sent, not when read: the stream's own 1/7 s apart on average.
    ts = [f.t for f in frames if f is not None]
    assert all(b >= a for a, b in itertools.pairwise(ts))
    half = len(ts) // 2  # the second half: past the burst a stream's opening leaves queued
    assert (ts[-1] - ts[half]) / (len(ts) - 1 - half) == pytest.approx(1 / 7, rel=0.25)

"""`eval --suite --detections-cache DIR`: replayed detector output gives the figures the
detectors give, a cache filled at another cadence is completed by the detector, and anything
that changes the detector's output (settings, zoom, the video) is a miss, never a stale hit.

Real models, a real clip: the first 60 frames of PETS09-S2L1 as a sequence of its own. The
figures are compared run against run, never against written-down numbers."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.evaluation import suite
from edge.evaluation.detection_cache import DetectionCache
from edge.evaluation.evaluate import add_arguments
from edge.vision.detector import load_detector
from edge.vision.sources import file_frames
from storesense.cli import main

pytestmark = pytest.mark.video
CLIP_FRAMES = 60  # tests/edge/conftest.py: pets_clip


def run(clip_eval: Path, models_dir: Path, *extra: str) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--suite", str(clip_eval), "--variants", "1", "--quiet",
                         "--models-dir", str(models_dir), *extra])
    (row,) = suite.run_suite(args)["rows"]
    assert isinstance(row, dict)
    return row


def measured(row: dict[str, Any]) -> dict[str, Any]:
    """Everything the row measured: tallies per line, identities, dwell, occupancy, detector
    frames per profile and zoom, re-identification work; not its time or cache use."""
    return {k: v for k, v in row.items() if k not in ("seconds", "detections_cache")}


@pytest.fixture(scope="module")
def uncached(clip_eval: Path, models_dir: Path) -> dict[str, Any]:
    row = run(clip_eval, models_dir)
    f = suite.figures(row)
    # something to compare: people crossed, and the pipeline counted some of them
    assert f["strict"]["true"] > 0 and f["strict"]["precision"] > 0, f
    assert "detections_cache" not in row
    return row


def test_replayed_detections_give_the_figures_of_the_detectors(clip_eval, models_dir, uncached,
                                                               tmp_path):
    cache = tmp_path / "dets"
    filled = run(clip_eval, models_dir, "--detections-cache", str(cache))
    calls = filled["detections_cache"]["detected"]
    assert filled["detections_cache"]["replayed"] == 0 and calls > 0
    replayed = run(clip_eval, models_dir, "--detections-cache", str(cache))
    assert replayed["detections_cache"] == {"replayed": calls, "detected": 0}
    assert measured(filled) == measured(uncached)
    assert measured(replayed) == measured(uncached)
    # the auto profile probed with both detectors and the zoom at 1 and 2: one file each, no
    # temporary left behind
    names = sorted(p.name for p in cache.iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == ["PETS-clip-bytetrack_nano_mot17-z1",
                                                    "PETS-clip-yolox_nano-z1",
                                                    "PETS-clip-yolox_nano-z2"]


def test_a_cache_filled_at_another_cadence_is_completed_by_the_detector(
        clip_eval, models_dir, uncached, tmp_path):
    cache = tmp_path / "dets"
    sparse = run(clip_eval, models_dir, "--detections-cache", str(cache), "--detect-every", "3",
                 "--line-focus", "0")
    assert measured(sparse) != measured(uncached)  # another cadence: other frames, other tracks
    completed = run(clip_eval, models_dir, "--detections-cache", str(cache))
    used = completed["detections_cache"]
    assert used["replayed"] > 0 and used["detected"] > 0
    assert measured(completed) == measured(uncached)
    again = run(clip_eval, models_dir, "--detections-cache", str(cache))
    assert again["detections_cache"]["detected"] == 0
    assert measured(again) == measured(uncached)


def one_frame_cached(video: Path, models_dir: Path, tmp_path: Path):
    """The video's first frame detected by yolox_nano through a cache, and the cache saved.
    -> (video, frame, detector, cache)."""
    image = first_frame(video)
    det = load_detector("yolox_nano", models_dir=models_dir)
    cache = DetectionCache(tmp_path / "dets")
    a = cache.wrap(det, video, "clip")
    a(image)
    a.save()
    return video, image, det, cache


def test_a_video_with_other_bytes_is_a_miss_and_a_touched_one_a_replay(
    clip_eval, models_dir, tmp_path
):
    """The cache knows a video by its content: restoring or copying the data (new
    modification times, the same bytes) keeps the cache; other bytes never replay."""
    video = tmp_path / "video.avi"
    shutil.copyfile(clip_eval / "PETS-clip" / "video.avi", video)
    video, image, det, cache = one_frame_cached(video, models_dir, tmp_path)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = cache.wrap(det, video, "clip")
    touched(image)
    assert (touched.replayed, touched.detected) == (1, 0)
    with video.open("ab") as f:
        f.write(b"\0")  # the same frames, but not the same file
    other = cache.wrap(det, video, "clip")
    other(image)
    assert (other.replayed, other.detected) == (0, 1)


def first_frame(video: Path) -> np.ndarray:
    _, frames = file_frames(str(video), lambda: True)
    for _, _, image in frames:
        assert image is not None
        return image
    raise AssertionError("no frame")


def test_other_detector_settings_or_zoom_are_a_miss(clip_eval, models_dir, tmp_path):
    video = clip_eval / "PETS-clip" / "video.avi"
    image = first_frame(video)
    cache = DetectionCache(tmp_path / "dets")
    default = load_detector("yolox_nano", models_dir=models_dir)
    stricter = load_detector("yolox_nano", models_dir=models_dir, score_threshold=0.5)
    a = cache.wrap(default, video, "clip")
    a(image)
    a.save()
    b = cache.wrap(stricter, video, "clip")
    got = b(image)
    assert (b.replayed, b.detected) == (0, 1)
    assert len(got) < len(a(image))  # a stale hit would have handed out the low boxes too
    assert (a.replayed, a.detected) == (1, 1)
    a(image, zoom=2.0)
    assert (a.replayed, a.detected) == (1, 2)
    a(image[:, ::-1].copy())  # another image
    assert (a.replayed, a.detected) == (1, 3)
    c = cache.wrap(default, video, "clip")  # a new run: the saved file is read back
    again = c(image)
    assert (c.replayed, c.detected) == (1, 0)
    direct = default(image)
    assert np.array_equal(again.xyxy, direct.xyxy)
    assert np.array_equal(again.confidence, direct.confidence)


def test_a_damaged_or_foreign_file_is_ignored_and_rewritten(clip_eval, models_dir, tmp_path,
                                                            caplog):
    video, image, det, cache = one_frame_cached(
        clip_eval / "PETS-clip" / "video.avi", models_dir, tmp_path)
    (path,) = (tmp_path / "dets").iterdir()
    path.write_bytes(path.read_bytes()[:100])  # cut short
    b = cache.wrap(det, video, "clip")
    b(image)
    assert (b.replayed, b.detected) == (0, 1)
    assert "does not load" in caplog.text
    b.save()
    # a file of other settings under this file's name (by hand): its stored key does not match
    other = cache.wrap(load_detector("yolox_nano", models_dir=models_dir, score_threshold=0.5),
                       video, "clip")
    other(image)
    other.save()
    foreign = next(p for p in (tmp_path / "dets").iterdir() if p != path)
    shutil.copy(foreign, path)
    c = cache.wrap(det, video, "clip")
    c(image)
    assert (c.replayed, c.detected) == (0, 1)
    assert "other settings" in caplog.text
    c.save()
    d = cache.wrap(det, video, "clip")
    d(image)
    assert (d.replayed, d.detected) == (1, 0)


def test_the_cache_is_a_suite_option(eval_dir, tmp_path, capsys):
    code = main(["eval", str(eval_dir / "PETS09-S2L1"), "--line", "0.5,0,0.5,1",
                 "--detections-cache", str(tmp_path)])
    assert code != 0
    assert "--detections-cache is a suite option" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

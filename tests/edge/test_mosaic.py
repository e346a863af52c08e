"""The mosaic proxy: ground truth moved into tiles (plain arrays), and one real build + eval."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.evaluation.mosaic import ID_STRIDE, build_mosaic, mosaic_gt, tile_offsets
from edge.evaluation.mot import read_gt, read_seqinfo, true_crossings
from storesense.cli import main
from storesense.errors import ConfigError


def walker(frames: int, size: int = 100, tid: int = 1) -> np.ndarray:
    """One person walking left to right across a size x size frame, 20 px wide, 40 tall."""
    xs = np.linspace(5, size - 25, frames)
    return np.array([[f + 1, tid, x, 30, 20, 40, 1, 1, 1.0] for f, x in enumerate(xs)])


def test_every_tile_holds_the_person_scaled_and_moved():
    gt = walker(10)
    out = mosaic_gt(gt, 10, (100, 100), 2, offsets=[0, 0, 0, 0])
    assert len(out) == 4 * 10
    first = out[out[:, 0] == 1]
    # tile k = (row, col): top-left corner (col * 50, row * 50), boxes halved
    assert first[:, 2:6].tolist() == [
        [2.5, 15, 10, 20], [52.5, 15, 10, 20], [2.5, 65, 10, 20], [52.5, 65, 10, 20]
    ]
    assert sorted(first[:, 1].tolist()) == [1 + 2 * k * ID_STRIDE for k in range(4)]
    assert (out[:, 6:] == 1).all()  # conf, class and visibility kept


def test_each_tile_crosses_its_own_centre_line():
    gt = walker(10)
    out = mosaic_gt(gt, 10, (100, 100), 2, offsets=[0, 0, 0, 0])
    source = true_crossings(gt[:, :6], (0.5, 0, 0.5, 1), (100, 100))
    assert len(source) == 1
    for x in (0.25, 0.75):  # the centre line of the left and of the right column of tiles
        got = true_crossings(out[:, :6], (x, 0, x, 1), (100, 100))
        assert len(got) == 2 and {c.direction for c in got} == {source[0].direction}
        assert {c.frame for c in got} == {source[0].frame}


def test_a_copy_that_wraps_starts_over_under_new_ids():
    gt = walker(10)
    out = mosaic_gt(gt, 10, (100, 100), 2, offsets=[0, 4, 0, 0])
    tile1 = out[(out[:, 2] >= 50) & (out[:, 3] < 50)]
    assert len(tile1) == 10 and tile1[:, 0].tolist() == list(range(1, 11))
    # frames 1-6 show source frames 5-10 (first pass), frames 7-10 source 1-4 (second pass)
    assert set(tile1[tile1[:, 0] <= 6, 1]) == {1 + 2 * ID_STRIDE}
    assert set(tile1[tile1[:, 0] >= 7, 1]) == {1 + 3 * ID_STRIDE}
    assert tile1[0, 2] == pytest.approx(50 + gt[4, 2] / 2)


def test_boxes_are_clipped_to_the_frame_before_they_are_scaled():
    gt = np.array([[1, 1, 80, 70, 40, 50, 1, 1, 1.0]])  # runs past the right and bottom edge
    out = mosaic_gt(gt, 1, (100, 100), 2, offsets=[0, 0, 0, 0])
    top_left = out[(out[:, 2] < 50) & (out[:, 3] < 50)][0]
    assert top_left[2:6].tolist() == [40, 35, 10, 15]  # ends at the tile's edge (50, 50)


def test_offsets_and_bad_arguments():
    assert tile_offsets(100, 2) == [0, 25, 50, 75]
    with pytest.raises(ValueError, match="offsets: expected 4"):
        mosaic_gt(walker(3), 3, (100, 100), 2, offsets=[0])
    with pytest.raises(ValueError, match="MOT rows"):
        mosaic_gt(np.zeros((3, 4)), 3, (100, 100), 2)
    with pytest.raises(ConfigError, match="--tiles"):
        build_mosaic("unused", "unused", 7)


@pytest.fixture(scope="module")
def pets_seq(eval_dir: Path, pets_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60 frames of PETS09-S2L1 as a MOT folder."""
    d = tmp_path_factory.mktemp("pets60")
    src = eval_dir / "PETS09-S2L1"
    rows = [r for r in (src / "gt.txt").read_text().splitlines() if int(r.split(",")[0]) <= 60]
    (d / "gt.txt").write_text("\n".join(rows) + "\n")
    ini = (src / "seqinfo.ini").read_text().replace("seqLength=795", "seqLength=60")
    (d / "seqinfo.ini").write_text(ini.replace("video.mp4", str(pets_clip)))
    return d


@pytest.mark.video
def test_a_real_mosaic_is_a_mot_folder_that_eval_scores(pets_seq, tmp_path, models_dir, capsys):
    out = tmp_path / "mosaic"
    summary = build_mosaic(pets_seq, out, 2)
    assert summary["frames"] == 60 and summary["offsets"] == [0, 15, 30, 45]
    info = read_seqinfo(out)
    assert (info.width, info.height, info.length, info.fps) == (768, 576, 60, 7.0)
    cap = cv2.VideoCapture(str(info.video))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 60
    assert len(read_gt(out)) == 4 * len(read_gt(pets_seq))

    lines = ["--line", "0.25,0,0.25,1", "--line", "0.75,0,0.75,1"]
    assert main(["eval", str(out), *lines, "--models-dir", str(models_dir), "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sequence"] == "PETS09-S2L1-mosaic2" and res["frames"] == 60
    per_line = res["per_line"]
    assert [p["line"] for p in per_line] == [[0.25, 0, 0.25, 1], [0.75, 0, 0.75, 1]]
    for key in ("in", "out"):
        assert res["true"][key] == sum(p["true"][key] for p in per_line)
        assert res["predicted"][key] == sum(p["predicted"][key] for p in per_line)
    # PETS09's people, halved, are ~20 px tall at the trained scale: the detector zooms in.
    assert max(float(z) for z in res["detector_zoom_frames"]) > 1.0

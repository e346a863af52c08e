"""`storesense bench live` end to end: a real sequence sent as a live H.264 stream over TCP,
read as a node reads a camera, scored against its truth."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from edge.evaluation.bench_live import bench
from storesense.demo import bundled_clip

FIRST, FRAMES = 596, 200  # the bundled clip is PETS09-S2L1's frames 596-795 (its NOTICE)


@pytest.fixture
def clip_sequence(eval_dir: Path, tmp_path: Path) -> Path:
    gt = np.loadtxt(eval_dir / "PETS09-S2L1" / "gt.txt", delimiter=",")
    gt = gt[(gt[:, 0] >= FIRST) & (gt[:, 0] < FIRST + FRAMES)]
    gt[:, 0] -= FIRST - 1
    seq = tmp_path / "PETS09-clip"
    seq.mkdir()
    np.savetxt(seq / "gt.txt", gt, delimiter=",", fmt="%g")
    (seq / "video.mp4").symlink_to(bundled_clip())
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=PETS09-clip\nframeRate=7\nseqLength=200\nimWidth=768\nimHeight=576\n"
        "video=video.mp4\n"
    )
    return seq


def test_a_node_that_keeps_up_with_a_live_camera_counts_it(clip_sequence: Path, models_dir):
    out = bench(argparse.Namespace(sequence=str(clip_sequence), model="yolox_nano",
                                   models_dir=str(models_dir), line_focus=0.1))
    assert out["frames"] == FRAMES and out["lines"] == 14
    # 7 frames/s is well within the cheap detector's means: the stream is read as it is sent,
    # beyond the frames a stream's opening leaves queued.
    assert out["wall_s"] < out["video_s"] + 3 and out["lag_s"]["p95"] < 1.0
    assert out["frames_withheld"] < 0.1 * FRAMES
    assert out["banded"]["count_accuracy"] >= 0.8 and out["banded"]["f1"] >= 0.8

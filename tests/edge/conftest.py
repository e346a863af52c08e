from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

CLIP_FRAMES = 60  # pets_clip's length


@pytest.fixture(scope="session")
def pets_clip(eval_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60 frames of PETS09-S2L1 as a small video file."""
    src = cv2.VideoCapture(str(eval_dir / "PETS09-S2L1" / "video.mp4"))
    out = tmp_path_factory.mktemp("clip") / "pets60.avi"
    writer = None
    for _ in range(CLIP_FRAMES):
        ok, img = src.read()
        assert ok
        if writer is None:
            h, w = img.shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (w, h))
        writer.write(img)
    assert writer is not None
    writer.release()
    src.release()
    return out


@pytest.fixture(scope="session")
def clip_eval(pets_clip: Path, eval_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eval folder holding one MOT sequence: the clip and the gt rows of its frames."""
    root = tmp_path_factory.mktemp("eval")
    seq = root / "PETS-clip"
    seq.mkdir()
    shutil.copy(pets_clip, seq / "video.avi")
    src = eval_dir / "PETS09-S2L1"
    rows = [r for r in (src / "gt.txt").read_text().splitlines()
            if r and int(r.split(",")[0]) <= CLIP_FRAMES]
    (seq / "gt.txt").write_text("\n".join(rows) + "\n")
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=PETS-clip\nvideo=video.avi\nframeRate=7\n"
        f"seqLength={CLIP_FRAMES}\nimWidth=768\nimHeight=576\n")
    return root

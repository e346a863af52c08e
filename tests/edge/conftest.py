from __future__ import annotations

from pathlib import Path

import cv2
import pytest


@pytest.fixture(scope="session")
def pets_clip(eval_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60 frames of PETS09-S2L1 as a small video file."""
    src = cv2.VideoCapture(str(eval_dir / "PETS09-S2L1" / "video.mp4"))
    out = tmp_path_factory.mktemp("clip") / "pets60.avi"
    writer = None
    for _ in range(60):
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

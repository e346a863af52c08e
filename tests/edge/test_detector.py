"""Decoding checked on the sample images against the manifest's measured results."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.tracking.tracker import iou_matrix
from edge.vision.detector import decode_yolox, load_detector, make_grid, nms
from storesense.errors import ModelError


def expected(models_dir: Path, model_file: str, image: str) -> list[dict[str, object]]:
    data = json.loads((models_dir / "samples" / "expected_results.json").read_text())
    return list(data[model_file][image])


@pytest.fixture(scope="module", params=["yolox_nano", "bytetrack_nano_mot17"])
def detector(request, models_dir):
    # the export's fixed input size: the manifest's sample outputs were measured with it
    return load_detector(request.param, models_dir=models_dir, score_threshold=0.3,
                         fit_canvas=False)


@pytest.mark.parametrize("image", ["family5_faces.jpg", "street_crossing.jpg"])
def test_sample_images_match_expected(detector, models_dir, image):
    detector.nms_iou = 0.45  # the manifest's setting
    img = cv2.imread(str(models_dir / "samples" / image))
    det = detector(img)
    exp = expected(models_dir, f"{detector.name}.onnx", image)
    h, w = img.shape[:2]
    boxes = np.array([e["box_xyxy"] for e in exp], float)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)  # the manifest lists unclipped boxes; we clip
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    assert len(det) == len(exp)
    iou = iou_matrix(boxes, det.xyxy.astype(float))
    best = iou.argmax(axis=1)
    assert (iou.max(axis=1) > 0.97).all()
    scores = np.array([e["score"] for e in exp])
    assert det.confidence[best] == pytest.approx(scores, abs=0.01)
    assert (det.class_id == 0).all()


def test_model_info_names_the_verified_file(detector):
    [info] = detector.model_infos()
    assert info.name == detector.name and len(info.sha256) == 64


def test_decode_one_synthetic_row():
    grid = make_grid((64, 64))
    raw = np.zeros((len(grid[0]), 6), np.float32)
    # stride-8 cell (x=2, y=3): centre ((0.5 + 2) * 8, (0.5 + 3) * 8) = (20, 28), w = h = 8
    row = 3 * 8 + 2
    raw[row] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.8]
    det = decode_yolox(
        raw, grid, 5, ratio=0.5, frame_hw=(200, 200), score_threshold=0.1, nms_iou=0.5
    )
    assert det.xyxy.tolist() == [[32.0, 48.0, 48.0, 64.0]]  # /0.5 back to frame pixels
    assert det.confidence[0] == pytest.approx(0.72)


def test_nms_keeps_the_best_of_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.3], np.float32), 0.5).tolist() == [1, 2]


def test_unknown_or_wrong_model_is_a_model_error(models_dir):
    with pytest.raises(ModelError):
        load_detector("no_such_model", models_dir=models_dir)
    with pytest.raises(ModelError, match="not a person detector"):
        load_detector("yunet_dynamic", models_dir=models_dir)


@pytest.mark.parametrize("model", ["yolox_nano", "bytetrack_nano_mot17"])
@pytest.mark.parametrize("image", ["family5_faces.jpg", "street_crossing.jpg"])
def test_fitted_canvas_finds_the_same_people_on_less_input(models_dir, model, image):
    img = cv2.imread(str(models_dir / "samples" / image))
    square = load_detector(model, models_dir=models_dir, score_threshold=0.3, fit_canvas=False)
    fitted = load_detector(model, models_dir=models_dir, score_threshold=0.3)
    a, b = square(img), fitted(img)
    tensor, _ = fitted.preprocess(img)
    assert tensor.shape[2] * tensor.shape[3] < np.prod(square.layout.input_hw)
    assert tensor.shape[2] % 32 == 0 and tensor.shape[3] % 32 == 0
    assert len(a) == len(b) > 0
    iou = iou_matrix(a.xyxy.astype(float), b.xyxy.astype(float))
    assert (iou.max(axis=1) > 0.9).all(), iou.max(axis=1)
    assert b.confidence[iou.argmax(axis=1)] == pytest.approx(a.confidence, abs=0.05)


def test_zoom_sees_a_larger_canvas_and_keeps_the_people_found_at_one(models_dir):
    img = cv2.imread(str(models_dir / "samples" / "street_crossing.jpg"))
    det = load_detector("yolox_nano", models_dir=models_dir, score_threshold=0.3)
    h, w = img.shape[:2]
    t1, r1 = det.preprocess(img)
    t2, r2 = det.preprocess(img, 2.0)
    assert r2 == pytest.approx(min(2 * r1, 1.0)) and t2.shape[3] > t1.shape[3]
    assert t2.shape[2] % 32 == 0 and t2.shape[3] % 32 == 0
    one, two = det(img), det(img, zoom=2.0)
    assert len(two) >= len(one) > 0
    confident = one.xyxy[one.confidence >= 0.5].astype(float)
    assert (iou_matrix(confident, two.xyxy.astype(float)).max(axis=1) > 0.7).all()
    assert (two.xyxy[:, 2] <= w).all() and (two.xyxy[:, 3] <= h).all()


def test_zoom_never_enlarges_a_frame_past_its_own_pixels(models_dir):
    det = load_detector("yolox_nano", models_dir=models_dir)
    assert det.ratio(1080, 1920, 2.0) == pytest.approx(2 * 416 / 1920)
    assert det.ratio(576, 768, 2.0) == 1.0  # 2 x 0.54 would enlarge it
    assert det.ratio(240, 320, 2.0) == pytest.approx(416 / 320)  # small frame: trained scale
    fixed = load_detector("yolox_nano", models_dir=models_dir, fit_canvas=False)
    with pytest.raises(ValueError, match="input size is fixed"):
        fixed.preprocess(np.zeros((100, 100, 3), np.uint8), 2.0)

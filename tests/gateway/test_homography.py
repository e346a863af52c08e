"""`storesense gateway homography`: the printed matrix takes the image points to the plan's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gateway.floorplan import to_floor
from storesense.cli import main

IMAGE = ["0.2,0.9", "0.8,0.9", "0.7,0.5", "0.3,0.5"]  # a floor rectangle seen in perspective
PLAN = ["0.1,0.9", "0.9,0.9", "0.9,0.1", "0.1,0.1"]


def matrix(capsys, image=IMAGE, plan=PLAN) -> np.ndarray:
    assert main(["gateway", "homography", "--image", *image, "--plan", *plan]) == 0
    return np.array(json.loads(capsys.readouterr().out)["homography"])


def test_the_matrix_maps_each_image_point_onto_its_plan_point(capsys):
    h = matrix(capsys)
    for src, dst in zip(IMAGE, PLAN, strict=True):
        x, y, w = h @ np.array([*map(float, src.split(",")), 1.0])
        assert (x / w, y / w) == pytest.approx(tuple(map(float, dst.split(","))), abs=1e-6)
    assert h[2, 2] == 1.0


def test_the_gateway_takes_the_printed_matrix(capsys):
    identity = matrix(capsys, image=PLAN, plan=PLAN).tolist()
    cells = [float(i) for i in range(8)]
    assert to_floor(cells, 4, 2, identity)[0] == pytest.approx(cells)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (IMAGE[:3], "expected 4 points"),
        ([*IMAGE[:3], "0.5"], "expected X,Y"),
        ([*IMAGE[:3], "1.5,0.2"], "within 0..1"),
        (["0.1,0.1", "0.2,0.2", "0.3,0.3", "0.9,0.1"], "on one line"),
    ],
)
def test_bad_points_are_refused_naming_the_option(capsys, image, message):
    assert main(["gateway", "homography", "--image", *image, "--plan", *PLAN]) == 2
    err = capsys.readouterr().err
    assert "--image" in err and message in err

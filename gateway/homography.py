"""`storesense gateway homography`: a camera's image -> floor-plan matrix from four point pairs.

An installer marks four points on the floor in a camera's frame (say the corners of a display
table or of floor tiles) and the same four on the store's floor plan, both normalised 0..1.
This prints the 3x3 homography to put in the camera's record (`PUT /stores/{id}`, `cameras`
-> `homography`), through which the gateway maps that camera's heatmap onto the plan.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import numpy.typing as npt

from storesense.errors import ConfigError


def parse_points(texts: list[str], name: str) -> npt.NDArray[np.float32]:
    """Four "X,Y" strings, normalised 0..1 -> (4, 2) float32."""
    if len(texts) != 4:
        raise ConfigError(f"--{name}: expected 4 points X,Y, got {len(texts)}")
    pts = []
    for text in texts:
        try:
            x, y = (float(v) for v in text.split(","))
        except ValueError as e:
            raise ConfigError(f"--{name} {text!r}: expected X,Y (normalised 0..1)") from e
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ConfigError(f"--{name} {text!r}: coordinates must be within 0..1")
        pts.append((x, y))
    arr = np.asarray(pts, np.float32)
    # Three points on one line (or two equal) leave the homography undetermined.
    for i in range(4):
        a, b, c = (arr[j] for j in range(4) if j != i)
        (ux, uy), (vx, vy) = b - a, c - a
        if abs(float(ux * vy - uy * vx)) < 1e-6:  # twice the triangle's area
            raise ConfigError(f"--{name}: three of the four points are on one line")
    return arr


# |det H| / ||H||^3 is the same for every multiple of H (a homography is defined up to scale);
# below this the matrix squashes the plane onto a line or a point and maps nothing usefully.
MIN_RELATIVE_DET = 1e-9


def matrix_problem(h: list[list[float]]) -> str | None:
    """Why a 3x3 row-major matrix cannot be a camera's homography (None when it can):
    NaN or infinite entries, or singular (every point would land on one line)."""
    m = np.asarray(h, np.float64)
    if m.shape != (3, 3):
        return f"must be a 3x3 matrix, got shape {m.shape}"
    if not np.isfinite(m).all():
        return "has a NaN or infinite entry"
    norm = float(np.linalg.norm(m))
    if norm == 0.0 or abs(float(np.linalg.det(m))) / norm**3 < MIN_RELATIVE_DET:
        return "is singular (determinant ~0): it maps the whole image onto a line or a point"
    return None


def homography(image: npt.NDArray[np.float32], plan: npt.NDArray[np.float32]) -> list[list[float]]:
    """The 3x3 matrix (row-major, normalised so that its last element is 1) taking the four
    image points to the four plan points."""
    h = cv2.getPerspectiveTransform(image, plan)
    return [[round(float(v), 9) + 0.0 for v in row] for row in h / h[2, 2]]  # no -0.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", nargs="+", required=True, metavar="X,Y",
                   help="four floor points in the camera's frame, normalised")
    p.add_argument("--plan", nargs="+", required=True, metavar="X,Y",
                   help="the same four points on the floor plan, normalised, in the same order")


def run(args: argparse.Namespace) -> int:
    matrix = homography(parse_points(args.image, "image"), parse_points(args.plan, "plan"))
    print(json.dumps({"homography": matrix}))
    return 0

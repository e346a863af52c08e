"""`storesense mosaic SEQ_DIR OUT_DIR`: a denser scene of smaller people, made from a real one.

The two development sequences have 6-10 people in view, drawn large; the footage the product
is judged on includes dense indoor crowds seen from above, where people are a few dozen
pixels tall at the detector's scale. No such sequence with ground truth can be had here, so
this builds the nearest honest proxy from real footage: ``n x n`` copies of a MOT sequence,
each scaled down by ``n`` and started at a different frame (so the copies do not move in
step), tiled into one frame of the source's size. People are ``n`` times smaller and ``n^2``
times as many; the ground truth is the source's, moved into each tile, so every true
crossing of the mosaic is one the source's annotators drew. A copy that runs past the end of
the source starts over under new ids (a person does not jump across the wrap).

`storesense eval OUT_DIR --line ...` then scores the pipeline on it like any MOT folder.
"""

from __future__ import annotations

import argparse
import configparser
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.evaluation.mot import SeqInfo, read_seqinfo
from storesense.errors import ConfigError, SourceError

F64 = npt.NDArray[np.float64]

# Ids of tile k on its w-th pass through the source: k * 2 * ID_STRIDE + w * ID_STRIDE + id.
ID_STRIDE = 100_000


def tile_offsets(length: int, n: int) -> list[int]:
    """Start frame (0-based) of each of the n*n copies, spread evenly over the source."""
    return [k * length // (n * n) for k in range(n * n)]


def mosaic_gt(
    gt: F64, length: int, size: tuple[int, int], n: int, offsets: list[int] | None = None
) -> F64:
    """The source's MOT rows (frame, id, left, top, width, height, ...) placed in every tile.

    Boxes are clipped to the source frame before they are scaled, so a foot point never lands
    in the tile below. Columns after the box (conf, class, visibility) are kept as they are.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if gt.ndim != 2 or gt.shape[1] < 6:
        raise ValueError(f"gt: expected (rows, >= 6) MOT rows, got shape {gt.shape}")
    w, h = size
    tw, th = w // n, h // n
    sx, sy = tw / w, th / h
    offs = tile_offsets(length, n) if offsets is None else offsets
    if len(offs) != n * n:
        raise ValueError(f"offsets: expected {n * n}, got {len(offs)}")
    x1 = np.clip(gt[:, 2], 0, w)
    y1 = np.clip(gt[:, 3], 0, h)
    x2 = np.clip(gt[:, 2] + gt[:, 4], 0, w)
    y2 = np.clip(gt[:, 3] + gt[:, 5], 0, h)
    src = gt[:, 0].astype(np.int64) - 1  # 0-based source frame
    parts = []
    for k, off in enumerate(offs):
        row, col = divmod(k, n)
        # Output frame f (0-based) shows source frame (f + off) % length: on the first pass
        # f = src - off (src >= off), on the second f = src + length - off (src < off).
        for wrap, sel in ((0, src >= off), (1, src < off)):
            part = gt[sel].copy()
            part[:, 0] = src[sel] - off + wrap * length + 1
            part[:, 1] = gt[sel, 1] + (2 * k + wrap) * ID_STRIDE
            part[:, 2] = x1[sel] * sx + col * tw
            part[:, 3] = y1[sel] * sy + row * th
            part[:, 4] = (x2[sel] - x1[sel]) * sx
            part[:, 5] = (y2[sel] - y1[sel]) * sy
            parts.append(part)
    out = np.concatenate(parts)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def _read_tiles(video: Path, length: int, tile: tuple[int, int]) -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SourceError(f"cannot open video {video}")
    frames: list[npt.NDArray[np.uint8]] = []
    for i in range(length):
        ok, img = cap.read()
        if not ok:
            raise SourceError(f"{video}: ended after {i} frames, seqinfo says {length}")
        frames.append(np.asarray(cv2.resize(img, tile, interpolation=cv2.INTER_AREA), np.uint8))
    cap.release()
    return frames


def _write_video(path: Path, frames: Iterator[npt.NDArray[np.uint8]], fps: float,
                 size: tuple[int, int]) -> None:
    import av  # only writing needs PyAV; elsewhere the edge falls back to OpenCV without it

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "fast"}  # as the eval videos: visually lossless
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _mosaic_frames(tiles: list[npt.NDArray[np.uint8]], info: SeqInfo, n: int
                   ) -> Iterator[npt.NDArray[np.uint8]]:
    """The mosaic's frames one at a time: a 1080p sequence's 525 frames held at once would
    be 3 GB."""
    tw, th = info.width // n, info.height // n
    canvas = np.full((info.height, info.width, 3), 114, np.uint8)  # a border where w % n != 0
    offs = tile_offsets(info.length, n)
    for f in range(info.length):
        img = canvas.copy()
        for k, off in enumerate(offs):
            row, col = divmod(k, n)
            img[row * th:(row + 1) * th, col * tw:(col + 1) * tw] = tiles[(f + off) % info.length]
        yield img


def build_mosaic(seq_dir: str | Path, out_dir: str | Path, n: int) -> dict[str, object]:
    """Writes video.mp4, gt.txt and seqinfo.ini of the n x n mosaic of ``seq_dir``."""
    if not 2 <= n <= 4:
        raise ConfigError(f"--tiles must be 2, 3 or 4, got {n}")
    info = read_seqinfo(seq_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = np.loadtxt(Path(seq_dir) / "gt.txt", delimiter=",", ndmin=2)
    gt = mosaic_gt(raw, info.length, (info.width, info.height), n)
    tw, th = info.width // n, info.height // n
    offs = tile_offsets(info.length, n)
    tiles = _read_tiles(info.video, info.length, (tw, th))
    _write_video(out / "video.mp4", _mosaic_frames(tiles, info, n), info.fps,
                 (info.width, info.height))
    fmt = ["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f"] + ["%g"] * (gt.shape[1] - 6)
    np.savetxt(out / "gt.txt", gt, fmt=fmt, delimiter=",")
    cp = configparser.ConfigParser()
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep MOT's camelCase keys
    cp["Sequence"] = {
        "name": f"{info.name}-mosaic{n}",
        "frameRate": f"{info.fps:g}",
        "seqLength": str(info.length),
        "imWidth": str(info.width),
        "imHeight": str(info.height),
        "video": "video.mp4",
    }
    with (out / "seqinfo.ini").open("w") as ini:
        cp.write(ini)
    return {"sequence": f"{info.name}-mosaic{n}", "dir": str(out), "frames": info.length,
            "tiles": n * n, "offsets": offs, "gt_rows": len(gt)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("seq_dir", help="MOT-format folder: video.mp4, gt.txt, seqinfo.ini")
    p.add_argument("out_dir", help="where the mosaic sequence is written (not committed)")
    p.add_argument("--tiles", type=int, default=2, help="n: an n x n mosaic (2-4)")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(build_mosaic(args.seq_dir, args.out_dir, args.tiles)))
    return 0

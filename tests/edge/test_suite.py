"""The evaluation suite: its measures on hand-made arrays, the mosaic cache, ground-truth-track
mode (the counter set to the truth's definition must reproduce the banded truth), and one
short run of the real pipeline guarding the accuracy figures."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge.evaluation import suite
from edge.evaluation.evaluate import add_arguments
from edge.evaluation.gt_tracks import count_lines, frames_of, truth_counting
from edge.evaluation.mot import SeqInfo, read_gt, read_seqinfo, true_crossings
from storesense.cli import main
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, LineSpec


def suite_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def events_of(pairs):
    return sorted((f, e.track_id, e.direction) for f, e in pairs)


def truth_of(crossings):
    return sorted((c.frame, c.track_id, c.direction) for c in crossings)


# ------------------------------------------------------------------ ground-truth-track mode

# A 100 x 50 frame: the band 0.1 x min(100, 50) is 5 px across a vertical line and across a
# horizontal one alike (a band in normalised units would be 10 px across the vertical one).
SIZE, BAND = (100, 50), 0.1
INFO = SeqInfo("synthetic", 10.0, 12, SIZE[0], SIZE[1], Path("none.mp4"))


def walker(tid: int, coords: list[float], axis: int) -> np.ndarray:
    """One id whose foot point moves along ``axis`` (0: x, 1: y) through ``coords``, boxes 40
    px tall (a band scaled by body height would be wider than the truth's 5 px)."""
    rows = []
    for f, c in enumerate(coords, start=1):
        x, y = (c, 45.0) if axis == 0 else (30.0, c)
        rows.append([f, tid, x - 3, y - 40, 6, 40])
    return np.array(rows, float)


@pytest.mark.parametrize(
    ("line", "axis", "coords"),
    [
        ((0.5, 0.0, 0.5, 1.0), 0, [40, 44.9, 45.1, 52, 54.9, 55.1, 60]),  # out at 55.1
        ((0.5, 0.0, 0.5, 1.0), 0, [40, 49, 51, 49, 51, 49, 51]),  # sways: no event
        ((0.5, 0.0, 0.5, 1.0), 0, [49, 51, 56, 44, 46, 56]),  # starts in the band
        ((0.0, 0.5, 1.0, 0.5), 1, [10, 19.9, 20.1, 26, 29.9, 30.1, 40]),  # y = 25
        ((0.0, 0.5, 1.0, 0.5), 1, [40, 24, 26, 24, 26, 19, 31, 18]),
        ((0.3, 0.0, 0.7, 1.0), 0, [10, 45, 52, 58, 90]),  # a slanted line (its y = 45 is 48)
    ],
)
def test_the_counter_set_to_the_truth_reproduces_the_banded_truth(line, axis, coords):
    gt = walker(3, coords, axis)
    spec = LineSpec(name="l", points=line)
    config = AnalyticsConfig(lines=[spec])
    got = count_lines(gt, INFO, config, lambda ln: truth_counting(ln.points, SIZE, BAND))
    assert events_of(got) == truth_of(true_crossings(gt, line, SIZE, band=BAND))


def test_frames_of_groups_rows_by_frame_including_empty_frames():
    gt = np.array([[3, 1, 0, 0, 1, 1], [1, 2, 0, 0, 1, 1], [3, 2, 0, 0, 1, 1]], float)
    groups = frames_of(gt, 4)
    assert [g[:, 1].tolist() for g in groups] == [[2.0], [], [1.0, 2.0], []]


@pytest.fixture(scope="module")
def pets_gt(eval_dir):
    d = eval_dir / "PETS09-S2L1"
    return read_seqinfo(d), read_gt(d)


@pytest.fixture(scope="module")
def pets_truths_counted(pets_gt):
    """The analytics on PETS09-S2L1's true tracks, every sweep line, the truth's settings."""
    info, gt = pets_gt
    size = (info.width, info.height)
    config = AnalyticsConfig(lines=suite.sweep_lines())
    return count_lines(gt, info, config, lambda ln: truth_counting(ln.points, size, suite.BAND))


@pytest.mark.parametrize("line", suite.sweep_lines(), ids=lambda ln: ln.name)
def test_gt_mode_reproduces_the_banded_truth_on_every_sweep_line(pets_gt, pets_truths_counted,
                                                                  line):
    """Guards the counter: fed perfect tracks and the truth's own definition of a crossing
    (band 0.01 of min(w, h), one frame on the new side), it must count what the truth counts,
    the same people, directions and frames."""
    info, gt = pets_gt
    truth = true_crossings(gt, line.points, (info.width, info.height), band=suite.BAND)
    got = [(f, e) for f, e in pets_truths_counted if e.line == line.name]
    assert events_of(got) == truth_of(truth)


def test_gt_mode_on_mot17_09_counts_the_banded_truths_people_and_directions(eval_dir):
    """MOT17-09's annotation puts some feet exactly on a vertical sweep line (integer pixels
    on a 1920-wide frame). The README's rule 3 puts such a point on side B (x >= c); a counter
    may date the pass one frame either side of it. Everything else must agree."""
    d = eval_dir / "MOT17-09"
    info, gt = read_seqinfo(d), read_gt(d)
    size = (info.width, info.height)
    config = AnalyticsConfig(lines=suite.sweep_lines())
    got = count_lines(gt, info, config, lambda ln: truth_counting(ln.points, size, suite.BAND))
    for line in suite.sweep_lines():
        truth = truth_of(true_crossings(gt, line.points, size, band=suite.BAND))
        mine = events_of([(f, e) for f, e in got if e.line == line.name])
        by_person = sorted((t, dr, f) for f, t, dr in mine)
        assert [(t, dr) for t, dr, _ in by_person] == sorted((t, dr) for _, t, dr in truth)
        true_frames = [f for _, _, f in sorted((t, dr, f) for f, t, dr in truth)]
        assert all(abs(a - b) <= 1 for (_, _, a), b in zip(by_person, true_frames, strict=True))


# ------------------------------------------------------------------ measures


def test_ids_per_person_counts_track_ids_matched_to_each_true_person():
    # person 1 walks right for 4 frames; the tracker calls them 10, then 11 (an id switch);
    # track 99 is a false track nowhere near anyone: it is matched to nobody.
    gt = np.array([[f, 1, 10 * f, 0, 10, 20] for f in range(1, 5)], float)
    person = [np.array([10 * f, 0, 10 * f + 10, 20], float) for f in range(1, 5)]
    false = np.array([200, 200, 210, 220], float)
    tracks = [(np.array([10 if f < 3 else 11, 99]), np.stack([person[f - 1], false]))
              for f in range(1, 5)]
    assert suite.id_pairs(gt, tracks) == {(1, 10): 2, (1, 11): 2}
    assert suite.ids_tally(gt, suite.id_pairs(gt, tracks)) == {
        "pairs": 2, "lasting_pairs": 2, "persons": 1, "true_persons": 1}
    # a pairing that lasts fewer frames than asked is a flicker of the matching, not an id
    flicker = [(np.array([10 if f != 3 else 11]), person[f - 1][None]) for f in range(1, 5)]
    assert suite.ids_tally(gt, suite.id_pairs(gt, flicker), min_frames=2) == {
        "pairs": 2, "lasting_pairs": 1, "persons": 1, "true_persons": 1}
    # a track box half off the person (IoU 1/3) is not a match
    off = [(np.array([10]), np.array([[10 * f + 5, 0, 10 * f + 15, 20]], float))
           for f in range(1, 5)]
    assert suite.id_pairs(gt, off) == {}


def test_idf1_counts_a_track_that_runs_on_into_the_next_person():
    # person 1 for frames 1-4, then person 2 appears where they left for frames 5-8; one track
    # (7) covers both: one id per person, but half of the boxes belong to the wrong identity
    gt = np.array([[f, 1 if f <= 4 else 2, 10 * f, 0, 10, 20] for f in range(1, 9)], float)
    boxes = [np.array([[10 * f, 0, 10 * f + 10, 20]], float) for f in range(1, 9)]
    merged = [(np.array([7]), b) for b in boxes]
    pairs = suite.id_pairs(gt, merged)
    assert suite.ids_tally(gt, pairs)["lasting_pairs"] == 2  # ids per person: 2 / 2 = 1.0
    assert suite.idf1_tally(gt, merged) == {"idtp": 4, "true_boxes": 8, "track_boxes": 8}
    split = [(np.array([7 if f <= 4 else 8]), b) for f, b in enumerate(boxes, start=1)]
    assert suite.idf1_tally(gt, split)["idtp"] == 8  # one track each: every box identified
    line = LineSpec(name="l", points=(0.5, 0.0, 0.5, 1.0))
    info = SeqInfo("s", 10.0, 8, 100, 50, Path("none.mp4"))
    row = {**suite.line_tallies([], [line], gt, info),
           "ids": {**suite.ids_tally(gt, pairs), **suite.idf1_tally(gt, merged)}}
    assert suite.figures(row)["idf1"] == 0.5 and suite.figures(row)["ids_per_person"] == 1.0
    # a false track adds to the track boxes, never to the matches
    noisy = [(np.array([8, 99]), np.stack([b[0], [200, 200, 210, 220]])) for b in boxes]
    assert suite.idf1_tally(gt, noisy) == {"idtp": 4, "true_boxes": 8, "track_boxes": 16}


def test_one_track_box_matches_one_person_only():
    # two people side by side, one track box on the first: one pair, not two
    gt = np.array([[1, 1, 0, 0, 10, 20], [1, 2, 6, 0, 10, 20]], float)
    tracks = [(np.array([5]), np.array([[0, 0, 10, 20]], float))]
    assert suite.id_pairs(gt, tracks) == {(1, 5): 1}


def test_dwell_and_occupancy_tallies_and_their_figures():
    d = suite.dwell_tally([(1, 20), (1, 5)], [(1, 10), (3, 12), (1, 2)], fps=10.0)
    # true: 2.0 s (0.5 s is under a second); tracked: 1.0 s and 1.0 s (0.2 s left out)
    assert d == {"true_s": 2.0, "true_n": 1, "tracked_s": 2.0, "tracked_n": 2}
    gt = np.array([[1, 1, 0, 0, 1, 1], [1, 2, 0, 0, 1, 1], [2, 1, 0, 0, 1, 1]], float)
    o = suite.occupancy_tally(gt, np.array([2.0, 3.0, 1.0]), 3)  # true per frame 2, 1, 0
    assert o == {"abs_error": 3.0, "true": 3.0, "frames": 3}
    row = {"per_line": [], "dwell": d, "occupancy": o, "ids": None}
    row["per_line"] = [{"line": "l", "strict": _tally(2, 2, 1), "banded": _tally(2, 1, 1),
                        "exact": False}]
    f = suite.figures(row)
    assert f["dwell_error"] == -0.5  # tracked mean 1.0 s against 2.0 s
    assert (f["occupancy_mae"], f["occupancy_rel"]) == (1.0, 1.0)  # 3 / 3 frames; mean 1
    assert f["ids_per_person"] is None
    assert f["strict"]["count_accuracy"] == 1.0 and f["banded"]["count_accuracy"] == 0.0


def _tally(pred: int, true: int, matched: int) -> dict[str, int]:
    return {"p_in": pred, "p_out": 0, "t_in": true, "t_out": 0, "error": abs(pred - true),
            "matched": matched}


def test_the_all_row_pools_tallies_not_ratios():
    a = {"sequence": "a", "variant": 1, "mode": "pipeline", "frames": 10, "seconds": 1.0,
         "per_line": [{"line": "l", "strict": _tally(1, 1, 1), "banded": _tally(1, 1, 1),
                       "exact": True}],
         "ids": {"pairs": 2, "lasting_pairs": 2, "persons": 2, "true_persons": 2},
         "dwell": {"true_s": 10.0, "true_n": 1, "tracked_s": 10.0, "tracked_n": 1},
         "occupancy": {"abs_error": 0.0, "true": 10.0, "frames": 10}}
    b = {**a, "sequence": "b",
         "per_line": [{"line": "l", "strict": _tally(0, 3, 0), "banded": _tally(0, 3, 0),
                       "exact": False}],
         "ids": {"pairs": 7, "lasting_pairs": 6, "persons": 2, "true_persons": 2},
         "dwell": {"true_s": 30.0, "true_n": 1, "tracked_s": 10.0, "tracked_n": 2},
         "occupancy": {"abs_error": 30.0, "true": 50.0, "frames": 30}}
    f = suite.figures(suite.pool_rows([a, b], "all"))
    assert f["strict"]["true"] == 4 and f["strict"]["count_accuracy"] == 0.25  # 1 - 3 / 4
    assert f["ids_per_person"] == 2.0  # 8 pairs / 4 persons (not the mean of 1 and 3: also 2)
    # a: 0; b: (5 - 30) / 30. Not the pooled means' (20/3 - 20) / 20: errors must not cancel
    assert f["dwell_abs_error"] == round((0 + 25 / 30) / 2, 3)
    assert f["occupancy_mae"] == 0.75 and f["occupancy_rel"] == 0.5  # 30/40; mean 60/40
    assert f["exact_lines"] == 1 and f["lines"] == 2
    text = suite.table([a, b])
    widths = {len(line) for line in text.splitlines()}
    assert len(text.splitlines()) == 3 and max(widths) - min(widths) < 10


# ------------------------------------------------------------------ sequences and the cache


def make_seq(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "video.mp4").write_bytes(b"not decoded here")
    (d / "gt.txt").write_text("1,1,10,10,5,10,1,1,1\n")
    (d / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nframeRate=10\nseqLength=1\nimWidth=64\nimHeight=48\n")
    return d


def test_sequences_are_the_mot_folders_and_unknown_names_are_refused(tmp_path):
    a, b = make_seq(tmp_path, "B-seq"), make_seq(tmp_path, "A-seq")
    (tmp_path / "notes").mkdir()
    assert suite.find_sequences(tmp_path, None) == [b, a]
    assert suite.find_sequences(tmp_path, ["B-seq"]) == [a]
    with pytest.raises(ConfigError, match="C-seq"):
        suite.find_sequences(tmp_path, ["C-seq"])
    with pytest.raises(ConfigError, match="no MOT sequence"):
        suite.find_sequences(tmp_path / "notes", None)


def test_a_mosaic_is_built_once_and_rebuilt_when_its_source_changes(tmp_path, monkeypatch):
    seq = make_seq(tmp_path / "eval", "S")
    builds = []

    def fake_build(src, out, n):
        builds.append((src, n))
        Path(out).mkdir(parents=True)
        (Path(out) / "gt.txt").write_text(f"build {len(builds)}")

    monkeypatch.setattr(suite, "build_mosaic", fake_build)
    work = tmp_path / "work"
    d = suite.variant_dir(seq, 2, work)
    assert d == work / "S-mosaic2" and len(builds) == 1
    assert suite.variant_dir(seq, 2, work) == d and len(builds) == 1  # reused
    assert suite.variant_dir(seq, 1, work) == seq and len(builds) == 1  # the original itself
    suite.variant_dir(seq, 3, work)
    assert len(builds) == 2  # another size is another mosaic
    st = (seq / "gt.txt").stat()
    os.utime(seq / "gt.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    suite.variant_dir(seq, 2, work)
    assert len(builds) == 2  # touched (copied, restored) with the same bytes: kept
    (seq / "gt.txt").write_text("1,1,10,10,5,10,1,1,1\n2,1,11,10,5,10,1,1,1\n")
    suite.variant_dir(seq, 2, work)
    assert len(builds) == 3 and (d / "gt.txt").read_text() == "build 3"
    assert sorted(p.name for p in work.iterdir()) == ["S-mosaic2", "S-mosaic3"]


def test_an_interrupted_build_is_not_taken_for_a_mosaic(tmp_path, monkeypatch):
    seq = make_seq(tmp_path / "eval", "S")

    def failing_build(src, out, n):
        Path(out).mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(suite, "build_mosaic", failing_build)
    with pytest.raises(KeyboardInterrupt):
        suite.variant_dir(seq, 2, tmp_path / "work")
    assert not (tmp_path / "work" / "S-mosaic2").exists()


def test_the_suite_refuses_a_sequence_or_lines_of_its_own():
    with pytest.raises(ConfigError, match="no SEQ_DIR or --line"):
        suite.run(suite_args("--suite", "--line", "0.5,0,0.5,1"))
    with pytest.raises(ConfigError, match="--variants"):
        suite.run_suite(suite_args("--suite", "/nonexistent", "--variants", "5"))


# ------------------------------------------------------------------ the command, end to end


def test_eval_suite_in_gt_mode_prints_one_table_and_writes_every_figure(eval_dir, tmp_path,
                                                                        capsys):
    out = tmp_path / "suite.json"
    argv = ["eval", "--suite", str(eval_dir), "--gt-tracks", "--variants", "1",
            "--sequences", "PETS09-S2L1,MOT17-09", "--json", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["sequence", "variant", "mode"]
    assert [ln.split()[0] for ln in lines[1:-1]] == ["PETS09-S2L1"] * 2 + ["MOT17-09"] * 2 + [
        "all"] * 6  # per mode: every line, then vertical and horizontal lines apart
    assert [ln.split()[1:3] for ln in lines[-5:-1]] == [["vertical", "lines"],
                                                        ["horizontal", "lines"]] * 2
    assert lines[-1].startswith("wall time")
    result = json.loads(out.read_text())
    assert result["lines"] == [ln.name for ln in suite.sweep_lines()]
    for row in result["rows"]:
        assert len(row["per_line"]) == 14
        assert set(row["figures"]) >= {"strict", "banded", "exact_lines", "ids_per_person"}
    # the counter at its defaults is scored too, on the same truths
    modes = [r["mode"] for r in result["rows"]]
    assert modes == ["gt, truth's counting", "gt, default counting"] * 2
    truth_rows = [r for r in result["rows"] if r["mode"] == "gt, truth's counting"]
    banded = [r["figures"]["banded"]["true"] for r in truth_rows]
    assert banded == [r["figures"]["banded"]["true"] for r in result["rows"][1::2]]
    by_axis = result["by_orientation"]
    assert [r["figures"]["lines"] for r in by_axis] == [7 * 2, 7 * 2] * 2
    assert sum(r["figures"]["banded"]["true"] for r in by_axis[:2]) == sum(banded)


@pytest.mark.video
def test_the_default_pipeline_keeps_its_accuracy_on_pets09(eval_dir, models_dir):
    """A floor, clearly below the README's code (49c6430: 0.969 / 0.954 pooled on these
    three lines, strict truth), so that a change which breaks counting fails here and not only
    in the README's figures."""
    args = suite_args("--suite", str(eval_dir), "--sequences", "PETS09-S2L1", "--variants", "1",
                      "--models-dir", str(models_dir), "--quiet")
    lines = [ln for ln in suite.sweep_lines() if ln.name in ("x0.4", "x0.5", "y0.5")]
    result = suite.run_suite(args, lines=lines)
    (row,) = result["rows"]
    assert row["frames"] == 795 and len(row["per_line"]) == 3
    f = suite.figures(row)
    for truth in ("strict", "banded"):
        assert f[truth]["count_accuracy"] >= 0.85, f
        assert f[truth]["f1"] >= 0.85, f
    assert f["ids_per_person"] is not None and 1.0 <= f["ids_per_person"] < 4.0
    assert f["occupancy_rel"] is not None and f["occupancy_rel"] < 0.3
    for p in row["per_line"]:  # every banded error is given one kind, none twice
        b, kinds = p["banded"], p["kinds"]
        assert sum(kinds["missed"].values()) == b["t_in"] + b["t_out"] - b["matched"], p
        assert sum(kinds["extra"].values()) == b["p_in"] + b["p_out"] - b["matched"], p
    assert suite.kinds_table([row]) is not None


def test_a_mosaic_leaves_out_the_lines_on_its_seams():
    lines = suite.sweep_lines()
    assert suite.off_seams(lines, 1) == lines
    assert [ln.name for ln in lines if ln not in suite.off_seams(lines, 2)] == ["x0.5", "y0.5"]
    assert suite.off_seams(lines, 3) == lines  # its seams, 1/3 and 2/3, carry no sweep line
    assert len(suite.off_seams(lines, 4)) == 14 - 2  # x and y = 0.5 (0.25 and 0.75 carry none)


def test_orientation_rows_pool_each_rows_vertical_and_horizontal_lines_apart():
    lines = [LineSpec(name="a", points=(0.3, 0.0, 0.3, 1.0)),
             LineSpec(name="b", points=(0.0, 0.6, 1.0, 0.6)),
             LineSpec(name="c", points=(0.0, 0.0, 1.0, 1.0))]  # diagonal: in neither

    def tally(true: int, pred: int) -> dict[str, int]:
        return {"p_in": pred, "p_out": 0, "t_in": true, "t_out": 0,
                "error": abs(pred - true), "matched": min(pred, true)}

    def per(name: str, true: int, pred: int) -> dict[str, object]:
        return {"line": name, "exact": False, "strict": tally(true, pred),
                "banded": tally(true, pred)}

    rows = [{"sequence": s, "variant": 1, "mode": "pipeline", "frames": 10, "seconds": 1.0,
             "per_line": [per("a", 4, 4), per("b", 2, 3 + k), per("c", 1, 9)]}
            for k, s in enumerate(("one", "two"))]
    vertical, horizontal = suite.orientation_rows(rows, lines)
    assert (vertical["variant"], horizontal["variant"]) == ("vertical lines", "horizontal lines")
    assert suite.figures(vertical)["banded"]["count_accuracy"] == 1.0
    # horizontal: 4 true, 3 + 4 reported, errors 1 + 2 summed (not netted) -> 1 - 3/4
    assert suite.figures(horizontal)["banded"]["count_accuracy"] == pytest.approx(0.25)
    assert horizontal["frames"] == 20

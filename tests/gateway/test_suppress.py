"""k = 5 with complementary suppression, as a table of small cases (gateway/suppress.py)."""

from __future__ import annotations

import itertools

import pytest

from gateway.suppress import suppress, suppress_dimensions

CASES = [
    # counts -> the keys suppressed
    ({"a": 30, "b": 25}, []),
    ({"a": 30, "b": 25, "c": 0}, ["c"]),            # 0 hidden, but hides nobody: no complement
    ({"a": 30, "b": 25, "c": 3}, ["b", "c"]),       # 3 alone is total - a - b: b hides too
    ({"a": 30, "b": 6, "c": 2, "d": 2}, ["b", "c", "d"]),  # 2 + 2 = 4 < 5
    ({"a": 30, "b": 6, "c": 3, "d": 2}, ["c", "d"]),       # 3 + 2 = 5: enough already
    ({"a": 4, "b": 0}, ["a", "b"]),                 # a total under 5: everything
    ({}, []),
]


@pytest.mark.parametrize(("counts", "hidden"), CASES)
def test_cells_under_five_and_their_complements_are_suppressed(
        counts: dict[str, int], hidden: list[str]) -> None:
    cells, keys = suppress(counts)
    assert keys == hidden
    assert cells == {k: (None if k in hidden else n) for k, n in counts.items()}


def test_no_single_cell_of_one_to_four_can_be_recovered_from_the_total() -> None:
    for values in itertools.product((0, 1, 2, 4, 5, 9), repeat=4):
        counts = dict(zip("abcd", values, strict=True))
        cells, _ = suppress(counts)
        hidden = sum(n for k, n in counts.items() if cells[k] is None)
        everything = all(v is None for v in cells.values())  # a total under 5
        assert hidden == 0 or hidden >= 5 or everything, counts
        assert all(cells[k] is None for k, n in counts.items() if n < 5), counts


def test_dimensions_are_suppressed_and_other_fields_kept() -> None:
    out, keys = suppress_dimensions({"genders": {"female": 9, "male": 1, "unknown": 6},
                                     "age_bands": {}, "note": "x"})
    assert out == {"genders": {"female": 9, "male": None, "unknown": None}, "age_bands": {},
                   "note": "x"}
    assert keys == ["genders.male", "genders.unknown"]

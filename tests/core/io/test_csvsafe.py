"""Spreadsheet-safe CSV: formula-looking cells are neutralised and read back as they were."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svetlana.core.io.csvsafe import TRIGGERS, neutralise, read_dicts, restore, to_csv_text


def _is_formula(cell: str) -> bool:
    """What a spreadsheet would evaluate: a trigger first (after spaces), and not a number."""
    head = cell.lstrip(" ")
    if not head or head[0] not in TRIGGERS:
        return False
    try:
        float(head)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(
    "text",
    ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "  =HYPERLINK(x)"],
)
def test_formula_cells_are_neutralised_and_restored(text):
    cell = neutralise(text)
    assert cell.startswith("'") and not _is_formula(cell)
    assert restore(cell) == text


@pytest.mark.parametrize("value", [-1, -0.5, 3, 1e-9, "-0.5", "+3", "-1e-3", "42"])
def test_numbers_are_never_altered(value):
    assert neutralise(value) == value
    assert to_csv_text(["x"], [[value]]).splitlines()[1] == str(value)


def test_numpy_strings_are_text_too():
    import numpy as np

    assert neutralise(np.array(["=1+2"])[0]) == "'=1+2"


def test_plain_text_and_quotes_are_kept():
    for text in ("infected", "class 1", "it's", "'quoted'", "a=b", ""):
        assert neutralise(text) == text and restore(text) == text


@given(st.text(alphabet=st.sampled_from("=+-@\t\r' a1.,\"\n"), max_size=12))
def test_every_text_round_trips_through_a_csv_file(text):
    written = to_csv_text(["=head", "value"], [{"=head": text, "value": 1}])
    for row in csv.reader(io.StringIO(written, newline="")):
        assert not any(_is_formula(c) for c in row), row
    (row,) = list(read_dicts(io.StringIO(written, newline="")))
    assert row == {"=head": text, "value": "1"}

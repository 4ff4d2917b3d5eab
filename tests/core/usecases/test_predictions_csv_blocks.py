"""predictions.csv written a block at a time is byte for byte the row-by-row spreadsheet-safe
CSV: quoting, formula-like names neutralised, empty cells, 2D and 3D, manual labels."""

from __future__ import annotations

import io

import numpy as np
import pytest

from svetlana.core.annotations.final_class import final_classes
from svetlana.core.annotations.store import Label
from svetlana.core.io.csvsafe import read_dicts
from svetlana.core.objects.table import compute_objects
from svetlana.core.usecases.predict import (
    ImagePrediction,
    prediction_csv_blocks,
    prediction_rows,
    write_predictions_csv,
)


def _prediction(nd: int, classes, image_name: str):
    rng = np.random.default_rng(nd)
    shape = (40, 50) if nd == 2 else (6, 30, 30)
    labels = np.zeros(shape, np.int32)
    for k in range(1, 30):
        at = tuple(int(rng.integers(0, s - 3)) for s in shape)
        labels[tuple(slice(a, a + 3) for a in at)] = k
    table = compute_objects(labels)
    probs = rng.dirichlet(np.ones(len(classes)), len(table.ids)).astype(np.float32)
    unc = rng.random(len(table.ids)).astype(np.float32)
    return ImagePrediction(image_name, table, probs, tuple(classes), unc)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize(
    ("classes", "image_name", "model_id"),
    [
        (["a", "b"], "img", "m1"),
        (['=cmd|"x"', "with, comma", "+1", " -2"], '@image "q"', "-model"),
        (["é ü", "line\nbreak"], "name,with,commas", ""),
    ],
)
def test_block_writer_gives_the_row_writer_bytes(nd, classes, image_name, model_id):
    pred = _prediction(nd, classes, image_name)
    manual = {int(pred.ids[0]): Label(classes[-1]), int(pred.ids[3]): Label(classes[0], "import")}
    # The run's classes add one the model never saw: its probability cells are empty.
    names = [*classes, "extra"]
    final = final_classes(pred, manual, names)
    rows, blocks = io.StringIO(), io.StringIO()
    write_predictions_csv(rows, names, prediction_rows(pred, final, model_id, names))
    write_predictions_csv(blocks, names, blocks=prediction_csv_blocks(pred, final, model_id, names))
    assert blocks.getvalue() == rows.getvalue()
    back = list(read_dicts(io.StringIO(blocks.getvalue())))
    assert len(back) == len(pred.ids) and back[0]["label"] == classes[-1]
    assert {r["image"] for r in back} == {image_name}


def test_a_carriage_return_in_a_name_still_gives_readable_rows():
    pred = _prediction(2, ["a\rb", "c"], "img")
    final = final_classes(pred, {}, ["a\rb", "c"])
    rows, blocks = io.StringIO(), io.StringIO()
    write_predictions_csv(rows, ["a\rb", "c"], prediction_rows(pred, final, "m", ["a\rb", "c"]))
    write_predictions_csv(blocks, ["a\rb", "c"], blocks=prediction_csv_blocks(pred, final, "m"))
    assert blocks.getvalue() == rows.getvalue()


def test_a_forests_few_distinct_probabilities_give_the_row_writer_bytes():
    """A forest's probabilities are fractions of its trees (each text made once per value):
    repeated values, 0 and 1, a negative zero and NaN are written as the row writer does."""
    pred = _prediction(2, ["a", "b", "c"], "img")
    n = len(pred.ids)
    rng = np.random.default_rng(5)
    probs = (rng.integers(0, 101, (n, 3)) / 100).astype(np.float32)
    probs[0] = [-0.0, 1.0, 0.0]
    unc = (rng.integers(0, 7, n) / 7).astype(np.float32)
    unc[1], unc[2] = np.nan, -0.0
    pred = ImagePrediction("img", pred.table, probs, ("a", "b", "c"), unc)
    final = final_classes(pred, {}, ["a", "b", "c"])
    rows, blocks = io.StringIO(), io.StringIO()
    write_predictions_csv(rows, ["a", "b", "c"], prediction_rows(pred, final, "m"))
    write_predictions_csv(blocks, ["a", "b", "c"], blocks=prediction_csv_blocks(pred, final, "m"))
    assert blocks.getvalue() == rows.getvalue()
    assert "-0.0" in blocks.getvalue() and "nan" in blocks.getvalue()

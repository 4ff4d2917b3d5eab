"""The class masks are written on a thread beside predictions.csv: a mask that cannot be written
fails the prediction with its own error, and leaves the earlier saved predictions as they were
(never a CSV without its masks)."""

from __future__ import annotations

import pytest

from svetlana.core.io.fileio import os_error
from svetlana.core.jobs import in_background
from svetlana.core.usecases import results
from tests.cli.folder_helpers import csv_rows, ok, run_cli, trained_bundle


def test_a_class_mask_that_fails_fails_the_prediction_and_keeps_the_saved_one(
    tmp_path, monkeypatch
):
    bundle = trained_bundle(tmp_path, names=("a", "b"), predict=True)
    saved = bundle / "predictions" / "model-1"
    before = (saved / "predictions.csv").read_bytes()
    masks = {p.name: p.read_bytes() for p in saved.glob("*_classes.tif")}

    def broken(path, *args, **kwargs):  # as the atomic writer raises it
        raise os_error(OSError(28, "No space left on device"), path)

    monkeypatch.setattr(results, "write_class_mask", broken)
    code, _out, err = run_cli("-q", "predict", bundle)
    assert code != 0 and "disk is full" in err and "_classes.tif" in err
    assert (saved / "predictions.csv").read_bytes() == before
    assert {p.name: p.read_bytes() for p in saved.glob("*_classes.tif")} == masks
    assert sorted({r["image"] for r in csv_rows(saved / "predictions.csv")}) == ["a", "b"]
    monkeypatch.undo()
    ok("predict", bundle)  # and the next prediction works


def test_a_background_error_is_raised_on_the_callers_thread():
    def fails():
        raise ValueError("from the thread")

    wait = in_background(fails)
    with pytest.raises(ValueError, match="from the thread"):
        wait()
    assert in_background(lambda: 41 + 1)() == 42

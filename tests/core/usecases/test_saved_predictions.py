"""Saved predictions: one writer, one reader, one staleness rule. Predicting one image keeps the
others' saved predictions; stale ones (another card, other objects) are never used, not even
partly."""

from __future__ import annotations

import json

import numpy as np

from svetlana.core.project.bundle import Project
from svetlana.core.usecases.results import project_predictions, saved_predictions
from tests.cli.folder_helpers import csv_rows, ok, trained_bundle


def test_predicting_one_image_keeps_the_others_saved(tmp_path):
    bundle = trained_bundle(tmp_path, names=("a", "b"))
    ok("predict", bundle, "--image", "a")
    out = ok("predict", bundle, "--image", "b")
    assert "1 class mask " in out  # the count of files written (a's is kept, not written)
    saved = bundle / "predictions" / "model-1"
    rows = csv_rows(saved / "predictions.csv")
    assert sorted({r["image"] for r in rows}) == ["a", "b"] and len(rows) == 24
    assert sorted(p.name for p in saved.glob("*_classes.tif")) == [
        "a_classes.tif", "b_classes.tif"
    ]  # fmt: skip
    assert json.loads((saved / "run.json").read_text())["images"] == ["b", "a"]
    with Project.open(bundle, readonly=True) as project:
        got = project_predictions(project, "model-1")
    assert not got.predicted_now and sorted(got.predictions) == ["a", "b"]


def test_stale_saved_predictions_are_not_used(tmp_path):
    bundle = trained_bundle(tmp_path, names=("a", "b"), predict=True)
    saved = bundle / "predictions" / "model-1"
    with Project.open(bundle, readonly=True) as project:
        assert sorted(saved_predictions(project, "model-1", ["a", "b"])) == ["a", "b"]
    # a row missing: the image's saved predictions do not cover its objects
    text = (saved / "predictions.csv").read_text().splitlines()
    (saved / "predictions.csv").write_text("\n".join(text[:-1]) + "\n")
    with Project.open(bundle, readonly=True) as project:
        assert saved_predictions(project, "model-1", ["a"]) is not None
        assert saved_predictions(project, "model-1", ["a", "b"]) is None
        got = project_predictions(project, "model-1", ["a", "b"])
        assert got.predicted_now and "predicted them now" in got.note
        assert all(len(p.ids) == 12 for p in got.predictions.values())
    # the model's card changed since (another model under the same name): stale
    ok("predict", bundle)
    card = bundle / "models" / "model-1" / "card.json"
    data = json.loads(card.read_text())
    data["date"] = "2001-01-01T00:00:00"
    card.write_text(json.dumps(data))
    with Project.open(bundle, readonly=True) as project:
        assert saved_predictions(project, "model-1", ["a"]) is None


def test_one_class_mask_writer_for_in_memory_and_large_masks(tmp_path):
    import dask.array as da
    import tifffile

    from svetlana.core.usecases.results import write_class_mask

    labels = np.zeros((300, 500), np.int32)
    labels[10:50, 20:80] = 3
    labels[200:290, 400:490] = 9
    ids, index = np.array([3, 9]), np.array([2, 1])
    a = write_class_mask(tmp_path / "a_classes.tif", labels, ids, index)
    b = write_class_mask(tmp_path / "b_classes.tif", da.from_array(labels, chunks=128), ids, index)
    assert np.array_equal(tifffile.imread(a), tifffile.imread(b))
    assert tifffile.imread(a)[20, 30] == 2 and tifffile.imread(b)[250, 450] == 1

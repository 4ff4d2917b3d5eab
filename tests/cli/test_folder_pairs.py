"""`predict --folder`: every image is classified with its own mask, by exact name, and gets its
own outputs; a stem two images share is refused with the list."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.cli.folder_helpers import csv_rows, ok, trained_bundle
from tests.conftest import blobs, run_cli, write_pair


def test_names_that_differ_only_by_case_keep_their_own_masks(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    upper = blobs(n=9, seed=3)
    lower = blobs(n=4, seed=4)
    write_pair(folder, "CELL", *upper)
    write_pair(folder, "cell", *lower)
    if (folder / "CELL.tif").samefile(folder / "cell.tif"):
        pytest.skip("this disk ignores case")
    out = ok("predict", bundle, "--folder", folder, "--out", tmp_path / "o")
    rows = csv_rows(tmp_path / "o" / "predictions.csv")
    per = {
        im: sorted(int(r["object"]) for r in rows if r["image"] == im) for im in ("CELL", "cell")
    }
    assert per["CELL"] == sorted(np.unique(upper[1])[1:].tolist())  # its own mask's objects
    assert per["cell"] == sorted(np.unique(lower[1])[1:].tolist())
    masks = sorted((tmp_path / "o").glob("*_classes.tif"))
    assert len(masks) == 2 and "2 class masks" in out
    # each class mask covers its own image's objects; the names differ only by case, so
    # (for a disk that ignores case) each gets a suffix, recorded in run.json
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    stems = record["file_names"]
    assert set(stems) == {"CELL", "cell"} and stems["CELL"].lower() != stems["cell"].lower()
    for name, (_, labels) in (("CELL", upper), ("cell", lower)):
        cm = tifffile.imread(tmp_path / "o" / f"{stems[name]}_classes.tif")
        assert np.array_equal(cm > 0, labels > 0)


def test_names_that_clean_to_one_file_name_get_two_files(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    write_pair(folder, "a b", *blobs(n=9, seed=3))
    write_pair(folder, "a_b", *blobs(n=4, seed=4))
    out = ok("predict", bundle, "--folder", folder, "--out", tmp_path / "o")
    rows = csv_rows(tmp_path / "o" / "predictions.csv")
    assert sum(r["image"] == "a b" for r in rows) == 9
    assert sum(r["image"] == "a_b" for r in rows) == 4
    masks = list((tmp_path / "o").glob("*_classes.tif"))
    assert len(masks) == 2 and "2 class masks" in out
    assert sorted((tifffile.imread(m) > 0).sum() for m in masks) == sorted(
        [(blobs(n=9, seed=3)[1] > 0).sum(), (blobs(n=4, seed=4)[1] > 0).sum()]
    )


def test_one_stem_in_two_formats_is_refused_with_the_list(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    image, labels = blobs(n=9, seed=3)
    write_pair(folder, "x", image, labels)
    Image.fromarray((image // 4).astype(np.uint8)).save(folder / "x.png")
    Image.fromarray(labels.astype(np.uint8)).save(folder / "x_mask.png")
    code, _, err = run_cli("predict", bundle, "--folder", folder, "--out", tmp_path / "o")
    assert code == 1 and "x.png, x.tif" in err and "share a name" in err, err
    assert not (tmp_path / "o").exists()

"""Images whose names clean to one file name (`a b`, `a_b`) each keep their own output files, and
every count printed is the count of files written."""

from __future__ import annotations

import json
import re

import tifffile

from tests.cli.folder_helpers import csv_rows, ok, trained_bundle


def _count(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    assert m, text
    return int(m.group(1))


def test_two_images_one_cleaned_name_keep_their_own_outputs(tmp_path):
    bundle = trained_bundle(tmp_path, names=("a b", "a_b"), predict=True)
    saved = bundle / "predictions" / "model-1"
    masks = sorted(saved.glob("*_classes.tif"))
    assert len(masks) == 2  # one per image, not one overwritten by the other
    names = json.loads((saved / "run.json").read_text())["file_names"]
    assert set(names) == {"a b", "a_b"} and names["a b"] != names["a_b"]
    rows = csv_rows(saved / "predictions.csv")
    classes = json.loads((saved / "run.json").read_text())["classes"]
    for image in ("a b", "a_b"):  # each class mask agrees with its own image's rows
        cm = tifffile.imread(saved / f"{names[image]}_classes.tif")
        mine = [r for r in rows if r["image"] == image]
        assert len(mine) == 12
        for r in mine:
            y, x = round(float(r["centroid_y"])), round(float(r["centroid_x"]))
            assert cm[y, x] == classes.index(r["class"]) + 1

    out = ok("export-objects", bundle, "--out", tmp_path / "g")
    files = list((tmp_path / "g").glob("*.geojson"))
    assert _count(r"to (\d+) GeoJSON file", out) == len(files) == 2
    docs = [json.loads(f.read_text()) for f in files]
    assert sorted(len(d["features"]) for d in docs) == [12, 12]

    out = ok("export-patches", bundle, "--out", tmp_path / "p", "--tiff")
    tiffs = list((tmp_path / "p").rglob("*.tif"))
    assert _count(r"and (\d+) TIFFs", out) == len(tiffs) == 24

    out = ok("export-mask", bundle, "--keep", "bright", "--out", tmp_path / "m")
    filtered = list((tmp_path / "m").glob("*_filtered.tif"))
    assert len(filtered) == 2 and out.count("kept") == 3

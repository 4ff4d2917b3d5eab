"""Formula-looking names travel import -> train -> predict -> export and reach every CSV neutralised."""

from __future__ import annotations

import csv
import io

from svetlana.core.annotations.records import read_label_csv
from svetlana.core.io.csvsafe import TRIGGERS
from svetlana.core.usecases.predict import read_predictions
from tests.conftest import blobs, ok, run_cli, write_pair
from tests.robustness.helpers import IDS

CLASSES = ("=1+2", "+cmd|' /C calc'!A0")
IMAGE = "@cells"


def _formula_cells(path) -> list[str]:
    """Cells a spreadsheet would evaluate (trigger first, after spaces, and not a number)."""
    bad = []
    for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")):
        for cell in row:
            head = cell.lstrip(" ")
            if head and head[0] in TRIGGERS:
                try:
                    float(head)
                except ValueError:
                    bad.append(cell)
    return bad


def test_formula_class_names_round_trip_neutralised(tmp_path):
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle)
    ok("add", bundle, ip, mp, "--name", IMAGE)
    src = tmp_path / "labels.csv"  # a collaborator's file: raw formulas, as a script writes them
    src.write_text(
        "image,object,class\n"
        + "".join(f"{IMAGE},{o},{CLASSES[k % 2]}\n" for k, o in enumerate(IDS)),
        encoding="utf-8",
    )
    ok("import-labels", bundle, src)
    ok("-q", "train", bundle, "--epochs", "2", "--val-fraction", "0", "--device", "cpu")
    out = tmp_path / "out"
    ok("-q", "predict", bundle, "--out", out, "--device", "cpu")
    ok("-q", "predict", bundle, "--device", "cpu")  # saved in the bundle, for export-table
    ok("export-labels", bundle, tmp_path / "exported.csv")
    ok("-q", "export-mask", bundle, "--keep", CLASSES[0], "--out", tmp_path / "masks")
    ok("-q", "export-patches", bundle, "--out", tmp_path / "patches")
    ok("-q", "export-table", bundle, "--out", tmp_path / "tables")
    ok("-q", "measure", bundle, "--out", tmp_path / "measure")
    folder = tmp_path / "folder"  # a folder prediction with one unreadable pair: errors.csv
    write_pair(folder, "=good", image, labels)
    (folder / "@bad.tif").write_bytes(b"not a tiff")
    (folder / "@bad_masks.tif").write_bytes(b"not a tiff")
    run_cli("-q", "predict", bundle, "--folder", folder, "--out", tmp_path / "fo")
    written = [
        out / "predictions.csv",
        tmp_path / "exported.csv",
        tmp_path / "masks" / "filter_summary.csv",
        tmp_path / "patches" / "patches.csv",
        bundle / "annotations.csv",
        *bundle.glob("predictions/*/predictions.csv"),
        *(tmp_path / "tables").glob("*.csv"),
        *(tmp_path / "measure").glob("*.csv"),
        tmp_path / "fo" / "predictions.csv",
        tmp_path / "fo" / "errors.csv",
    ]
    assert len(written) >= 12
    for path in written:
        text = path.read_text(encoding="utf-8")
        if not path.name.endswith("_columns.csv"):  # column names only: p_=1+2 is text
            assert "'=1+2" in text or "'+cmd" in text or "'@" in text or "'=good" in text, path
        assert _formula_cells(path) == [], path

    # Our readers give the original names back.
    truth = {(IMAGE, o): CLASSES[k % 2] for k, o in enumerate(IDS)}
    exported = read_label_csv(tmp_path / "exported.csv")
    assert {(r["image"], r["object"]): r["class"] for r in exported} == truth
    preds = read_predictions(out / "predictions.csv")
    assert set(preds) == {IMAGE}
    row = preds[IMAGE][IDS[0]]
    assert row["label"] == CLASSES[0] and row["class"] in CLASSES
    assert {f"p_{c}" for c in CLASSES} <= set(row)
    with open(tmp_path / "masks" / "filter_summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert summary[0]["keep"] == "'" + CLASSES[0]

    # The exported labels import into another project as the same names.
    other = tmp_path / "q.svetlana"
    ok("init", other)
    ok("add", other, ip, mp, "--name", IMAGE)
    ok("import-labels", other, tmp_path / "exported.csv")
    info = ok("info", other)
    assert f"{CLASSES[0]} (key 1, 6 labels)" in info and f"{CLASSES[1]} (key 2, 6 labels)" in info

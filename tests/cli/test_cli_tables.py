"""`svetlana measure` end to end: the CSV a biologist opens, and its errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import blobs, run_cli, snapshot, write_pair

IDS = [10 + 7 * k for k in range(12)]


def ok(*args) -> str:
    code, out, err = run_cli("-q", *args)
    assert code == 0, err
    return out


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "p.svetlana"
    ok("init", b, "--classes", "bright,dim")
    for name, seed in (("cells", 0), ("=more", 1)):
        image, labels = blobs(n=12, seed=seed)
        ip, mp = write_pair(tmp_path / "in", name.strip("="), image, labels)
        ok("add", b, ip, mp, "--name", name)
    return b


def test_measure_writes_one_row_per_object_with_documented_columns(bundle, tmp_path):
    out = ok("measure", bundle, "--out", tmp_path / "m")
    assert "24 objects" in out
    with open(tmp_path / "m" / "measurements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    assert list(rows[0])[:4] == ["image", "object", "area", "equivalent_diameter"]
    # An image name a spreadsheet would run as a formula is neutralised.
    assert {r["image"] for r in rows} == {"cells", "'=more"}
    assert [int(r["object"]) for r in rows[:12]] == IDS
    bright = [float(r["ch0_mean"]) for r in rows[:12]]
    assert all(b > d for b, d in zip(bright[0::2], bright[1::2], strict=True))
    assert all(float(r["area"]) == 81 for r in rows)  # discs of radius 5
    with open(tmp_path / "m" / "measurements_columns.csv", newline="") as f:
        units = {r["column"]: r["unit"] for r in csv.DictReader(f)}
    assert units["area"] == "px^2" and units["ch0_mean"] == "intensity"
    assert set(units) == set(rows[0]) - {"image", "object"}
    # Cached in the bundle: measuring again gives the same table.
    assert (bundle / "measurements" / "cells.npz").is_file()
    ok("measure", bundle, "--image", "cells", "--out", tmp_path / "m2")
    with open(tmp_path / "m2" / "measurements.csv", newline="") as f:
        again = list(csv.DictReader(f))
    assert again == rows[:12]


def test_measure_errors_are_one_line_and_write_nothing(bundle, tmp_path):
    before = snapshot(bundle)
    code, out, err = run_cli("measure", bundle, "--image", "nope", "--out", tmp_path / "x")
    assert code == 1 and "no image named 'nope'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("")
    code, _, err = run_cli("measure", bundle, "--out", tmp_path / "file")
    assert code == 1 and "folder" in err
    assert snapshot(bundle) == before
    code, _, err = run_cli("measure", tmp_path / "missing.svetlana", "--out", tmp_path / "y")
    assert code == 1 and not (tmp_path / "y").exists()


def test_measure_values_survive_reading_back(bundle, tmp_path):
    from svetlana.core.objects.measurement_cache import project_measurements
    from svetlana.core.project.bundle import Project

    ok("measure", bundle, "--out", tmp_path / "m")
    with Project.open(bundle, readonly=True) as p:
        m = project_measurements(p, "cells")
    with open(tmp_path / "m" / "measurements.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["image"] == "cells"]
    table = np.array([[float(r[c]) for c in m.names] for r in rows], np.float32)
    np.testing.assert_allclose(table, m.values, rtol=1e-6)


FAST = ["--epochs", "3", "--val-fraction", "0"]


@pytest.fixture
def predicted(bundle, tmp_path) -> Path:
    """The bundle with labels on "cells", a model and its saved predictions."""
    lab = tmp_path / "labels.csv"
    lab.write_text(
        "image,object,class\n"
        + "".join(f"cells,{i},{'bright' if k % 2 == 0 else 'dim'}\n" for k, i in enumerate(IDS))
    )
    ok("import-labels", bundle, lab)
    ok("train", bundle, *FAST)
    ok("predict", bundle)
    return bundle


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_table_final_class_probabilities_measurements_and_summary(predicted, tmp_path):
    # A correction after predicting is what the table shows (the human label comes first).
    fix = tmp_path / "fix.csv"
    fix.write_text("image,object,class\n=more,10,dim\n")
    ok("import-labels", predicted, fix)
    out = ok("export-table", predicted, "--out", tmp_path / "t")
    assert "24 objects" in out
    rows = _rows(tmp_path / "t" / "objects.csv")
    assert len(rows) == 24
    head = list(rows[0])
    assert head[:6] == ["image", "object", "class", "source", "predicted", "confidence"]
    assert head[6:8] == ["p_bright", "p_dim"] and head[8] == "area"
    saved = {  # every CSV neutralises the formula-looking image name the same way
        (r["image"].lstrip("'"), r["object"]): r
        for r in _rows(predicted / "predictions" / "model-1" / "predictions.csv")
    }
    for r in rows:
        s = saved[(r["image"].lstrip("'"), r["object"])]
        assert r["predicted"] == s["predicted"]
        assert float(r["p_bright"]) == pytest.approx(float(s["p_bright"]))
        assert abs(float(r["p_bright"]) + float(r["p_dim"]) - 1) < 1e-4
    labelled = {r["object"]: r for r in rows if r["image"] == "cells"}
    for k, i in enumerate(IDS):
        assert labelled[str(i)]["class"] == ("bright" if k % 2 == 0 else "dim")
        assert labelled[str(i)]["source"] == "import"
    corrected = next(r for r in rows if r["image"] == "'=more" and r["object"] == "10")
    assert corrected["class"] == "dim" and corrected["source"] == "import"
    others = [r for r in rows if r["image"] == "'=more" and r["object"] != "10"]
    assert all(r["source"] == "model" and r["class"] == r["predicted"] for r in others)

    summary = _rows(tmp_path / "t" / "summary.csv")
    assert [(s["image"], s["class"]) for s in summary] == [
        ("cells", "bright"), ("cells", "dim"), ("'=more", "bright"), ("'=more", "dim")
    ]  # fmt: skip
    for s in summary:
        mine = [r for r in rows if r["image"] == s["image"] and r["class"] == s["class"]]
        assert int(s["count"]) == len(mine)
        assert float(s["fraction"]) == pytest.approx(len(mine) / 12, abs=1e-5)
        if mine:
            mean = np.mean([float(r["ch0_mean"]) for r in mine])
            assert float(s["mean_ch0_mean"]) == pytest.approx(mean, rel=1e-5)
    assert "mean_area" in summary[0]
    # A chosen summary measurement; an unknown one is refused before anything is written.
    ok("export-table", predicted, "--summary", "solidity", "--out", tmp_path / "t2")
    assert list(_rows(tmp_path / "t2" / "summary.csv")[0])[4:] == ["mean_solidity"]
    code, _, err = run_cli("export-table", predicted, "--summary", "nope", "--out", tmp_path / "x")
    assert code == 1 and "no measurement named 'nope'" in err and not (tmp_path / "x").exists()


def test_export_table_without_saved_predictions_predicts_now_saying_so(bundle, tmp_path):
    lab = tmp_path / "labels.csv"
    lab.write_text("image,object,class\ncells,10,bright\ncells,17,dim\n")
    ok("import-labels", bundle, lab)
    # No model yet: labels only.
    ok("export-table", bundle, "--out", tmp_path / "t")
    rows = _rows(tmp_path / "t" / "objects.csv")
    assert [r["class"] for r in rows[:2]] == ["bright", "dim"] and rows[2]["class"] == ""
    assert "p_bright" not in rows[0]
    assert {s["class"] for s in _rows(tmp_path / "t" / "summary.csv")} == {
        "bright", "dim", "unclassified"
    }  # fmt: skip
    ok("train", bundle, *FAST)
    out = ok("export-table", bundle, "--out", tmp_path / "t3")
    assert "note: model-1 has no current saved predictions" in out and "predicted them now" in out
    rows = _rows(tmp_path / "t3" / "objects.csv")
    assert all(r["predicted"] in ("bright", "dim") and r["p_bright"] for r in rows)
    assert not (bundle / "predictions" / "model-1").exists()  # nothing saved behind the user


def test_export_objects_geojson_for_qupath(predicted, tmp_path):
    import json

    shapely = pytest.importorskip("shapely.geometry")
    out = ok("export-objects", predicted, "--out", tmp_path / "g")
    assert "24 objects" in out
    doc = json.loads((tmp_path / "g" / "cells.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    feats = doc["features"]
    assert sorted(int(f["properties"]["name"]) for f in feats) == IDS  # every object once
    table = {r["object"]: r for r in _rows(predicted / "predictions" / "model-1" / "predictions.csv")
             if r["image"] == "cells"}  # fmt: skip
    for f in feats:
        props = f["properties"]
        assert props["objectType"] == "detection"
        obj = props["name"]
        assert props["classification"]["name"] == table[obj]["class"]
        assert len(props["classification"]["color"]) == 3
        meas = props["measurements"]
        assert meas["object"] == int(obj) and meas["area"] == 81
        assert meas["p_bright"] == pytest.approx(float(table[obj]["p_bright"]), abs=1e-5)
        poly = shapely.shape(f["geometry"])
        assert poly.is_valid and poly.area == meas["area"]  # along the pixel edges
        cy, cx = float(table[obj]["centroid_y"]), float(table[obj]["centroid_x"])
        # QuPath's pixel coordinates: pixel (y, x) is the square [x, x+1) x [y, y+1).
        assert poly.centroid.x == pytest.approx(cx + 0.5, abs=0.1)
        assert poly.centroid.y == pytest.approx(cy + 0.5, abs=0.1)
    assert (tmp_path / "g" / "_more.geojson").is_file()


def test_text_cells_read_back_as_written_and_never_run_as_formulas():
    from svetlana.core.io.csvsafe import restore
    from svetlana.core.usecases.export_table import text_cell

    values = ['a,"b"', "=SUM(A1)", "line\nbreak", "-x", "plain"]
    line = ",".join(text_cell(v) for v in values) + "\n"
    back = next(csv.reader([line]))
    assert [restore(b) for b in back] == values
    assert back[1].startswith("'") and back[3].startswith("'")

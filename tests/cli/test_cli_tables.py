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
    from svetlana.core.measurements import project_measurements
    from svetlana.core.project import Project

    ok("measure", bundle, "--out", tmp_path / "m")
    with Project.open(bundle, readonly=True) as p:
        m = project_measurements(p, "cells")
    with open(tmp_path / "m" / "measurements.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["image"] == "cells"]
    table = np.array([[float(r[c]) for c in m.names] for r in rows], np.float32)
    np.testing.assert_allclose(table, m.values, rtol=1e-6)

"""`svetlana export-mask / export-patches / export-model` end to end, and their errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import blobs, run_cli, snapshot, write_pair

FAST = ["--arch", "minimal", "--epochs", "3", "--val-fraction", "0"]
IDS = [10 + 7 * k for k in range(12)]


def run(*args) -> tuple[int, str, str]:
    return run_cli("-q", *args)


def ok(*args) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


@pytest.fixture
def bundle(tmp_path) -> Path:
    """Two 2D images (uint16 masks), the first fully labelled bright/dim; no model yet."""
    b = tmp_path / "p.svetlana"
    ok("init", b, "--classes", "bright,dim")
    for name, seed in (("cells", 0), ("more", 1)):
        image, labels = blobs(n=12, seed=seed)
        ip, mp = write_pair(tmp_path / "in", name, image, labels.astype(np.uint16))
        ok("add", b, ip, mp)
    lab = tmp_path / "labels.csv"
    lab.write_text(
        "image,object,class\n"
        + "".join(f"cells,{i},{'bright' if k % 2 == 0 else 'dim'}\n" for k, i in enumerate(IDS))
    )
    ok("import-labels", b, lab)
    return b


def test_export_mask_of_several_images_to_one_folder(bundle, tmp_path):
    code, _, err = run("export-mask", bundle, "--keep", "bright", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1 and "no trained model" in err
    assert not (tmp_path / "o").exists()
    ok("train", bundle, *FAST)
    before = snapshot(bundle)
    out_dir = tmp_path / "o"
    out = ok("export-mask", bundle, "--keep", "bright", "--out", out_dir, "--per-class")
    assert snapshot(bundle) == before  # an export never changes the project
    rows = list(csv.DictReader((out_dir / "filter_summary.csv").open()))
    assert [r["image"] for r in rows] == ["cells", "more"]
    assert {p.name for p in out_dir.iterdir()} == {
        "filter_summary.csv",
        "run.json",
        *(f"{im}_{s}.tif" for im in ("cells", "more") for s in ("filtered", "bright", "dim")),
    }
    for r in rows:
        assert f"{r['image']}: kept {r['kept']}, removed {r['removed']} of 12 objects" in out
        original = tifffile.imread(tmp_path / "in" / f"{r['image']}_masks.tif")
        filtered = tifffile.imread(out_dir / f"{r['image']}_filtered.tif")
        bright = tifffile.imread(out_dir / f"{r['image']}_bright.tif")
        assert filtered.dtype == np.uint16 and np.array_equal(filtered, bright)
        kept = set(np.unique(filtered)) - {0}
        assert len(kept) == int(r["kept"]) == int(r["n_bright"]) and kept <= set(IDS)
        inside = filtered > 0
        assert np.array_equal(filtered[inside], original[inside])
        # every object the filter removed is background now
        assert not np.isin(filtered, sorted(set(IDS) - kept)).any()
    # --image restricts, and the saved predictions of `svetlana predict` are reused
    ok("predict", bundle)
    one = tmp_path / "one"
    ok("export-mask", bundle, "--keep", "dim", "--image", "more", "--out", one)
    assert {p.name for p in one.iterdir()} == {
        "filter_summary.csv",
        "more_filtered.tif",
        "run.json",
    }
    saved = {
        int(r["object"])
        for r in csv.DictReader((bundle / "predictions" / "model-1" / "predictions.csv").open())
        if r["image"] == "more" and r["class"] == "dim"
    }
    assert set(np.unique(tifffile.imread(one / "more_filtered.tif"))) - {0} == saved


ERRORS = [
    (["--keep", "alive"], "unknown class 'alive'; the model's classes are bright, dim"),
    ([], "choose the classes to keep"),
    (["--keep", "dim", "--model", "nope"], "no model named 'nope'"),
    (["--keep", "dim", "--image", "nope"], "no image named 'nope'"),
    (["--keep", "dim", "--min-confidence", "2"], "between 0 and 1"),
]


def test_export_mask_errors_are_one_line_and_write_nothing(bundle, tmp_path):
    ok("train", bundle, *FAST)
    for args, message in ERRORS:
        code, out, err = run("export-mask", bundle, *args, "--out", tmp_path / "o")
        assert code == 1 and out == "" and err.count("\n") == 1, (args, err)
        assert message in err, (args, err)
        assert not (tmp_path / "o").exists()


def test_export_patches_and_model_round_trip(bundle, tmp_path):
    from svetlana.core.usecases.export_patches import load_patches

    out = ok(
        "export-patches", bundle, "--out", tmp_path / "patches", "--patch-size", "16", "--tiff"
    )
    assert "12 patches of 16x16 px (bright 6, dim 6)" in out
    back = load_patches(tmp_path / "patches")
    assert back.patches.shape == (12, 2, 16, 16) and back.class_names == ("bright", "dim")
    assert len(list((tmp_path / "patches" / "bright").glob("cells_*.tif"))) == 6
    code, _, err = run("export-model", bundle, "--out", tmp_path / "m")
    assert code == 1 and "no trained model" in err and not (tmp_path / "m").exists()
    ok("train", bundle, *FAST)
    ok("export-model", bundle, "--out", tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "model.onnx",
        "weights.pt",
        "card.json",
        "README.txt",
        "run.json",  # marks the folder as this command's, so a rerun may replace it whole
    }
    # Fine-tune from the exported weights, then predict with the result.
    out = ok("train", bundle, *FAST, "--arch", tmp_path / "m" / "weights.pt", "--name", "tuned")
    assert out.strip().splitlines()[-1] == "tuned"
    ok("export-mask", bundle, "--model", "tuned", "--keep", "dim", "--out", tmp_path / "t")
    assert (tmp_path / "t" / "cells_filtered.tif").exists()

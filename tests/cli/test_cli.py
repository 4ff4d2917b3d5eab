"""The command line end to end on generated 2D, multichannel and 3D scenes, and on bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import blobs, ok, run_cli, snapshot, write_pair

FAST = ["--arch", "minimal", "--epochs", "8", "--val-fraction", "0.25"]


run = run_cli


def label_csv(path: Path, image: str, ids, classes) -> Path:
    path.write_text(
        "image,object,class\n"
        + "".join(f"{image},{i},{c}\n" for i, c in zip(ids, classes, strict=True))
    )
    return path


@pytest.fixture
def project_2d(tmp_path):
    """A bundle with one 2D image, all 12 objects labelled bright/dim."""
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, ip, mp)
    ids = [10 + 7 * k for k in range(12)]
    ok(
        "import-labels",
        bundle,
        label_csv(
            tmp_path / "l.csv", "cells", ids, ["bright" if k % 2 == 0 else "dim" for k in range(12)]
        ),
    )
    return bundle


def test_full_loop_2d(tmp_path, project_2d):
    out = ok("train", project_2d, *FAST, "--seed", "1")
    model = out.strip().splitlines()[-1]
    assert model == "model-1"
    card = json.loads((project_2d / "models" / model / "card.json").read_text())
    n_val = card["metrics"]["n_val"]
    # the estimate says what it rests on and how uncertain it is
    assert f"on {n_val} validation object" in out and "95 % interval" in out
    assert card["classes"] == ["bright", "dim"] and card["training"]["seed"] == 1
    for key in (
        "architecture",
        "patch_size",
        "normalisation",
        "channels",
        "metrics",
        "versions",
        "created",
    ):
        assert key in card
    dest = tmp_path / "out"
    ok("predict", project_2d, "--out", dest)
    rows = list(csv.DictReader((dest / "predictions.csv").open()))
    assert len(rows) == 12
    assert {
        "image",
        "object",
        "class",
        "confidence",
        "p_bright",
        "p_dim",
        "area",
        "centroid_y",
        "bbox_x1",
    } <= set(rows[0])
    cm = tifffile.imread(dest / "cells_classes.tif")
    labels = tifffile.imread(tmp_path / "in" / "cells_masks.tif")
    assert cm.shape == labels.shape
    assert set(np.unique(cm)) <= {0, 1, 2} and (cm[labels == 0] == 0).all()
    for r in rows:  # the class mask says what the CSV says
        k = ["bright", "dim"].index(r["class"]) + 1
        assert (cm[labels == int(r["object"])] == k).all()
    # predict without --out writes into the bundle
    ok("predict", project_2d)
    assert (project_2d / "predictions" / "model-1" / "predictions.csv").exists()
    info = ok("info", project_2d)
    assert "cells" in info and "model-1" in info and "12 labelled" in info
    ok("export-labels", project_2d, tmp_path / "labels_out.csv")
    assert len((tmp_path / "labels_out.csv").read_text().splitlines()) == 13


def test_same_seed_same_model(project_2d):
    ok("train", project_2d, *FAST, "--seed", "3", "--name", "a")
    ok("train", project_2d, *FAST, "--seed", "3", "--name", "b")
    wa = (project_2d / "models" / "a" / "weights.pt").read_bytes()
    wb = (project_2d / "models" / "b" / "weights.pt").read_bytes()
    import torch

    sa = torch.load(io.BytesIO(wa), weights_only=True)
    sb = torch.load(io.BytesIO(wb), weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_multichannel_and_3d(tmp_path):
    # 2-channel 2D image stored YXC: the class is in the second channel only
    image, labels = blobs(n=10, seed=1)
    two = np.stack([np.full_like(image, 300), image], axis=-1)
    ip, mp = write_pair(tmp_path / "mc", "mc", two, labels)
    b = tmp_path / "mc.svetlana"
    ok("init", b)
    out = ok("add", b, ip, mp)
    assert "2 channels" in out
    ids = [10 + 7 * k for k in range(10)]
    ok(
        "import-labels",
        b,
        label_csv(
            tmp_path / "mc.csv", "mc", ids, ["on" if k % 2 == 0 else "off" for k in range(10)]
        ),
    )
    ok("train", b, *FAST)
    ok("predict", b, "--out", tmp_path / "mc_out")
    assert len(list(csv.DictReader((tmp_path / "mc_out" / "predictions.csv").open()))) == 10

    # 3D: 8 slices of the 2D scene, anisotropic spacing given on the command line
    vol = np.repeat(image[None], 8, axis=0)
    vlab = np.repeat(labels[None], 8, axis=0)
    vlab[:2] = 0
    ip, mp = write_pair(tmp_path / "v", "vol", vol, vlab)
    b3 = tmp_path / "v.svetlana"
    ok("init", b3)
    out = ok("add", b3, ip, mp, "--spacing", "2,0.5,0.5")
    assert "8x96x96" in out
    ok(
        "import-labels",
        b3,
        label_csv(tmp_path / "v.csv", "vol", ids, ["a" if k % 2 == 0 else "b" for k in range(10)]),
    )
    ok("train", b3, *FAST)
    ok("predict", b3, "--out", tmp_path / "v_out")
    assert tifffile.imread(tmp_path / "v_out" / "vol_classes.tif").shape == (8, 96, 96)
    rows = list(csv.DictReader((tmp_path / "v_out" / "predictions.csv").open()))
    assert rows[0]["centroid_z"] != ""


def test_predict_a_folder_outside_the_project(tmp_path, project_2d):
    ok("train", project_2d, *FAST)
    image, labels = blobs(n=9, seed=5)
    folder = tmp_path / "new"
    write_pair(folder, "plate1", image, labels)
    before = snapshot(folder)
    ok("predict", project_2d, "--folder", folder, "--out", tmp_path / "new_out")
    assert snapshot(folder) == before
    rows = list(csv.DictReader((tmp_path / "new_out" / "predictions.csv").open()))
    assert {r["image"] for r in rows} == {"plate1"} and len(rows) == 9


# ---- bad input: one line naming the problem, exit 1, nothing written ----------------------


def _bad(bundle: Path, *args, expect: str) -> str:
    before = snapshot(bundle)
    code, out, err = run(*args)
    assert code == 1, (out, err)
    assert err.startswith("error: ") and expect in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(bundle) == before
    return err


def test_bad_inputs(tmp_path, project_2d):
    image, labels = blobs(n=4)
    d = tmp_path / "bad"
    d.mkdir()
    tifffile.imwrite(d / "small.tif", image[:50])
    _bad(
        project_2d,
        "add",
        project_2d,
        d / "small.tif",
        tmp_path / "in" / "cells_masks.tif",
        "--name",
        "x",
        expect="small.tif",
    )
    tifffile.imwrite(d / "float.tif", labels.astype(np.float32) + 0.5)
    _bad(
        project_2d,
        "add",
        project_2d,
        tmp_path / "in" / "cells.tif",
        d / "float.tif",
        "--name",
        "x",
        expect="float.tif",
    )
    tifffile.imwrite(d / "neg.tif", -labels)
    _bad(
        project_2d,
        "add",
        project_2d,
        tmp_path / "in" / "cells.tif",
        d / "neg.tif",
        "--name",
        "x",
        expect="negative",
    )
    tifffile.imwrite(d / "empty.tif", np.zeros_like(labels))
    _bad(
        project_2d,
        "add",
        project_2d,
        tmp_path / "in" / "cells.tif",
        d / "empty.tif",
        "--name",
        "x",
        expect="no objects",
    )
    good = (tmp_path / "in" / "cells.tif").read_bytes()
    (d / "trunc.tif").write_bytes(good[: len(good) // 3])
    _bad(
        project_2d,
        "add",
        project_2d,
        d / "trunc.tif",
        tmp_path / "in" / "cells_masks.tif",
        "--name",
        "x",
        expect="trunc.tif",
    )
    np.save(d / "one_d.npy", np.arange(10))
    _bad(
        project_2d,
        "add",
        project_2d,
        d / "one_d.npy",
        d / "one_d.npy",
        "--name",
        "x",
        expect="one_d.npy",
    )
    _bad(
        project_2d,
        "add",
        project_2d,
        tmp_path / "in" / "cells.tif",
        tmp_path / "in" / "cells_masks.tif",
        expect="already has an image named 'cells'",
    )
    _bad(
        project_2d,
        "import-labels",
        project_2d,
        label_csv(tmp_path / "u1.csv", "nope", [10], ["bright"]),
        expect="unknown image",
    )
    _bad(
        project_2d,
        "import-labels",
        project_2d,
        label_csv(tmp_path / "u2.csv", "cells", [10, 11], ["bright", "dim"]),
        expect="no object with id 11",
    )
    (tmp_path / "u3.csv").write_bytes(b"\x00\x01garbage")
    _bad(project_2d, "import-labels", project_2d, tmp_path / "u3.csv", expect="u3.csv")
    _bad(project_2d, "predict", project_2d, expect="no trained model")
    _bad(
        project_2d,
        "train",
        project_2d,
        "--arch",
        "nonsense",
        expect="--arch must be auto, forest, one of",
    )


def test_single_class_labelled_is_refused(tmp_path):
    image, labels = blobs(n=6)
    ip, mp = write_pair(tmp_path / "in", "c", image, labels)
    b = tmp_path / "s.svetlana"
    ok("init", b, "--classes", "a,b")
    ok("add", b, ip, mp)
    ok("import-labels", b, label_csv(tmp_path / "l.csv", "c", [10, 17], ["a", "a"]))
    _bad(b, "train", b, *FAST, expect="only one class is labelled")


def test_newer_bundle_and_locked_bundle(tmp_path, project_2d):
    m = json.loads((project_2d / "project.json").read_text())
    newer = tmp_path / "newer.svetlana"
    shutil.copytree(project_2d, newer)
    m["schema_version"] = 42
    (newer / "project.json").write_text(json.dumps(m))
    _bad(newer, "info", newer, expect="newer Svetlana")
    from svetlana.core.project.bundle import Project

    with Project.open(project_2d):
        code = subprocess.run(
            [sys.executable, "-m", "svetlana", "train", str(project_2d)],
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        assert code.returncode == 1 and "open in another Svetlana" in code.stderr
        assert "Traceback" not in code.stderr


def test_stardist_real_data_2d_and_3d(tmp_path, stardist_dir):
    for dim, n_label in (("2d", 40), ("3d", 30)):
        b = tmp_path / f"sd{dim}.svetlana"
        ok("init", b, "--classes", "big,small")
        ok("add", b, stardist_dir / f"img{dim}.tif", stardist_dir / f"mask{dim}.tif")
        labels = tifffile.imread(stardist_dir / f"mask{dim}.tif")
        ids, areas = np.unique(labels[labels > 0], return_counts=True)
        med = np.median(areas)
        pick = ids[:n_label]
        cls = ["big" if areas[list(ids).index(i)] > med else "small" for i in pick]
        ok("import-labels", b, label_csv(tmp_path / f"{dim}.csv", f"img{dim}", pick, cls))
        ok("train", b, "--epochs", "5")
        ok("predict", b, "--out", tmp_path / f"out{dim}")
        rows = list(csv.DictReader((tmp_path / f"out{dim}" / "predictions.csv").open()))
        assert sorted(int(r["object"]) for r in rows) == sorted(ids.tolist())

"""`svetlana train --arch auto|forest`, forest models through predict/info/exports, old bundles."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import blobs, ok, run_cli, write_pair

TINY_CNN = ["--epochs", "4"]


def _labels(path: Path, rows) -> Path:
    path.write_text("image,object,class\n" + "".join(f"{i},{o},{c}\n" for i, o, c in rows))
    return path


@pytest.fixture
def two_images(tmp_path) -> Path:
    """Two images of 12 discs each, bright (even) or dim (odd), every object labelled."""
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    rows = []
    for k, name in enumerate(("left", "right")):
        image, labels = blobs(n=12, seed=k)
        ok("add", bundle, *write_pair(tmp_path / "in", name, image, labels))
        rows += [(name, 10 + 7 * j, "bright" if j % 2 == 0 else "dim") for j in range(12)]
    ok("import-labels", bundle, _labels(tmp_path / "l.csv", rows))
    return bundle


def _card(bundle: Path, model: str) -> dict:
    return json.loads((bundle / "models" / model / "card.json").read_text())


def test_auto_is_the_default_prints_the_comparison_and_keeps_the_forest(two_images):
    out = ok("train", two_images, *TINY_CNN)
    assert "candidates (2-fold StratifiedGroupKFold, grouped by image" in out
    assert "* forest     1.000 ± 0.000 over 2 folds" in out
    assert "chosen: forest" in out and "most important measurements:" in out
    assert "forest, 24 labels, accuracy 100 % cross-validated on 24 labelled objects" in out
    model = out.strip().splitlines()[-1]
    card = _card(two_images, model)
    assert card["kind"] == "forest" and card["architecture"] == "forest"
    assert (two_images / "models" / model / "forest.npz").is_file()
    assert not (two_images / "models" / model / "weights.pt").exists()
    sel = card["selection"]
    assert sel["mode"] == "auto" and sel["chosen"] == "forest"
    assert sel["cv"] == {"method": "StratifiedGroupKFold", "folds": 2, "grouped_by_image": True}
    names = [c["name"] for c in sel["candidates"]]
    assert names[0] == "forest" and len(names) == 2  # the default CNN is the other candidate
    assert all("balanced_accuracy" in c and "spread" in c for c in sel["candidates"])
    assert 0 < len(card["importances"]) <= 20 and card["importances"][0]["importance"] > 0
    assert len(card["measurements"]) >= len(card["importances"])
    assert {"scikit-learn", "skops"} <= set(card["versions"])
    m = card["metrics"]
    assert m["estimate"] == "cross-validation" and m["n_val"] == 24
    assert np.asarray(m["confusion"]).sum() == 24  # out-of-fold: every label judged once


def test_forest_model_predicts_exports_and_shows_in_info(two_images, tmp_path):
    model = ok("train", two_images, "--arch", "forest").strip().splitlines()[-1]
    assert _card(two_images, model)["selection"]["mode"] == "forced"
    # Before any saved prediction: the export classifies the objects itself.
    ok("export-mask", two_images, "--keep", "bright", "--out", tmp_path / "masks")
    assert list((tmp_path / "masks").iterdir())
    out = ok("predict", two_images)
    assert "left: bright 6, dim 6" in out and "right: bright 6, dim 6" in out
    with open(two_images / "predictions" / model / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and all(r["class"] == r["label"] for r in rows)
    info = ok("info", two_images)
    assert f"{model}: forest, 24 labels, accuracy 100 % cross-validated on 24 labelled" in info


def test_a_forest_predicts_a_folder_outside_the_project(two_images, tmp_path):
    ok("train", two_images, "--arch", "forest")
    image, labels = blobs(n=12, seed=5)
    write_pair(tmp_path / "new", "fresh", image, labels)
    out = ok("predict", two_images, "--folder", tmp_path / "new", "--out", tmp_path / "res")
    assert "fresh: bright 6, dim 6" in out


def test_forced_cnn_and_bad_arch(two_images):
    out = ok("train", two_images, "--arch", "minimal", *TINY_CNN)
    model = out.strip().splitlines()[-1]
    card = _card(two_images, model)
    assert card["kind"] == "cnn" and card["architecture"] == "minimal"
    assert "candidates" not in out and "validation object" in out
    code, _, err = run_cli("train", two_images, "--arch", "nonsense")
    assert code == 1 and "--arch must be auto, forest" in err
    code, _, err = run_cli("train", two_images, "--time-budget", "-3")
    assert code == 1 and "--time-budget" in err


def test_a_bundle_of_the_previous_version_still_opens_and_predicts(two_images):
    """A CNN card as the previous version wrote it (no kind, no selection, no estimate)."""
    model = ok("train", two_images, "--arch", "minimal", *TINY_CNN).strip().splitlines()[-1]
    path = two_images / "models" / model / "card.json"
    card = json.loads(path.read_text())
    for key in ("kind", "selection"):
        card.pop(key)
    card["metrics"].pop("estimate")
    path.write_text(json.dumps(card))
    info = ok("info", two_images)
    assert f"{model}: minimal, 24 labels, accuracy" in info and "validation object" in info
    assert "left:" in ok("predict", two_images, "--model", model)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_predict_refuses_a_forest_file_replaced_by_a_code_pickle(two_images, tmp_path):
    import pickle

    from tests.conftest import snapshot

    model = ok("train", two_images, "--arch", "forest").strip().splitlines()[-1]
    marker = tmp_path / "PWNED"
    (two_images / "models" / model / "forest.npz").write_bytes(pickle.dumps(_Payload(marker)))
    before = snapshot(two_images)
    code, _, err = run_cli("predict", two_images)
    assert code == 1 and "refused" in err and "Traceback" not in err
    assert not marker.exists() and snapshot(two_images) == before

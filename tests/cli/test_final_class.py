"""Issue 16: what leaves Svetlana is the user's class when there is one (exports, counts, run.json)."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import tifffile

from svetlana.core.project.bundle import Project
from tests.conftest import blobs, ok, write_pair

FAST = ("--epochs", "2", "--val-fraction", "0", "--seed", "0", "--threads", "1")


def _rows(path) -> dict[int, dict]:
    with open(path, newline="") as f:
        return {int(r["object"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def corrected(tmp_path_factory):
    """100 objects, a weak model, then 100 human labels of which many disagree with it."""
    tmp = tmp_path_factory.mktemp("final")
    image, labels = blobs(shape=(200, 200), n=100)
    ip, mp = write_pair(tmp / "in", "cells", image, labels)
    bundle = tmp / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, ip, mp)
    ids = sorted(int(i) for i in np.unique(labels) if i)
    truth = {i: "bright" if k % 2 == 0 else "dim" for k, i in enumerate(ids)}
    (tmp / "first.csv").write_text(
        "image,object,class\n" + "".join(f"cells,{i},{truth[i]}\n" for i in ids[:8])
    )
    ok("import-labels", bundle, tmp / "first.csv")
    ok("train", bundle, *FAST)
    ok("predict", bundle, "--out", tmp / "before")
    model_said = {i: r["class"] for i, r in _rows(tmp / "before" / "predictions.csv").items()}
    other = {"bright": "dim", "dim": "bright"}
    # 100 human labels: the first 60 contradict the model (imported), 20 corrections that
    # contradict it too, 20 manual labels that agree with it.
    human: dict[int, tuple[str, str]] = {}
    for k, i in enumerate(ids):
        if k < 60:
            human[i] = (other[model_said[i]], "import")
        elif k < 80:
            human[i] = (other[model_said[i]], "correction")
        else:
            human[i] = (model_said[i], "manual")
    (tmp / "labels.csv").write_text(
        "image,object,class\n"
        + "".join(f"cells,{i},{c}\n" for i, (c, s) in human.items() if s == "import")
    )
    ok("import-labels", bundle, tmp / "labels.csv")
    with Project.open(bundle) as p:
        for source in ("correction", "manual"):
            p.annotations.apply_labels(
                [("cells", i, c) for i, (c, s) in human.items() if s == source], source=source
            )
        p.save()
    return {"tmp": tmp, "bundle": bundle, "human": human, "model_said": model_said}


def test_predictions_csv_and_class_mask_carry_the_human_class(corrected):
    tmp, bundle, human = corrected["tmp"], corrected["bundle"], corrected["human"]
    out = ok("predict", bundle, "--out", tmp / "after")
    rows = _rows(tmp / "after" / "predictions.csv")
    assert len(human) == 100 and len(rows) == 100
    for i, (cls, source) in human.items():
        r = rows[i]
        assert (r["class"], r["source"], r["label"]) == (cls, source, cls)
        assert r["predicted"] == corrected["model_said"][i]  # the model's own answer stays
        assert r["model"] == "model-1"
    disagree = sum(rows[i]["class"] != rows[i]["predicted"] for i in human)
    assert disagree == 80
    # The class mask holds the same final class (value = position in run.json's classes + 1).
    run = json.loads((tmp / "after" / "run.json").read_text())
    labels = Project.open(bundle, readonly=True)
    with labels as p:
        mask = p.load("cells").labels
    cm = tifffile.imread(tmp / "after" / "cells_classes.tif")
    for i, r in rows.items():
        values = np.unique(cm[mask == i])
        assert values.tolist() == [run["classes"].index(r["class"]) + 1]
    # The counts the CLI prints are the final ones.
    n_bright = sum(r["class"] == "bright" for r in rows.values())
    assert f"bright {n_bright}" in out and f"dim {100 - n_bright}" in out


def test_run_json_names_the_model_and_its_card(corrected):
    tmp, bundle = corrected["tmp"], corrected["bundle"]
    run = json.loads((tmp / "after" / "run.json").read_text())
    card = (bundle / "models" / "model-1" / "card.json").read_bytes()
    assert run["model"] == "model-1"
    assert run["model_card_sha256"] == hashlib.sha256(card).hexdigest()
    assert run["images"] == ["cells"] and run["classes"] == ["bright", "dim"]
    assert run["svetlana_version"] and run["date"]
    # The bundle's own prediction folder has one too.
    ok("predict", bundle)
    inside = json.loads((bundle / "predictions" / "model-1" / "run.json").read_text())
    assert inside["model_card_sha256"] == run["model_card_sha256"]


def test_keep_these_classes_keeps_by_the_human_class(corrected):
    tmp, bundle, human = corrected["tmp"], corrected["bundle"], corrected["human"]
    ok("export-mask", bundle, "--keep", "bright", "--per-class", "--out", tmp / "keep")
    with Project.open(bundle, readonly=True) as p:
        mask = p.load("cells").labels
    kept = set(np.unique(tifffile.imread(tmp / "keep" / "cells_filtered.tif")).tolist()) - {0}
    dim = set(np.unique(tifffile.imread(tmp / "keep" / "cells_dim.tif")).tolist()) - {0}
    for i, (cls, _) in human.items():
        assert (i in kept) == (cls == "bright") and (i in dim) == (cls == "dim")
    assert kept | dim == set(np.unique(mask).tolist()) - {0}
    summary = next(csv.DictReader((tmp / "keep" / "filter_summary.csv").open()))
    assert int(summary["n_bright"]) == sum(c == "bright" for c, _ in human.values())

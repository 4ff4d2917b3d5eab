"""kill -9 while labelling, saving a model or writing predictions; disk full and permission denied."""

from __future__ import annotations

import csv
import errno
import os
import random
import time

import numpy as np
import pytest
import tifffile

from svetlana.core.errors import ProjectError, ResourceError
from svetlana.core.project.bundle import Project
from tests.conftest import blobs, write_pair
from tests.robustness.helpers import (
    IDS,
    assert_clear_error,
    child,
    kill9,
    make_bundle,
    run_cli,
    snapshot,
    wait_for,
)

LABEL_CHILD = """
import sys
from svetlana.core.project.bundle import Project
p = Project.open(sys.argv[1])
k = int(sys.argv[2])
print("ready", flush=True)
while True:
    cls = "bright" if k % 2 else "dim"
    p.annotations.apply_labels([("cells", k, cls)])
    print(f"accepted {k} {cls}", flush=True)
    if k % 17 == 0:
        p.save()  # compaction: CSV, manifest, journal truncation, all killable
    k += 1
"""


@pytest.mark.timeout(120)
def test_kill_while_labelling_loses_no_accepted_label(tmp_path):
    bundle = make_bundle(tmp_path)
    rng = random.Random(5)
    accepted: dict[int, str] = {}
    for run, after in enumerate([1, 3, 10, 25, 60, 120]):
        proc = child(LABEL_CHILD, bundle, 100_000 * (run + 1))
        lines = wait_for(proc, "accepted", count=after)
        time.sleep(rng.uniform(0, 0.02))
        lines += kill9(proc)
        for line in lines:
            if line.startswith("accepted"):
                _, k, cls = line.split()
                accepted[int(k)] = cls
        # The dead child's lock is stale: reopening recovers it and replays the journal.
        with Project.open(bundle) as p:
            for k, cls in accepted.items():
                lab = p.annotations.get("cells", k)
                assert lab is not None and lab.class_name == cls, (run, k)
            for k, o in enumerate(IDS):  # the labels from before any crash
                assert p.annotations.get("cells", o).class_name == ("bright", "dim")[k % 2]
    assert len(accepted) >= 1 + 3 + 10 + 25 + 60 + 120


MODEL_CHILD = """
import sys
from svetlana.core.project.bundle import Project
from svetlana.core.ml.training import TrainingConfig, TrainingResult
from svetlana.core.usecases.train import finish_training, prepare_training
p = Project.open(sys.argv[1])
cfg = TrainingConfig(arch="resnet18")  # ~45 MB of weights: the save takes a while
print("ready", flush=True)
while True:
    job = prepare_training(p, cfg)
    from svetlana.core.ml.models import build_model
    model = build_model("resnet18", job.data.patches.shape[1], 2, 2)
    result = TrainingResult(model, (), {"accuracy": 0.5}, "cpu", 0.0, 1)
    print(f"saving {job.model_id}", flush=True)
    finish_training(p, job, result)
    print(f"saved {job.model_id}", flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_while_saving_a_model_never_leaves_a_half_model(tmp_path):
    from svetlana.core.usecases.predict import load_model

    pytest.importorskip("torch")
    bundle = make_bundle(tmp_path)
    saved: set[str] = set()
    registered = 0
    checked: set[str] = set()
    for run, delay in enumerate([0.0, 0.1, 0.3, 0.6]):
        proc = child(MODEL_CHILD, bundle)
        lines = wait_for(proc, "saving", count=1 + run % 2)
        time.sleep(delay)
        lines += kill9(proc)
        saved |= {ln.split()[1] for ln in lines if ln.startswith("saved")}
        with Project.open(bundle) as p:
            ids = p.models.ids()
            assert saved <= set(ids)
            registered += len(ids) > 0
            for mid in set(ids) - checked:  # every registered model is whole and loads
                checked.add(mid)
                model, card = load_model(p, mid)
                assert card["id"] == mid and card["architecture"] == "resnet18"
            # A folder the crash left unregistered is never offered as a model.
            models = bundle / "models"
            for folder in models.iterdir() if models.exists() else ():
                if folder.name not in ids:
                    with pytest.raises(Exception, match="no model named"):
                        p.models.resolve(folder.name)
    assert registered  # at least one run got as far as a registered model


PREDICT_CHILD = """
import sys
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.predict import predict_project
p = Project.open(sys.argv[1])
print("ready", flush=True)
k = 0
while True:
    predict_project(p, "model-1", device="cpu")
    k += 1
    print(f"predicted {k}", flush=True)
"""


def _check_predictions(folder, n_images: int) -> None:
    files = sorted(f.name for f in folder.iterdir())
    assert "predictions.csv" in files, files
    with open(folder / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 * n_images
    assert {r["class"] for r in rows} <= {"bright", "dim"}
    masks = [f for f in files if f.endswith("_classes.tif")]
    assert len(masks) == n_images
    for m in masks:
        cm = tifffile.imread(folder / m)
        assert cm.shape == (96, 96) and set(np.unique(cm)) <= {0, 1, 2}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_while_writing_predictions_leaves_complete_or_previous(tmp_path):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import train_project

    bundle = make_bundle(tmp_path, n_images=3)
    with Project.open(bundle) as p:
        train_project(p, TrainingConfig(epochs=1, val_fraction=0.0, device="cpu"))
    final = bundle / "predictions" / "model-1"
    rng = random.Random(1)
    seen_complete = False
    for run in range(4):
        proc = child(PREDICT_CHILD, bundle)
        wait_for(proc, "predicted" if run % 2 else "ready")
        time.sleep(rng.uniform(0, 0.3))
        kill9(proc)
        # Only the visible folder counts: hidden temp folders are never read as results.
        if final.exists():
            _check_predictions(final, 3)
            seen_complete = True
        with Project.open(bundle, readonly=True) as p:
            assert p.models.ids() == ["model-1"]
    assert seen_complete


# ---- disk full, permission denied -------------------------------------------------------


def _failing_replace(monkeypatch, code: int, after: int = 0):
    """Make the ``after``-th and later ``os.replace`` calls fail with ``code``."""
    real = os.replace
    calls = {"n": 0}

    def replace(src, dst, *a, **k):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
@pytest.mark.parametrize("after", [0, 1, 2])
def test_add_image_on_full_or_readonly_disk_changes_nothing(tmp_path, monkeypatch, code, after):
    bundle = make_bundle(tmp_path)
    image, labels = blobs(seed=3)
    ip, mp = write_pair(tmp_path / "in2", "more", image, labels)
    before = snapshot(bundle)
    _failing_replace(monkeypatch, code, after)  # 0: image, 1: mask, 2: manifest
    code_, _, err = run_cli("add", bundle, ip, mp)
    monkeypatch.undo()
    assert_clear_error(code_, err)
    assert ("disk is full" in err) if code == errno.ENOSPC else ("permission denied" in err)
    assert "nothing was changed" in err
    assert snapshot(bundle) == before
    with Project.open(bundle, readonly=True) as p:
        assert p.image_names == ("cells",)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_label_on_full_disk_is_refused_and_not_applied(tmp_path, monkeypatch, code):
    bundle = make_bundle(tmp_path)
    before = snapshot(bundle)
    with Project.open(bundle) as p:
        real = os.write

        def write(fd, data):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "write", write)
        with pytest.raises((ResourceError, ProjectError), match="nothing was changed"):
            p.annotations.apply_labels([("cells", IDS[0], "dim")])
        monkeypatch.setattr(os, "write", real)
        assert p.annotations.get("cells", IDS[0]).class_name == "bright"
    assert snapshot(bundle) == before


@pytest.mark.parametrize("after", [0, 1])
def test_save_on_full_disk_keeps_the_previous_files(tmp_path, monkeypatch, after):
    bundle = make_bundle(tmp_path)
    before = snapshot(bundle)
    with Project.open(bundle) as p:
        p.annotations.apply_labels([("cells", IDS[0], "dim")])
        journal = (bundle / "annotations.journal").read_bytes()
        _failing_replace(monkeypatch, errno.ENOSPC, after)  # 0: CSV, 1: manifest
        with pytest.raises(ResourceError, match="disk is full"):
            p.save()
        monkeypatch.undo()
        # The journal still holds the change, so nothing the user did is lost.
        assert (bundle / "annotations.journal").read_bytes() == journal
    with Project.open(bundle, readonly=True) as p:
        assert p.annotations.get("cells", IDS[0]).class_name == "dim"
    del before


@pytest.mark.parametrize("after", [0, 1, 2])
def test_model_save_on_full_disk_leaves_no_model(tmp_path, monkeypatch, after):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import train_project

    bundle = make_bundle(tmp_path)
    before = snapshot(bundle)
    with Project.open(bundle) as p:
        _failing_replace(monkeypatch, errno.ENOSPC, after)  # weights, card, manifest
        with pytest.raises(ResourceError, match="disk is full"):
            train_project(p, TrainingConfig(epochs=1, val_fraction=0.0, device="cpu"))
        monkeypatch.undo()
        assert p.models.ids() == []
    assert snapshot(bundle) == before
    with Project.open(bundle) as p:
        assert p.models.ids() == [] and p.models.new_id() == "model-1"


def test_predictions_on_full_disk_keep_the_previous_ones(tmp_path, monkeypatch):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.predict import predict_project
    from svetlana.core.usecases.train import train_project

    bundle = make_bundle(tmp_path)
    with Project.open(bundle) as p:
        train_project(p, TrainingConfig(epochs=1, val_fraction=0.0, device="cpu"))
        predict_project(p, device="cpu")
    before = snapshot(bundle)
    for after in (0, 1):
        _failing_replace(monkeypatch, errno.ENOSPC, after)
        code, _, err = run_cli("-q", "predict", bundle, "--device", "cpu")
        monkeypatch.undo()
        assert_clear_error(code, err)
        assert "disk is full" in err
        assert snapshot(bundle) == before


def test_readonly_folder_refuses_changes_clearly(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions; the monkeypatched tests cover this")
    bundle = make_bundle(tmp_path)
    before = snapshot(bundle)
    image, labels = blobs(seed=3)
    ip, mp = write_pair(tmp_path / "in2", "more", image, labels)
    os.chmod(bundle, 0o555)
    try:
        code, _, err = run_cli("add", bundle, ip, mp)
    finally:
        os.chmod(bundle, 0o755)
    assert_clear_error(code, err)
    assert snapshot(bundle) == before


def test_a_torn_journal_write_does_not_swallow_the_next_label(tmp_path, monkeypatch):
    bundle = make_bundle(tmp_path)
    with Project.open(bundle) as p:
        real = os.write

        def half_then_full(fd, data):  # the disk fills up in the middle of a line
            real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_full)
        with pytest.raises(ResourceError):
            p.annotations.apply_labels([("cells", IDS[0], "dim")])
        monkeypatch.setattr(os, "write", real)
        p.annotations.apply_labels([("cells", IDS[1], "bright")])  # space freed: next label
        assert (bundle / "annotations.journal").read_text().count("\n") == 1
        p._lock.release()  # simulate a crash: no compaction, the journal is all there is
    with Project.open(bundle, readonly=True) as p:
        assert p.annotations.get("cells", IDS[0]).class_name == "bright"
        assert p.annotations.get("cells", IDS[1]).class_name == "bright"

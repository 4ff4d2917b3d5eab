"""Files Svetlana writes respect the user's umask (colleagues on a shared server can read them)."""

from __future__ import annotations

import os
import stat

import pytest

from svetlana.core.ml.training import TrainingConfig
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.predict import predict_project
from svetlana.core.usecases.train import train_project
from tests.conftest import blobs, ok, write_pair


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_bundle_and_exports_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["bright", "dim"]) as p:
        p.add_image(ip, mp)
        ids = [10 + 7 * k for k in range(12)]
        p.annotations.apply_labels(
            [("cells", i, "bright" if k % 2 == 0 else "dim") for k, i in enumerate(ids)]
        )
        p.save()
        train_project(p, TrainingConfig(epochs=1, val_fraction=0.0))
        predict_project(p)  # into the bundle (a folder swapped in from a temp folder)
        predict_project(p, out_dir=tmp_path / "out")
    ok("export-mask", bundle, "--keep", "bright", "--out", tmp_path / "masks")
    files = [
        f
        for f in [
            *bundle.rglob("*"),
            *(tmp_path / "out").rglob("*"),
            *(tmp_path / "masks").rglob("*"),
        ]
    ]
    checked = 0
    for f in files:
        if f.name == ".lock":
            continue
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode == (dir_mode if f.is_dir() else file_mode), f"{f}: {oct(mode)}"
        checked += 1
    assert checked > 10
    names = {f.name for f in files}
    assert {"project.json", "annotations.csv", "predictions.csv", "run.json", "card.json"} <= names

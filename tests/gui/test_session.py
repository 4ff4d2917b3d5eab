"""The GUI session model: reopening a project shows its saved predictions."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.conftest import blobs, write_pair

from svetlana.core.ml.training import TrainingConfig
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.predict import predict_project
from svetlana.core.usecases.train import train_project
from svetlana.gui.session import Session


def _predicted_bundle(tmp_path, train_again: bool = False):
    """A labelled bundle with model-1 and its saved predictions (and model-2 if asked)."""
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["bright", "dim"]) as p:
        p.add_image(ip, mp)
        ids = [10 + 7 * k for k in range(12)]
        p.annotations.apply_labels(
            [("cells", i, "bright" if k % 2 == 0 else "dim") for k, i in enumerate(ids)]
        )
        train_project(p, TrainingConfig(epochs=3))
        saved = predict_project(p).predictions["cells"]
        if train_again:
            train_project(p, TrainingConfig(epochs=3))  # model-2 has no predictions yet
    return bundle, saved


def test_reopening_a_project_shows_its_saved_predictions(tmp_path):
    bundle, saved = _predicted_bundle(tmp_path)
    s = Session()
    s.open_project(bundle)
    try:
        assert s.prediction_model == "model-1"
        shown = s.predictions["cells"]
        assert list(shown.ids) == list(saved.ids)
        assert (shown.class_index == saved.class_index).all()
    finally:
        s.close_project()


def test_predictions_older_than_the_newest_model_are_not_shown(tmp_path):
    bundle, _ = _predicted_bundle(tmp_path, train_again=True)
    s = Session()
    s.open_project(bundle)
    try:
        assert s.predictions == {}
    finally:
        s.close_project()

"""The export operation's plan: what cannot be exported is refused with the reason before any
folder is made (GeoJSON outlines are 2D; a table takes 3D)."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.export import MASKS, OBJECTS, TABLE, export_refusal, plan_export
from tests.conftest import blobs, write_pair


def test_geojson_of_3d_images_is_refused_before_a_folder_and_a_table_is_planned(tmp_path):
    image, labels = blobs()
    with Project.create(tmp_path / "p.svetlana", classes=["a", "b"]) as project:
        project.add_image(
            *write_pair(tmp_path / "in", "stack", np.stack([image] * 4), np.stack([labels] * 4)),
            name="stack",
        )
        refusal = export_refusal(project, OBJECTS, {"stack": 2}, "model-1")
        assert isinstance(refusal, InputError) and "3D" in refusal.message
        with pytest.raises(InputError, match="measurement table"):
            plan_export(project, OBJECTS, tmp_path / "o", {"stack": 2}, "model-1")
        assert export_refusal(project, TABLE, {"stack": 2}, "model-1") is None
        table = plan_export(project, TABLE, tmp_path / "t", {"stack": 2}, "model-1")
        assert table.images == ("stack",) and table.out_dir == tmp_path / "t"
        assert "run a prediction" in str(export_refusal(project, MASKS, {}, "model-1"))
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


def test_the_cli_and_the_predict_tab_write_the_same_files_through_one_plan(tmp_path):
    """The Predict tab exports the predictions it shows (a worker, its own read-only view); the
    CLI the saved ones or predicted now (its open project): one plan, the same bytes."""
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.export import run_export
    from svetlana.core.usecases.results import project_predictions
    from svetlana.core.usecases.train import train_project

    image, labels = blobs(n=12)
    with Project.create(tmp_path / "p.svetlana", classes=["bright", "dim"]) as project:
        project.add_image(*write_pair(tmp_path / "in", "cells", image, labels), name="cells")
        ids = [int(i) for i in project.load("cells").table.ids]
        project.annotations.apply_labels(
            [("cells", i, "bright" if k % 2 == 0 else "dim") for k, i in enumerate(ids[:8])]
        )
        model = train_project(project, TrainingConfig(val_fraction=0.0), kind="forest").id
        shown = project_predictions(project, model).predictions  # what the tab shows
        for kind, names in ((TABLE, ("objects.csv", "summary.csv")), (OBJECTS, ("cells.geojson",))):
            gui = plan_export(project, kind, tmp_path / f"gui_{kind}", shown, model)
            gui_done = run_export(gui)
            cli = plan_export(
                project, kind, tmp_path / f"cli_{kind}", model_id=model, from_saved=True
            )
            cli_done = run_export(cli, project=project)
            assert cli_done.result.note  # not saved: the CLI predicted them now, and says so
            for name in names:
                written = (tmp_path / f"gui_{kind}" / name).read_bytes()
                assert written and written == (tmp_path / f"cli_{kind}" / name).read_bytes()
            assert {p.name for p in gui_done.files} == {p.name for p in cli_done.files}

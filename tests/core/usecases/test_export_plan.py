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

"""Predict tab, 3D project: QuPath (GeoJSON) export is shown disabled with the reason, and is
refused before any folder is asked for (no empty folder left behind)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from svetlana.core.usecases.export import OBJECTS, TABLE
from svetlana.core.usecases.setup import create_project
from svetlana.core.usecases.train import train_project
from svetlana.gui.session import Session
from svetlana.gui.tabs.predict import PredictionTab
from svetlana.gui.tabs.predict import export as prediction_tab  # the exports of the Predict tab


@pytest.fixture
def tab(qtbot, tmp_path, make_3d):
    ip, mp = make_3d(tmp_path / "d")
    project = create_project(tmp_path / "s.svetlana", [(ip, mp, "stack")], ["a", "b"])
    ids = [int(i) for i in project.load("stack").table.ids]
    project.annotations.apply_labels(
        [("stack", i, "a" if k % 2 else "b") for k, i in enumerate(ids)]
    )
    train_project(project, kind="forest")
    session = Session()
    session.set_project(project)
    w = PredictionTab(session)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.predictionFinished, timeout=60000):
        qtbot.mouseClick(w.run_button, Qt.MouseButton.LeftButton)
    yield w
    session.close_project()


def test_qupath_export_of_a_3d_image_is_disabled_with_the_reason(
    qtbot, tab, monkeypatch, shown_errors
):
    asked = []
    monkeypatch.setattr(prediction_tab, "choose_folder", lambda *a, **k: asked.append(a) or "")
    tab.exports.refresh_menu()
    qupath = tab.export_menu.actions_by_kind[OBJECTS]
    assert not qupath.isEnabled() and "2D images only" in qupath.text()
    assert tab.export_menu.actions_by_kind[TABLE].isEnabled()
    tab.exports.choose_export(
        OBJECTS
    )  # reached anyway (e.g. a stale menu): refused before the folder
    assert not asked and shown_errors and "3D" in shown_errors[-1]

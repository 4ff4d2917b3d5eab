"""Explain, clicked with nothing cached: the model is loaded and the image read in the worker,
on a read-only view, never on the GUI thread; the heat map is shown."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from svetlana.core.usecases import predict as predicting

pytestmark = pytest.mark.usefixtures("shown_errors")


def test_explain_loads_the_model_and_the_image_in_the_worker(
    qtbot,
    prediction_tab,
    trained_session,
    monkeypatch,
):
    from svetlana.core.project.bundle import Project

    seen = []
    real_load_model, real_load = predicting.load_model, Project.load

    def load_model(project, model_id):
        seen.append(("model", threading.current_thread() is threading.main_thread(), project))
        return real_load_model(project, model_id)

    def load(project, name):
        seen.append(("image", threading.current_thread() is threading.main_thread(), project))
        return real_load(project, name)

    obj = int(trained_session.project.load("cells").table.ids[2])
    trained_session.select([obj])
    monkeypatch.setattr(predicting, "load_model", load_model)
    monkeypatch.setattr(Project, "load", load)
    assert prediction_tab.explain_button.isEnabled()
    with qtbot.waitSignal(prediction_tab.explainFinished, timeout=60000):
        qtbot.mouseClick(prediction_tab.explain_button, Qt.MouseButton.LeftButton)
    assert [k for k, *_ in seen] == ["model", "image"]
    assert all(
        not on_main and p.readonly and p is not trained_session.project for _, on_main, p in seen
    )
    assert prediction_tab.explain_view.heatmap is not None
    assert f"Object {obj}" in prediction_tab.explain_view.caption.text()
    # Explained again: the model loaded by the worker is reused, not loaded again.
    seen.clear()
    with qtbot.waitSignal(prediction_tab.explainFinished, timeout=60000):
        qtbot.mouseClick(prediction_tab.explain_button, Qt.MouseButton.LeftButton)
    assert [k for k, *_ in seen] == ["image"]

"""The Results window says it is computing while the charts' data is on its way (not "Predict
to see…" over predictions that are there), and computing never blocks Predict."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from svetlana.core.objects import measurement_cache
from svetlana.gui.widgets.results_panel import COMPUTING, NOTHING


def test_the_results_window_says_computing_then_shows_the_totals(
    project_window, qtbot, monkeypatch
):
    from svetlana.core.usecases.train import train_project

    win = project_window
    project = win.session.project
    loaded = project.load("cells")
    ids = [int(i) for i in loaded.table.ids]
    project.annotations.apply_labels(
        [("cells", i, "class 1" if k % 2 else "class 2") for k, i in enumerate(ids[:12])],
        source="import",
    )
    train_project(project, kind="forest")
    win.session.modelsChanged.emit()
    tab = win.prediction_tab
    win.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.predictionFinished, timeout=60000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.session.busy)
    go = threading.Event()
    real = measurement_cache.project_measurements

    def slow(*a, **k):
        go.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(measurement_cache, "project_measurements", slow)
    panel = tab.results_panel
    with qtbot.waitSignal(panel.updated, timeout=60000):
        qtbot.mouseClick(tab.results_button, Qt.MouseButton.LeftButton)
        assert panel.note.text() == COMPUTING  # at once, not NOTHING
        qtbot.waitUntil(lambda: panel.job is not None and panel.job.running)
        assert panel.note.text() == COMPUTING != NOTHING
        assert tab.run_button.isEnabled() and not win.session.busy  # Predict stays usable
        go.set()
    assert panel.note.text().startswith(f"{len(ids)} objects in 1 image")

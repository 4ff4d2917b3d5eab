"""The Train tab's settings form, clicked as a user does: what is ticked is what trains."""

from __future__ import annotations

from PySide6.QtCore import Qt

from svetlana.gui.widgets.training_form import TrainingForm


def test_ticking_early_stopping_reaches_the_training_settings(qtbot):
    form = TrainingForm()
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    before = form.config().early_stopping
    qtbot.mouseClick(form.early_stopping, Qt.MouseButton.LeftButton)
    assert form.config().early_stopping is (not before)
    assert form.settings()["early_stopping"] is (not before)  # saved with the form
    qtbot.mouseClick(form.early_stopping, Qt.MouseButton.LeftButton)
    assert form.config().early_stopping is before

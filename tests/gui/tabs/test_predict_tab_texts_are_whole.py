"""The Predict tab says what it shows in words a user reads whole: the model's line is never
clipped without a sign (cut with "…", whole in its tooltip and in the list it opens), and the
counts' columns say what they count."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from tests.gui.projects import N_OBJECTS, predict_clicked

pytestmark = pytest.mark.usefixtures("shown_errors")


@pytest.fixture
def predict_tab_in_window(window, trained_bundle, tmp_path):
    """The window on a copy of the trained bundle, its Predict tab shown."""
    import shutil

    shutil.copytree(trained_bundle[0] / "p.svetlana", tmp_path / "p.svetlana")
    assert window.open_project(tmp_path / "p.svetlana")
    window.tabs.setCurrentWidget(window.prediction_tab)
    return window.prediction_tab


def test_the_model_line_is_cut_with_a_sign_and_whole_in_the_tooltip_and_the_list(
    qtbot, predict_tab_in_window
):
    tab = predict_tab_in_window
    qtbot.waitExposed(tab)
    box = tab.model
    line = box.currentText()
    assert line.startswith("model-1 · ") and line[-5:-3].isdigit()  # ends with the date
    fm = box.fontMetrics()
    assert fm.horizontalAdvance(line) > box.width()  # too long for the box: the case at hand
    shown = box.shown_text()
    assert shown.endswith("…") and line.startswith(shown[:-1])
    assert line in box.toolTip()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)  # open the list, as a user does
    qtbot.waitUntil(lambda: box.view().isVisible())
    assert box.view().width() >= fm.horizontalAdvance(line)  # every line whole in the list
    qtbot.keyClick(box.view(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not box.view().isVisible())
    QApplication.processEvents()


def test_the_counts_say_how_many_images_they_add_up(qtbot, prediction_tab):
    tab = prediction_tab
    assert predict_clicked(qtbot, tab) == "model-1"
    heads = [tab.counts.horizontalHeaderItem(i).text() for i in range(tab.counts.columnCount())]
    assert heads == ["class", "this image", "1 image predicted"]
    assert sum(tab.counts.counts(2).values()) == N_OBJECTS

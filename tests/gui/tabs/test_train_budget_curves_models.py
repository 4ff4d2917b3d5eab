"""The Train tab as a user meets it: the time budget typed in is the one used, the mouse wheel
over the curves never zooms them, the model list says kind, accuracy and date."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from svetlana.gui.tabs.train import TrainingTab

pytestmark = pytest.mark.usefixtures("shown_errors")


@pytest.fixture
def tab(qtbot, labelled_session):
    w = TrainingTab(labelled_session)
    qtbot.addWidget(w)
    w.resize(420, 900)
    with qtbot.waitSignal(w.deviceDetected, timeout=60000):
        w.show()
    return w


def _wheel(widget, steps: int) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False,
    )  # fmt: skip
    QApplication.sendEvent(widget, event)


def test_the_time_budget_typed_is_used_by_automatic_and_listed_with_the_model(qtbot, tab):
    assert tab.arch.currentData() == "auto" and tab.time_budget.isEnabled()
    tab.time_budget.setFocus()
    tab.time_budget.selectAll()
    qtbot.keyClicks(tab.time_budget, "7")
    with qtbot.waitSignal(tab.trainingFinished, timeout=120000) as done:
        qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    assert done.args == ["model-1"]
    card = tab.session.project.models.card("model-1")
    assert card["selection"]["budget_s"] == 7.0
    line = tab.models.item(0).text()
    kind = "forest" if card.get("kind") == "forest" else f"CNN {card['architecture']}"
    accuracy = f"{card['metrics']['accuracy']:.0%} cross-validated"
    assert line == f"model-1 · {kind} · {accuracy} · {card['created'].replace('T', ' ')[:16]}"
    assert tab.form.settings()["time_budget"] == 7


def test_the_time_budget_is_only_offered_for_automatic(qtbot, tab):
    tab.arch.setCurrentIndex(tab.arch.findData("forest"))
    assert not tab.time_budget.isEnabled()
    tab.arch.setCurrentIndex(tab.arch.findData("auto"))
    assert tab.time_budget.isEnabled()


def test_the_wheel_over_the_curves_does_not_zoom_them(qtbot, tab):
    tab.curves.set_rows([{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5} for e in range(1, 11)])
    plot = tab.curves.loss_plot
    QApplication.processEvents()
    before = plot.getViewBox().viewRange()
    _wheel(plot.viewport(), 5)
    QApplication.processEvents()
    assert plot.getViewBox().viewRange() == before

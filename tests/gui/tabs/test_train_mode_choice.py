"""The Train tab's Mode (quick / thorough): the estimate beside it before training starts, the
mode chosen is the one used, and it is only offered for Automatic."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt
from tests.gui.tabs.test_train_budget_curves_models import tab  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("shown_errors")


def _seconds(text: str) -> float:
    return float(re.search(r"at most ~(\d+) s", text).group(1))


def test_thorough_chosen_shows_a_longer_estimate_and_is_the_mode_used(qtbot, tab):  # noqa: F811
    mode, estimate = tab.form.mode_choice.combo, tab.form.mode_choice.estimate
    assert mode.currentData() == "quick" and mode.isEnabled()
    quick = estimate.text()
    n = sum(tab.session.project.annotations.counts().values())
    assert "quick" in quick and f"growing with the {n} labels" in quick and estimate.isVisible()
    assert quick.startswith("In quick mode it cross-validates the forest")  # a sentence
    mode.setFocus()
    qtbot.keyClick(mode, Qt.Key.Key_Down)
    assert mode.currentData() == "thorough"
    thorough = estimate.text()
    assert "thorough" in thorough and "hybrid" in thorough
    assert thorough.startswith("In thorough mode it cross-validates")
    assert _seconds(thorough) > _seconds(quick)
    tab.time_budget.setFocus()
    tab.time_budget.selectAll()
    qtbot.keyClicks(tab.time_budget, "5")
    assert _seconds(estimate.text()) == 5 and "growing" not in estimate.text()
    with qtbot.waitSignal(tab.trainingFinished, timeout=180000) as done:
        qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    card = tab.session.project.models.card(done.args[0])
    assert card["selection"]["effort"] == "thorough" and card["selection"]["budget_s"] == 5.0
    assert tab.form.settings()["mode"] == "thorough"


def test_the_mode_and_its_estimate_are_only_for_automatic(qtbot, tab):  # noqa: F811
    mode, estimate = tab.form.mode_choice.combo, tab.form.mode_choice.estimate
    tab.arch.setFocus()
    qtbot.keyClick(tab.arch, Qt.Key.Key_Down)  # Automatic -> Forest
    assert tab.arch.currentData() == "forest"
    assert not mode.isEnabled() and estimate.text() == ""
    qtbot.keyClick(tab.arch, Qt.Key.Key_Up)
    assert mode.isEnabled() and "quick" in estimate.text()

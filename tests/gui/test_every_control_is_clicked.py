"""Every button, radio button, check box and menu action of the window is clicked (or its
shortcut typed) by some GUI test: a control nobody clicks is a control whose defects no test
sees (issue: four class buttons broken, no test clicked them).

Runs last (tests/gui/conftest.py orders it) and only when the whole GUI suite ran.
"""

from __future__ import annotations

import pytest

from conftest import ALL_GUI_TESTS, CLICKED, COLLECTED, window_controls  # noqa: I001

# Controls no test clicks, each with the reason. Keep it short: a new control gets a test.
ALLOWED_UNCLICKED: dict[str, str] = {
    # pyqtgraph puts this action in every chart's scene; it is reached only from a chart's
    # right-click menu, which each chart of the window disables (checked below).
    "action: Export...": "pyqtgraph's own; no chart offers its context menu",
}


def test_no_chart_offers_pyqtgraphs_context_menu(window):
    import pyqtgraph as pg

    scenes = [v.scene() for v in window.findChildren(pg.GraphicsView)]
    assert scenes  # the image, the histogram, the training curves, the results charts
    boxes = [i for sc in scenes for i in sc.items() if isinstance(i, pg.ViewBox)]
    assert boxes and not [b for b in boxes if b.menuEnabled()]


def _whole_suite_ran() -> bool:
    return bool(ALL_GUI_TESTS) and ALL_GUI_TESTS <= COLLECTED


def test_every_control_of_the_window_is_clicked_by_some_test(window):
    controls = set(window_controls(window))
    assert len(controls) > 20, sorted(controls)  # the enumeration finds the window's controls
    if not _whole_suite_ran():
        pytest.skip("only meaningful when every file of tests/gui ran")
    missing = sorted(controls - CLICKED - set(ALLOWED_UNCLICKED))
    assert not missing, "no test clicks these controls:\n  " + "\n  ".join(missing)
    stale = sorted(set(ALLOWED_UNCLICKED) - controls)
    assert not stale, f"allowed but no longer in the window: {stale}"

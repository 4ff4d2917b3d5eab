"""The Choose objects box and the Current object box, clicked: Back, Skip, the four modes,
Same zoom, the live predictions switch."""

from __future__ import annotations

from PySide6.QtCore import Qt

LEFT = Qt.MouseButton.LeftButton


def test_skip_and_back_buttons_walk_the_random_order(project_window, qtbot):
    tab = project_window.annotation_tab
    first = tab.current
    qtbot.mouseClick(tab.chooser.skip_button, LEFT)
    second = tab.current
    assert second not in (None, first)
    qtbot.mouseClick(tab.chooser.back_button, LEFT)
    assert tab.current == first
    assert project_window.session.project.annotations.get("cells", first) is None  # no label


def test_each_mode_button_changes_how_objects_come(project_window, qtbot):
    tab = project_window.annotation_tab
    buttons = tab.chooser.mode_buttons
    qtbot.mouseClick(buttons["click"], LEFT)
    assert tab.mode == "click" and tab.current is None
    assert tab.current_panel.label.text() == "No object selected"
    qtbot.mouseClick(buttons["uncertain"], LEFT)
    assert tab.mode == "uncertain" and tab.current is None  # nothing predicted yet
    assert "predict" in tab.chooser.hint.text().lower()
    qtbot.mouseClick(buttons["suggest"], LEFT)
    assert tab.mode == "suggest" and tab.current is not None  # random until suggestions come
    qtbot.mouseClick(buttons["random"], LEFT)
    assert tab.mode == "random" and tab.current is not None
    assert not tab.chooser.hint.isVisible()


def test_same_zoom_shows_every_object_at_one_scale(project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    box = tab.current_panel.fixed_zoom
    if box.isChecked():
        qtbot.mouseClick(box, LEFT)
    qtbot.mouseClick(box, LEFT)
    assert win.view.fixed_zoom and win.settings.value("view/fixed_zoom") is True
    widths = []
    for _ in range(3):
        (x0, x1), _y = win.view.viewbox.viewRange()
        widths.append(round(x1 - x0, 3))
        qtbot.mouseClick(tab.chooser.skip_button, LEFT)
    assert len(set(widths)) == 1, widths  # one zoom for all objects
    qtbot.mouseClick(box, LEFT)
    assert not win.view.fixed_zoom


def test_live_predictions_switch_off_and_on(project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    toggle = tab.live_box.toggle
    assert toggle.isChecked()
    qtbot.mouseClick(toggle, LEFT)
    assert not tab.live.enabled and win.session.view_options.get("live") is None
    assert tab.live_box.summary.text() == "Off."
    qtbot.mouseClick(toggle, LEFT)
    assert tab.live.enabled
    qtbot.waitUntil(lambda: not tab.live.running, timeout=60_000)

"""The View and Help menus' actions, triggered as from the menu or their shortcuts, and the
image view's Auto contrast button."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

CTRL = Qt.KeyboardModifier.ControlModifier


def _pixel(win, obj):
    from svetlana.gui.widgets.image_view import TILE

    win.view.flush()
    loaded = win.session.loaded()
    c = loaded.table.centroid[loaded.table.rows(obj)[0]]
    y, x = int(c[-2]), int(c[-1])
    tile = win.view.overlay.items[((y // TILE) * TILE, (x // TILE) * TILE)]
    return tuple(int(v) for v in tile.image[y % TILE, x % TILE])


def _menu_action(win, menu_title: str, text: str):
    for menu in win.menuBar().findChildren(type(win.menuBar().actions()[0].menu())):
        if menu.title().replace("&", "") == menu_title:
            for a in menu.actions():
                if a.text().replace("&", "") == text:
                    return a
    raise KeyError(text)


def test_labels_switch_hides_class_colours(project_window, qtbot):
    win = project_window
    obj = win.annotation_tab.current
    qtbot.keyClick(win, "1")
    win.session.select(())  # no highlight over it
    filled = _pixel(win, obj)
    _menu_action(win, "View", "Labels (class colours)").trigger()
    assert not win.session.view_options["labels"] and _pixel(win, obj) != filled
    _menu_action(win, "View", "Labels (class colours)").trigger()
    assert _pixel(win, obj) == filled


def test_outlines_switch(project_window):
    win = project_window
    _menu_action(win, "View", "Object outlines").trigger()
    assert not win.session.view_options["outlines"]
    _menu_action(win, "View", "Object outlines").trigger()
    assert win.session.view_options["outlines"]


def test_predictions_switch(project_window):
    win = project_window
    _menu_action(win, "View", "Predictions").trigger()
    assert not win.session.view_options["predictions"]
    _menu_action(win, "View", "Predictions").trigger()
    assert win.session.view_options["predictions"]


def test_whole_image_and_auto_contrast(project_window, qtbot):
    win = project_window
    win.view.focus_object(win.annotation_tab.current)
    (x0, x1), _ = win.view.viewbox.viewRange()
    qtbot.keyClick(win, Qt.Key.Key_0, CTRL)  # Whole image
    (w0, w1), _ = win.view.viewbox.viewRange()
    assert w1 - w0 > 1.5 * (x1 - x0)
    win.view.set_levels(0, 0.0, 1.0)
    qtbot.mouseClick(win.view.auto_button, Qt.MouseButton.LeftButton)
    lo, hi = win.view.levels(0)
    assert hi > 1.0  # back to the image's own range
    win.view.set_levels(0, 0.0, 1.0)
    _menu_action(win, "View", "Auto contrast").trigger()
    assert win.view.levels(0)[1] > 1.0


def test_next_and_previous_image(window, tmp_path, make_pair):
    from svetlana.core.usecases.setup import create_project

    a = make_pair(tmp_path / "a", "one", seed=0)
    b = make_pair(tmp_path / "b", "two", seed=1)
    window.set_project(
        create_project(tmp_path / "p.svetlana", [(a[0], a[1], "one"), (b[0], b[1], "two")], ["x"])
    )
    _menu_action(window, "View", "Next image").trigger()
    assert window.session.current_image == "two"
    _menu_action(window, "View", "Previous image").trigger()
    assert window.session.current_image == "one"


@pytest.mark.parametrize("key, index", [(Qt.Key.Key_2, 1), (Qt.Key.Key_3, 2), (Qt.Key.Key_1, 0)])
def test_ctrl_number_shows_a_tab(project_window, qtbot, key, index):
    if index == 0:
        project_window.tabs.setCurrentIndex(2)
    qtbot.keyClick(project_window, key, CTRL)
    assert project_window.tabs.currentIndex() == index
    train = project_window.training_tab  # showing it looks for devices in the background
    job = getattr(train, "device_job", None)
    if job is not None:
        qtbot.waitUntil(lambda: not job.running, timeout=60_000)


def test_help_menu(window, monkeypatch):
    from svetlana.gui import keymap

    shown = []
    monkeypatch.setattr(keymap.ShortcutsDialog, "exec", lambda self: shown.append("keys") or 0)
    monkeypatch.setattr(QMessageBox, "about", lambda *a: shown.append(a[2]))
    _menu_action(window, "Help", "Keyboard shortcuts").trigger()
    _menu_action(window, "Help", "About Svetlana").trigger()
    assert shown[0] == "keys" and "Svetlana" in shown[1]

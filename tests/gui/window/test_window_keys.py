"""Window-wide keys pressed as a user does: undo/redo, help; keys never label without a project."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture(params=["offscreen", "x11"])
def redo_keys(request, monkeypatch):
    """The platform's Redo keys: this test platform's, and X11's (Ctrl+Shift+Z alone)."""
    if request.param == "x11":
        monkeypatch.setattr(QKeySequence, "keyBindings", lambda key: [QKeySequence("Ctrl+Shift+Z")])
    return request.param


def test_ctrl_shift_z_redoes_what_ctrl_z_undid(redo_keys, project_window, qtbot):
    win = project_window
    assert [k.toString() for k in win.redo_action.shortcuts()].count("Ctrl+Shift+Z") == 1
    obj = win.annotation_tab.current
    qtbot.keyClick(win, "1")
    ann = win.session.project.annotations
    assert ann.get("cells", obj).class_name == "class 1"
    qtbot.keyClick(win, Qt.Key.Key_Z, CTRL)
    assert ann.get("cells", obj) is None
    qtbot.keyClick(win, Qt.Key.Key_Z, CTRL | SHIFT)
    assert ann.get("cells", obj).class_name == "class 1"


def test_no_menu_shortcut_is_bound_twice(window):
    """Qt ignores a sequence bound twice ("Ambiguous shortcut overload"): each once."""
    from PySide6.QtGui import QAction

    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            key = seq.toString()
            assert key not in seen, f"{key} is both {seen[key]!r} and {action.text()!r}"
            seen[key] = action.text()
    assert QKeySequence("Ctrl+Shift+Z").toString() in seen


def test_class_keys_do_nothing_without_a_project(window, qtbot):
    qtbot.keyClick(window, "1")  # the start page: nothing to label, no error
    assert window.session.project is None


def test_question_mark_shows_the_key_table(window, qtbot, monkeypatch):
    from svetlana.gui import keymap

    shown = []
    monkeypatch.setattr(keymap.ShortcutsDialog, "exec", lambda self: shown.append(self) or 0)
    qtbot.keyClick(window, "?")
    assert len(shown) == 1
    assert shown[0].findChild(keymap.QTableWidget).rowCount() == len(keymap.help_rows())

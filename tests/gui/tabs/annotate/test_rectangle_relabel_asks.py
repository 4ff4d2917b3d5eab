"""A rectangle over objects that already carry another class asks before relabelling them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

LEFT = Qt.MouseButton.LeftButton


def _drag(win, a_img, b_img) -> None:
    QApplication.processEvents()
    viewport = win.view.graphics.viewport()
    a = win.view.map_image_to_widget(*a_img)
    b = win.view.map_image_to_widget(*b_img)
    c = QPointF((a.x() + b.x()) / 2, (a.y() + b.y()) / 2)
    for kind, pos, buttons in (
        (QEvent.Type.MouseButtonPress, a, LEFT),
        (QEvent.Type.MouseMove, c, LEFT),
        (QEvent.Type.MouseMove, b, LEFT),
        (QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton),
    ):
        button = LEFT if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
        ev = QMouseEvent(kind, QPointF(pos), viewport.mapToGlobal(QPointF(pos)), button,
                         buttons, Qt.KeyboardModifier.NoModifier)  # fmt: skip
        QApplication.sendEvent(viewport, ev)


@pytest.fixture
def dragged(project_window, qtbot):
    """Click mode; two objects labelled 'class 2'; a rectangle over the whole image."""
    win = project_window
    qtbot.mouseClick(win.annotation_tab.chooser.mode_buttons["click"], LEFT)
    loaded = win.session.loaded()
    before = [int(o) for o in loaded.table.ids[:2]]
    win.session.label(before, "class 2")
    h, w = loaded.labels.shape
    win.view.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0)
    _drag(win, (1, 1), (w - 1, h - 1))
    selected = win.session.selection
    assert set(before) <= set(selected) and len(selected) > 2
    assert "2 already labelled" in win.statusBar().currentMessage()
    return win, before, selected


@pytest.mark.parametrize(
    "answer",
    [
        QMessageBox.StandardButton.Yes,
        QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Cancel,
    ],  # fmt: skip
)
def test_relabel_all_only_the_others_or_nothing(dragged, qtbot, monkeypatch, answer):
    win, before, selected = dragged
    asked = []

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    steps = win.session.undo_stack.count()
    qtbot.keyClick(win, "1")
    assert len(asked) == 1 and "2 objects" in asked[0] and "'class 2'" in asked[0]
    ann = win.session.project.annotations
    others = [o for o in selected if o not in before]
    if answer == QMessageBox.StandardButton.Cancel:
        assert win.session.undo_stack.count() == steps
        assert all(ann.get("cells", o) is None for o in others)
        assert all(ann.get("cells", o).class_name == "class 2" for o in before)
        return
    assert win.session.undo_stack.count() == steps + 1  # one undoable step
    assert all(ann.get("cells", o).class_name == "class 1" for o in others)
    kept = "class 1" if answer == QMessageBox.StandardButton.Yes else "class 2"
    assert all(ann.get("cells", o).class_name == kept for o in before)
    if answer == QMessageBox.StandardButton.No:
        assert "2 objects already labelled left as they were" in (win.statusBar().currentMessage())


def test_no_question_when_none_has_another_class(dragged, qtbot, monkeypatch):
    win, before, selected = dragged
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: 1 / 0)
    qtbot.keyClick(win, "2")  # the labelled ones are class 2 already: nothing to ask
    ann = win.session.project.annotations
    assert all(ann.get("cells", o).class_name == "class 2" for o in selected)

"""The Classes box's four buttons, clicked as a user does (dialogs answered by patching them)."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QInputDialog, QMessageBox

LEFT = Qt.MouseButton.LeftButton


def _select_class(tab, row: int) -> None:
    tab.classes_panel.tree.setCurrentItem(tab.classes_panel.tree.topLevelItem(row))


def _saved_classes(win) -> list[dict]:
    """The classes in project.json once the project is closed (as the next session reads them)."""
    path = win.session.project.path
    win.close_project()
    return json.loads((path / "project.json").read_text())["classes"]


def _label_some(win, qtbot, key: str, n: int) -> list[int]:
    done = []
    for _ in range(n):
        done.append(win.annotation_tab.current)
        qtbot.keyClick(win, key)
    return done


def test_add_asks_for_a_name_and_adds_the_class(project_window, qtbot, monkeypatch, shown_errors):
    win, tab = project_window, project_window.annotation_tab
    asked = []

    def get_text(parent, title, label, *args, **kwargs):
        asked.append((title, kwargs.get("text")))
        return "debris", True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    _select_class(tab, 0)  # a class selected, as in the report: Add must still ask
    qtbot.mouseClick(tab.classes_panel.add_button, LEFT)
    assert asked == [("Add class", "class 3")] and not shown_errors
    ann = win.session.project.annotations
    assert ann.class_info("debris").key == "3"
    assert [tab.classes_panel.tree.topLevelItem(i).text(1) for i in range(3)][-1] == "debris"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("ignored", False))
    qtbot.mouseClick(tab.classes_panel.add_button, LEFT)  # Cancel adds nothing
    assert ann.class_names == ("class 1", "class 2", "debris")


def test_rename_renames_the_selected_class_and_keeps_its_labels(
    project_window, qtbot, monkeypatch, shown_errors
):
    win, tab = project_window, project_window.annotation_tab
    objs = _label_some(win, qtbot, "1", 2)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("alive", True))
    _select_class(tab, 0)
    qtbot.mouseClick(tab.classes_panel.rename_button, LEFT)
    ann = win.session.project.annotations
    assert not shown_errors
    assert ann.class_names[0] == "alive"
    assert all(ann.get("cells", o).class_name == "alive" for o in objs)
    # Still selected under its new name: Colour right after Rename needs no second click.
    assert tab.classes_panel.selected_class() == "alive"
    assert _saved_classes(win)[0]["name"] == "alive"


def test_rename_to_another_class_merges_after_asking(project_window, qtbot, monkeypatch):
    win, tab = project_window, project_window.annotation_tab
    (obj,) = _label_some(win, qtbot, "1", 1)
    questions = []

    def question(parent, title, text, *a, **k):
        questions.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("class 2", True))
    _select_class(tab, 0)
    qtbot.mouseClick(tab.classes_panel.rename_button, LEFT)
    ann = win.session.project.annotations
    assert "1 label" in questions[0]
    assert ann.class_names == ("class 2",) and ann.get("cells", obj).class_name == "class 2"
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert ann.class_names == ("class 1", "class 2")
    assert ann.get("cells", obj).class_name == "class 1"


def test_colour_opens_a_picker_and_saves_the_chosen_colour(project_window, qtbot, monkeypatch):
    win, tab = project_window, project_window.annotation_tab
    offered = []

    def get_color(initial, parent, title, *a, **k):
        offered.append(QColor(initial).name())
        return QColor("#123456")

    monkeypatch.setattr(QColorDialog, "getColor", get_color)
    ann = win.session.project.annotations
    before = ann.class_info("class 2").colour
    _select_class(tab, 1)
    qtbot.mouseClick(tab.classes_panel.colour_button, LEFT)
    assert offered == [QColor(before).name()]  # the picker starts from the class's colour
    assert ann.class_info("class 2").colour == "#123456"
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor())  # Cancel
    qtbot.mouseClick(tab.classes_panel.colour_button, LEFT)
    assert ann.class_info("class 2").colour == "#123456"
    assert _saved_classes(win)[1]["colour"] == "#123456"


def test_remove_asks_first_naming_how_many_labels_go(project_window, qtbot, monkeypatch):
    win, tab = project_window, project_window.annotation_tab
    objs = _label_some(win, qtbot, "1", 3)
    ann = win.session.project.annotations
    questions = []
    answer = [QMessageBox.StandardButton.No]

    def question(parent, title, text, *a, **k):
        questions.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    _select_class(tab, 0)
    qtbot.mouseClick(tab.classes_panel.remove_button, LEFT)
    assert len(questions) == 1 and "3 labels" in questions[0] and "'class 1'" in questions[0]
    assert "class 1" in ann.class_names and all(ann.get("cells", o) for o in objs)  # "No"
    answer[0] = QMessageBox.StandardButton.Yes
    _select_class(tab, 0)
    qtbot.mouseClick(tab.classes_panel.remove_button, LEFT)
    assert "class 1" not in ann.class_names and not any(ann.get("cells", o) for o in objs)
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert all(ann.get("cells", o).class_name == "class 1" for o in objs)


def test_remove_of_a_class_without_labels_needs_no_question(project_window, qtbot, monkeypatch):
    win, tab = project_window, project_window.annotation_tab
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: 1 / 0)  # never asked
    _select_class(tab, 1)
    qtbot.mouseClick(tab.classes_panel.remove_button, LEFT)
    assert win.session.project.annotations.class_names == ("class 1",)


def test_buttons_without_a_selected_class_say_so(project_window, qtbot, monkeypatch):
    win, tab = project_window, project_window.annotation_tab
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: 1 / 0)
    tab.classes_panel.tree.setCurrentItem(None)
    for button in (
        tab.classes_panel.rename_button,
        tab.classes_panel.colour_button,
        tab.classes_panel.remove_button,
    ):
        qtbot.mouseClick(button, LEFT)
        assert "select a class" in win.statusBar().currentMessage()
    assert win.session.project.annotations.class_names == ("class 1", "class 2")

"""The start page's buttons and the File menu, clicked (file dialogs answered by patching them)."""

from __future__ import annotations

import csv

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from svetlana.core.usecases.setup import create_project

LEFT = Qt.MouseButton.LeftButton


def _action(win, text: str):
    for menu in win.menuBar().findChildren(type(win.menuBar().actions()[0].menu())):
        for a in menu.actions():
            if a.text().replace("&", "").rstrip("…") == text:
                return a
    raise KeyError(text)


def _bundle(tmp_path, pair):
    project = create_project(tmp_path / "p.svetlana", [(pair[0], pair[1], "cells")], ["a", "b"])
    project.close()
    return tmp_path / "p.svetlana"


def test_open_project_button_and_action(window, qtbot, tmp_path, pair, monkeypatch):
    path = _bundle(tmp_path, pair)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))
    qtbot.mouseClick(window.start_page.open_button, LEFT)
    assert window.session.project is not None and window.session.project.path == path
    assert window.stack.currentIndex() == 1
    _action(window, "Close project").trigger()
    assert window.session.project is None and window.stack.currentIndex() == 0
    assert window.start_page.recent.item(0).data(Qt.ItemDataRole.UserRole) == str(path.resolve())
    _action(window, "Open project").trigger()
    assert window.session.project.path == path


def test_new_project_button_and_action_open_the_dialog(window, qtbot, monkeypatch):
    from svetlana.gui.dialogs import new_project

    opened = []
    monkeypatch.setattr(
        new_project.NewProjectDialog, "exec", lambda self: opened.append(self.windowTitle()) or 0
    )
    qtbot.mouseClick(window.start_page.new_button, LEFT)
    _action(window, "New project").trigger()
    assert opened == ["New project — Svetlana"] * 2 and window.session.project is None


def test_try_the_demo_button_and_action(window, qtbot, tmp_path, pair, monkeypatch):
    from svetlana.gui.window import projects

    built = []

    def build(path):  # a small project instead of the 200-object demo
        built.append(path)
        return create_project(path, [(pair[0], pair[1], "cells")], ["striped", "dotted"])

    monkeypatch.setattr(projects, "demo_path", lambda: tmp_path / "demo.svetlana")
    monkeypatch.setattr("svetlana.core.usecases.demo.build_demo", build)
    qtbot.mouseClick(window.start_page.demo_button, LEFT)
    # Built in a worker (the window stays responsive), then opened on the main thread.
    qtbot.waitUntil(lambda: window.session.project is not None, timeout=60_000)
    assert window.session.project.path == tmp_path / "demo.svetlana" and len(built) == 1
    window.close_project()
    _action(window, "Try the demo").trigger()  # kept and reopened, not built again
    assert window.session.project is not None and len(built) == 1


def test_export_labels_writes_the_csv(project_window, qtbot, tmp_path, monkeypatch):
    win = project_window
    obj = win.annotation_tab.current
    qtbot.keyClick(win, "2")
    out = tmp_path / "labels.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "CSV"))
    _action(win, "Export labels").trigger()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["object"], r["class"]) for r in rows] == [(str(obj), "class 2")]


def test_quit_closes_the_window(window, qtbot):
    _action(window, "Quit").trigger()
    qtbot.waitUntil(lambda: not window.isVisible())

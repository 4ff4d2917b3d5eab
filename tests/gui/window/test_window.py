"""The main window: start page, creating/opening projects, recent list, images, undo, errors."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QTableWidget

from svetlana.core.project.bundle import Project
from svetlana.gui.dialogs.new_project import NewProjectDialog
from svetlana.gui.main_window import MainWindow


def test_start_page_without_project(window):
    assert window.stack.currentIndex() == 0
    assert window.windowTitle() == "Svetlana"
    assert not window.export_action.isEnabled()


def test_new_project_dialog_creates_bundle_and_window_shows_it(
    window, tmp_path, pair, settings, qtbot
):
    dialog = NewProjectDialog(window)
    dialog.add_pair(*pair)
    dialog.set_destination(tmp_path / "exp1")
    dialog.set_class_names(["alive", "dead"])
    dialog.accept()  # the images are read in a worker; the dialog closes when the bundle exists
    assert dialog.status.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: dialog.result() == NewProjectDialog.DialogCode.Accepted, timeout=20000)
    project = dialog.project
    assert project.path == tmp_path / "exp1.svetlana"
    assert project.annotations.class_names == ("alive", "dead")
    assert project.image_names == ("cells",)
    window.set_project(project)
    assert window.stack.currentIndex() == 1
    assert window.windowTitle().startswith("exp1")
    assert "Svetlana" in window.windowTitle()
    # the recent list is kept in the injected settings, and a new window lists it
    window.close()
    again = MainWindow(settings=settings)
    try:
        assert again.settings.recent_projects()[0] == (tmp_path / "exp1.svetlana").resolve()
        assert again.start_page.recent.count() == 1
    finally:
        again.close()


def test_folder_mode_pairs_images_by_name(window, tmp_path, make_pair):
    write_scene = make_pair
    folder = tmp_path / "folder"
    write_scene(folder, "a", seed=1)
    write_scene(folder, "b", seed=2)
    dialog = NewProjectDialog(window)
    assert dialog.set_folder(folder) == 2
    assert [n for _, _, n in dialog.pairs()] == ["a", "b"]
    assert dialog.pairs()[0][1].name == "a_masks.tif"
    assert dialog.destination() == tmp_path / "folder.svetlana"
    project = dialog.create()
    assert project.image_names == ("a", "b")
    project.close()


def test_bad_mask_file_shows_error_and_creates_nothing(
    window, tmp_path, shown_errors, make_pair, qtbot
):
    write_scene = make_pair
    image, _ = write_scene(tmp_path / "d")
    bad = tmp_path / "d" / "broken_masks.tif"
    bad.write_bytes(b"this is not a tiff")
    dialog = NewProjectDialog(window)
    dialog.add_pair(image, bad)
    dialog.set_destination(tmp_path / "bad.svetlana")
    dialog.accept()
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=20000)  # an error dialog is shown
    qtbot.waitUntil(lambda: not dialog.job.running, timeout=5000)
    assert "broken_masks.tif" in shown_errors[0]
    assert dialog.result() != NewProjectDialog.DialogCode.Accepted
    assert not (tmp_path / "bad.svetlana").exists()


def test_opening_a_folder_that_is_not_a_project_shows_error(window, tmp_path, shown_errors):
    assert not window.open_project(tmp_path)
    assert "not a Svetlana project" in shown_errors[0]
    assert window.stack.currentIndex() == 0


def test_page_down_changes_image(window, tmp_path, make_pair):
    write_scene = make_pair
    from svetlana.core.usecases.setup import create_project

    a = write_scene(tmp_path / "d", "a", seed=1)
    b = write_scene(tmp_path / "d", "b", seed=2)
    window.set_project(create_project(tmp_path / "two", [(*a, "a"), (*b, "b")], ["x", "y"]))
    assert window.session.current_image == "a"
    window.annotation_tab.classes_panel.tree.setFocus()
    from PySide6.QtTest import QTest

    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.session.current_image == "b"
    assert window.image_box.currentText() == "b"
    QTest.keyClick(window, Qt.Key.Key_PageUp)
    assert window.session.current_image == "a"


def test_undo_redo(project_window, qtbot):
    win = project_window
    tab = win.annotation_tab
    first = tab.current
    qtbot.keyClick(win, "1")
    assert win.session.project.annotations.get("cells", first).class_name == "class 1"
    assert not win.isWindowModified()  # saved as it was made: nothing to mark
    win.undo_action.trigger()
    assert win.session.project.annotations.get("cells", first) is None
    win.redo_action.trigger()
    assert win.session.project.annotations.get("cells", first).class_name == "class 1"


def test_closing_releases_the_project_and_keeps_labels(project_window, qtbot, tmp_path):
    win = project_window
    first = win.annotation_tab.current
    qtbot.keyClick(win, "2")
    path = win.session.project.path
    win.close()
    assert not (path / ".lock").exists()
    with Project.open(path) as p:
        assert p.annotations.get("cells", first).class_name == "class 2"


def test_geometry_is_remembered(qtbot, settings):
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(760, 560)  # the offscreen screen is 800x600; the panels need ~680
    win.show()
    win.close()
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.size().width() == 760
    again.close()


def test_excepthook_turns_an_exception_into_a_dialog(window, shown_errors, monkeypatch):
    from svetlana.gui.errors import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_excepthook(lambda: window)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert shown_errors and "Something went wrong" in shown_errors[0]


def test_shortcuts_dialog_opens_with_question_mark(window, monkeypatch):
    from svetlana.gui import keymap

    opened = []
    monkeypatch.setattr(keymap.ShortcutsDialog, "exec", lambda self: opened.append(self) or 0)
    from PySide6.QtTest import QTest

    QTest.keyClick(window, "?", Qt.KeyboardModifier.ShiftModifier)
    assert opened


def test_gui_start_does_not_import_torch():
    code = "import sys, svetlana.gui.main_window, svetlana.gui.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_settings_are_injected_not_the_users(settings):
    assert isinstance(settings, QSettings)
    assert settings.format() == QSettings.Format.IniFormat


def test_closing_while_training_asks_then_stops_the_worker(qtbot, tmp_path, monkeypatch):
    """Closing during training asks; 'No' keeps training, 'Yes' stops it and leaves no thread."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox
    from tests.conftest import write_pair

    from svetlana.core.project.bundle import Project
    from svetlana.core.synthetic.easy import texture_scene
    from svetlana.gui.main_window import MainWindow

    scene = texture_scene(n_objects=30, shape=(256, 256), seed=0)
    ip, mp = write_pair(tmp_path / "in", "t", scene.image[0], scene.labels)
    project = Project.create(tmp_path / "p.svetlana", list(scene.class_names))
    project.add_image(ip, mp)
    ids = sorted(scene.classes)
    project.annotations.apply_labels(
        [("t", i, scene.class_names[scene.classes[i]]) for i in ids[:20]]
    )
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.set_project(project)
    window.show()
    tab = window.training_tab
    tab.epochs.setValue(500)  # long enough to still be running when we close
    answers = []

    def answer(*args, **kwargs):
        answers.append(args[2] if len(args) > 2 else "")
        return (
            QMessageBox.StandardButton.No if len(answers) == 1 else QMessageBox.StandardButton.Yes
        )

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer))
    job = tab.start_training()
    assert job is not None
    qtbot.waitUntil(lambda: window.session.busy, timeout=5000)
    window.close()
    assert len(answers) == 1 and "still running" in answers[0]
    assert window.isVisible() and job.running  # "No": nothing stopped
    window.close()
    assert len(answers) == 2
    assert job.cancelled  # "Yes": cancelled and its thread waited for
    qtbot.waitUntil(lambda: not job.running, timeout=2000)
    assert not (tmp_path / "p.svetlana" / ".lock").exists()
    assert Project.open(tmp_path / "p.svetlana", readonly=True).models.ids() == []


def test_add_images_reads_in_the_background_then_adds(project_window, qtbot, tmp_path, make_pair):
    """Adding images does not block the window: reading runs in a worker, then it appears."""
    win = project_window
    image, mask = make_pair(tmp_path / "more", name="second", seed=4)
    with qtbot.waitSignal(win.session.imagesChanged, timeout=20000):
        job = win.add_pairs_in_background([(image, mask, "second")])
        assert job is not None and win.session.busy  # returned at once; the worker reads
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert win.session.project.image_names == ("cells", "second")
    assert win.session.current_image == "second"


def test_add_images_with_a_bad_mask_shows_one_dialog_and_adds_nothing(
    project_window, qtbot, tmp_path, shown_errors
):
    import numpy as np
    import tifffile

    win = project_window
    tifffile.imwrite(tmp_path / "img.tif", np.zeros((64, 64), np.uint16))
    tifffile.imwrite(tmp_path / "bad_masks.tif", np.full((64, 64), 0.5, np.float32))
    job = win.add_pairs_in_background([(tmp_path / "img.tif", tmp_path / "bad_masks.tif", "x")])
    qtbot.waitUntil(lambda: not job.running, timeout=20000)
    assert len(shown_errors) == 1 and "bad_masks.tif" in shown_errors[0]
    assert win.session.project.image_names == ("cells",)


def test_a_project_opened_from_the_finder_while_running_is_shown(window, qtbot, tmp_path, pair):
    """macOS delivers a double-clicked document to the running app as a FileOpen event."""
    from PySide6.QtGui import QFileOpenEvent
    from PySide6.QtWidgets import QApplication

    from svetlana.core.project.bundle import Project
    from svetlana.gui.app import FileOpenFilter

    with Project.create(tmp_path / "other.svetlana", ["a", "b"]) as p:
        p.add_image(*pair)
    opener = FileOpenFilter(window)
    QApplication.instance().installEventFilter(opener)
    try:
        QApplication.sendEvent(
            QApplication.instance(),
            QFileOpenEvent(str(tmp_path / "other.svetlana" / "project.json")),
        )
        assert window.session.project is not None and window.session.project.name == "other"
    finally:
        QApplication.instance().removeEventFilter(opener)


def test_the_help_lists_the_key_map_and_the_menus_use_it(window):
    from svetlana.gui import keymap

    dialog = keymap.ShortcutsDialog(window)
    table = dialog.findChild(QTableWidget)
    shown = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert shown == keymap.help_rows()
    assert any(keys.startswith("1") and "Label" in what for keys, what in shown)
    undo = [s.toString() for s in window.undo_action.shortcuts()]
    assert undo == list(keymap.sequences("undo"))
    assert window.fit_action.shortcut().toString() == keymap.sequences("fit")[0]

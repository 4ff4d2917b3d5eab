"""Sizes a user can see and small things that surprised a first user (issue 16, points 4 and 6)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QScrollArea

from svetlana.core.usecases.predict import ImagePrediction


def _wheel(widget, steps: int = -1) -> None:
    """One real wheel notch over the middle of ``widget`` (delivered like the OS does)."""
    target = widget  # where a real wheel event ends up (the inner line edit passes it on)
    pos = QPointF(target.rect().center())
    ev = QWheelEvent(
        pos,
        QPointF(target.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(target, ev)


def _predict_everything_as(win, class_index: int) -> ImagePrediction:
    """Predictions as if a model had classified every object of the image (no training here)."""
    loaded = win.session.loaded()
    n = len(loaded.table)
    probs = np.full((n, 2), 0.2, np.float32)
    probs[:, class_index] = 0.8
    names = tuple(win.session.project.annotations.class_names)
    pred = ImagePrediction("cells", loaded.table, probs, names, np.full(n, 0.5, np.float32))
    win.session.set_predictions("model-1", {"cells": pred})
    return pred


# ---- size you can see ---------------------------------------------------------------------


def test_current_and_hovered_object_show_their_area(project_window, qtbot):
    win = project_window
    obj = win.annotation_tab.current
    loaded = win.session.loaded()
    area = int(loaded.table.area[loaded.table.rows(obj)[0]])
    assert f"area {area:,} px" in win.annotation_tab.current_panel.label.text()
    assert f"area {area:,} px" in win.selection_label.text()
    # hovering another object: its own area in the status bar
    other = int(next(i for i in loaded.table.ids if i != obj))
    row = loaded.table.rows(other)[0]
    cy, cx = loaded.table.centroid[row][-2:]
    win.view.fit()
    QApplication.processEvents()
    from PySide6.QtTest import QTest

    QTest.mouseMove(win.view.graphics.viewport(), win.view.map_image_to_widget(cx + 0.5, cy + 0.5))
    qtbot.waitUntil(lambda: f"object {other}" in win.hover_label.text(), timeout=2000)
    assert f"area {int(loaded.table.area[row]):,} px" in win.hover_label.text()


def test_sizes_and_scale_bar_are_in_micrometres_when_the_pixel_size_is_known(
    window, tmp_path, make_pair
):
    from svetlana.core.project.bundle import Project

    ip, mp = make_pair(tmp_path / "d")
    project = Project.create(tmp_path / "um.svetlana", classes=["a", "b"])
    project.add_image(ip, mp, name="cells", spacing=(0.5, 0.5))  # 0.5 µm per pixel
    window.set_project(project)
    loaded = window.session.loaded()
    assert loaded.spacing == (0.5, 0.5)
    obj = window.annotation_tab.current
    area = float(loaded.table.area[loaded.table.rows(obj)[0]]) * 0.25
    text = window.view.object_size(obj)
    assert text.startswith("area ") and text.endswith("µm²")
    assert abs(float(text.split()[1].replace(",", "")) - area) <= max(1.0, 0.01 * area)
    bar = window.view.scale_bar
    assert bar.isVisible() and bar.label().endswith(" µm")


def test_3d_objects_show_their_volume(window, tmp_path, make_3d):
    from svetlana.core.project.bundle import Project

    ip, mp = make_3d(tmp_path / "d")
    project = Project.create(tmp_path / "z.svetlana", classes=["a", "b"])
    project.add_image(ip, mp, name="stack", spacing=(2.0, 0.5, 0.5))
    window.set_project(project)
    obj = window.annotation_tab.current
    voxels = int(window.session.loaded().table.area[window.session.loaded().table.rows(obj)[0]])
    assert voxels == 3 * 16 * 16  # the cubes of the fixture
    assert window.view.object_size(obj) == f"volume {voxels * 0.5:g} µm³"
    assert f"volume {voxels * 0.5:g} µm³" in window.annotation_tab.current_panel.label.text()


def test_scale_bar_is_a_round_length_at_every_zoom(project_window, qtbot):
    win = project_window
    bar = win.view.scale_bar
    win.view.fit()
    QApplication.processEvents()
    first = bar.label()
    assert bar.isVisible() and first.endswith(" px")
    (x0, x1), _ = win.view.viewbox.viewRange()
    assert 0.05 * (x1 - x0) <= bar.size <= 0.2 * (x1 - x0)
    mantissa = float(first.split()[0]) / 10 ** np.floor(np.log10(float(first.split()[0])))
    assert round(mantissa, 6) in (1.0, 2.0, 5.0)
    win.view.focus_object(win.annotation_tab.current)  # zoomed in: a shorter bar
    QApplication.processEvents()
    assert float(bar.label().split()[0]) < float(first.split()[0])


def test_fixed_zoom_keeps_one_zoom_per_image_and_is_remembered(project_window, qtbot, settings):
    win = project_window
    view, tab = win.view, win.annotation_tab
    table = win.session.loaded().table
    nd = table.ndim
    extent = np.maximum(
        table.bbox[:, 2 * nd - 2] - table.bbox[:, nd - 2],
        table.bbox[:, 2 * nd - 1] - table.bbox[:, nd - 1],
    )
    small, large = int(table.ids[np.argmin(extent)]), int(table.ids[np.argmax(extent)])
    assert extent.max() > 1.3 * extent.min(), "the scene needs objects of different sizes"

    def width_for(obj):
        view.focus_object(obj)
        (x0, x1), _ = view.viewbox.viewRange()
        return x1 - x0

    assert not tab.fixed_zoom.isChecked()
    assert width_for(large) > width_for(small) * 1.2  # zoom follows each object
    qtbot.mouseClick(tab.fixed_zoom, Qt.MouseButton.LeftButton)
    assert tab.fixed_zoom.isChecked() and view.fixed_zoom
    assert width_for(large) == pytest.approx(width_for(small), rel=0.02)
    assert settings.value("view/fixed_zoom") in (True, "true")
    # a new window with the same settings starts with it on
    from svetlana.gui.main_window import MainWindow

    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.annotation_tab.fixed_zoom.isChecked() and again.view.fixed_zoom
    again.close()


# ---- polish ----------------------------------------------------------------------------------------


def test_wheel_changes_a_train_field_only_when_it_has_focus(project_window, qtbot):
    win = project_window
    train = win.training_tab
    win.tabs.setCurrentWidget(train)
    win.resize(1400, 700)  # the form is taller than the panel: it scrolls
    QApplication.processEvents()
    scroll = train.findChild(QScrollArea)
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0
    epochs, device = train.epochs, train.device
    e0, d0, s0 = epochs.value(), device.currentIndex(), bar.value()
    _wheel(epochs, -1)
    _wheel(device, -1)
    assert epochs.value() == e0 and device.currentIndex() == d0, (
        "unfocused fields stay as they were"
    )
    assert bar.value() > s0, "the wheel scrolled the panel instead"
    assert epochs.focusPolicy() == Qt.FocusPolicy.StrongFocus
    # clicked first (focused), the wheel changes the field as usual
    epochs.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(epochs.hasFocus, timeout=1000)
    _wheel(epochs, 1)
    assert epochs.value() == e0 + 1
    qtbot.waitUntil(lambda: train.device_job is None, timeout=60000)  # torch import, threaded


def test_a_correction_in_the_predict_tab_keeps_the_object_selected(project_window, qtbot):
    win = project_window
    _predict_everything_as(win, 0)
    win.tabs.setCurrentWidget(win.prediction_tab)
    loaded = win.session.loaded()
    obj = int(loaded.table.ids[5])
    row = loaded.table.rows(obj)[0]
    cy, cx = loaded.table.centroid[row][-2:]
    win.view.fit()
    QApplication.processEvents()
    qtbot.mouseClick(
        win.view.graphics.viewport(),
        Qt.MouseButton.LeftButton,
        pos=win.view.map_image_to_widget(cx + 0.5, cy + 0.5),
    )
    assert win.session.selection == (obj,)
    (x0, x1), _ = win.view.viewbox.viewRange()
    qtbot.keyClick(win, "2")  # the model said class 1
    lab = win.session.project.annotations.get("cells", obj)
    assert lab.class_name == "class 2" and lab.source == "correction"
    assert win.session.selection == (obj,), "still the corrected object: no jump"
    assert win.view.viewbox.viewRange()[0] == pytest.approx([x0, x1]), "the view did not move"
    # in the Annotate tab a label still goes on to the next object
    win.tabs.setCurrentWidget(win.annotation_tab)
    cur = win.annotation_tab.current
    qtbot.keyClick(win, "1")
    assert win.annotation_tab.current != cur


def test_undo_and_redo_return_to_the_undone_object(project_window, qtbot):
    win = project_window
    tab = win.annotation_tab
    first = tab.current
    qtbot.keyClick(win, "1")
    second = tab.current
    qtbot.keyClick(win, "2")
    third = tab.current
    assert len({first, second, third}) == 3
    qtbot.keyClick(win, "z", Qt.KeyboardModifier.ControlModifier)
    assert win.session.project.annotations.get("cells", second) is None
    assert tab.current == second and win.session.selection == (second,)
    qtbot.keyClick(win, "z", Qt.KeyboardModifier.ControlModifier)
    assert tab.current == first
    qtbot.keyClick(
        win, "z", Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert tab.current == first and win.session.project.annotations.get("cells", first)
    # the next key labels the object Undo showed
    qtbot.keyClick(win, "2")
    assert win.session.project.annotations.get("cells", first).class_name == "class 2"


def test_no_modified_star_because_everything_is_saved(project_window, qtbot):
    win = project_window
    title = win.windowTitle()
    assert "*" not in title and "[*]" not in title
    qtbot.keyClick(win, "1")
    assert not win.isWindowModified() and "*" not in win.windowTitle()


def test_the_export_picker_creates_a_typed_new_folder(qtbot, tmp_path):
    from svetlana.gui.widgets.common import FolderDialog

    dialog = FolderDialog(None, "Export to", tmp_path)
    dialog.setOption(FolderDialog.Option.DontUseNativeDialog, True)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    edit = dialog.findChild(QLineEdit, "fileNameEdit")
    edit.setText("results-new")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2000)
    assert (tmp_path / "results-new").is_dir()
    assert dialog.result() == FolderDialog.DialogCode.Accepted
    assert dialog.selectedFiles() == [str(tmp_path / "results-new")]


def test_validation_estimate_and_plurals_in_the_model_card():
    from svetlana.gui.widgets.model_card import format_card

    html = format_card(
        {"id": "m", "metrics": {"accuracy": 5 / 7, "n_val": 7}, "threads": 1, "classes": ["a"]}
    )
    assert "71 % on 7 validation objects (95 % interval 36–92 %)" in html
    assert "1 thread<" in html and "thread(s)" not in html


def test_new_project_dialog_asks_for_axes_when_shapes_do_not_match(qtbot, tmp_path, shown_errors):
    import tifffile
    from PySide6.QtWidgets import QDialogButtonBox

    from svetlana.gui.dialogs.new_project import AXES_COLUMN, NewProjectDialog

    mask = np.zeros((5, 32, 32), np.uint16)
    mask[1:3, 4:10, 4:10] = 1
    mask[2:4, 20:28, 18:30] = 2
    image = np.random.default_rng(0).random((32, 5, 32, 2)).astype(np.float32)  # Y Z X C
    tifffile.imwrite(tmp_path / "odd.tif", image)
    tifffile.imwrite(tmp_path / "odd_masks.tif", mask)
    dialog = NewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.add_pair(tmp_path / "odd.tif", tmp_path / "odd_masks.tif")
    dialog.set_destination(tmp_path / "odd.svetlana")
    assert dialog.table.isColumnHidden(AXES_COLUMN)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=10000)
    assert "does not match" in shown_errors[0]
    qtbot.waitUntil(lambda: not dialog.table.isColumnHidden(AXES_COLUMN), timeout=2000)
    assert dialog.project is None and not (tmp_path / "odd.svetlana").exists()
    assert "Type the image's axes" in dialog.status.text() and dialog.status.isVisible()
    # the user types the axes into the field that appeared, and presses Enter to retry
    assert dialog.axes_edit.isVisible() and dialog.axes_edit.hasFocus()
    qtbot.keyClicks(dialog.axes_edit, "yzxc")
    assert dialog.pairs_box.axes_of(0) == "YZXC"  # also shown in the table's Axes column
    qtbot.keyClick(dialog.axes_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.project is not None, timeout=10000)
    loaded = dialog.project.load("odd")
    assert loaded.image.shape == (2, 5, 32, 32) and len(shown_errors) == 1
    dialog.project.close()


def _cut_texts(root) -> list[str]:
    """Visible texts that do not fit their widget (buttons, check boxes, combo items, fields)."""
    from PySide6.QtWidgets import QAbstractButton, QComboBox

    cut = []
    for w in root.findChildren(QAbstractButton):
        if w.isVisible() and w.text() and w.width() < w.sizeHint().width():
            cut.append(f"button {w.text()!r}: {w.width()} < {w.sizeHint().width()} px")
    for w in root.findChildren(QComboBox):
        if not w.isVisible():
            continue
        for k in range(w.count()):
            need = w.fontMetrics().horizontalAdvance(w.itemText(k)) + 32  # + frame and arrow
            if w.width() < need:
                cut.append(f"combo item {w.itemText(k)!r}: {w.width()} < {need} px")
    for w in root.findChildren(QLineEdit):
        text = w.text() or w.placeholderText()
        if w.isVisible() and text and w.width() < w.fontMetrics().horizontalAdvance(text) + 12:
            cut.append(f"field {text!r}: {w.width()} px")
    return cut


def test_no_text_is_cut_off_at_1600_by_1000(project_window, qtbot):
    win = project_window
    win.resize(1600, 1000)
    # the device list as after detection on a machine with a GPU (its longest texts)
    win.training_tab._on_devices({"cpu": True, "cuda": True, "mps": False})
    problems = []
    for i in range(win.tabs.count()):
        win.tabs.setCurrentIndex(i)
        QApplication.processEvents()
        problems += [f"{win.tabs.tabText(i)}: {p}" for p in _cut_texts(win.tabs.widget(i))]
    qtbot.waitUntil(lambda: win.training_tab.device_job is None, timeout=60000)
    assert not problems, "\n".join(problems)


def test_add_images_reopens_with_the_axes_field_after_a_shape_mismatch(
    window, qtbot, tmp_path, shown_errors, monkeypatch, make_3d
):
    import tifffile

    from svetlana.core.usecases.setup import create_project
    from svetlana.gui.dialogs import new_project as new_project_dialog

    win = window  # a 3D project: a project never mixes 2D and 3D images
    ip, mp = make_3d(tmp_path / "d")
    win.set_project(create_project(tmp_path / "s.svetlana", [(ip, mp, "stack")], ["a", "b"]))
    mask = np.zeros((5, 32, 32), np.uint16)
    mask[1:3, 4:10, 4:10] = 1
    tifffile.imwrite(tmp_path / "odd.tif", np.zeros((32, 5, 32, 2), np.float32))  # Y Z X C
    tifffile.imwrite(tmp_path / "odd_masks.tif", mask)
    seen = []

    def user_types_axes(dialog):  # the reopened dialog, as the user would fill it
        seen.append((dialog.axes_edit.isVisibleTo(dialog), dialog.pairs()))
        dialog.axes_edit.setText("YZXC")
        return 1

    monkeypatch.setattr(new_project_dialog.NewProjectDialog, "exec", user_types_axes)
    job = win.add_pairs_in_background([(tmp_path / "odd.tif", tmp_path / "odd_masks.tif", "odd")])
    qtbot.waitUntil(lambda: "odd" in win.session.project.image_names, timeout=30000)
    assert len(shown_errors) == 1 and "does not match" in shown_errors[0]
    assert seen == [(True, [(tmp_path / "odd.tif", tmp_path / "odd_masks.tif", "odd")])]
    assert win.session.project.load("odd").image.shape == (2, 5, 32, 32)
    assert job is not None
    qtbot.waitUntil(lambda: not win.image_actions.add_job.running, timeout=10000)


def test_undo_on_another_image_goes_back_to_that_image_and_object(
    window, qtbot, tmp_path, make_pair
):
    from svetlana.core.usecases.setup import create_project

    a = make_pair(tmp_path / "a", "a", seed=1)
    b = make_pair(tmp_path / "b", "b", seed=2)
    window.set_project(create_project(tmp_path / "two", [(*a, "a"), (*b, "b")], ["x", "y"]))
    obj = window.annotation_tab.current
    qtbot.keyClick(window, "1")
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.session.current_image == "b"
    qtbot.keyClick(window, "z", Qt.KeyboardModifier.ControlModifier)
    assert window.session.current_image == "a" and window.image_box.currentText() == "a"
    assert window.annotation_tab.current == obj and window.session.selection == (obj,)
    assert window.session.project.annotations.get("a", obj) is None


def test_export_buttons_write_into_a_folder_typed_in_the_picker(
    project_window, qtbot, tmp_path, monkeypatch
):
    """Predict ▸ Export ▸ Class masks… and Keep these classes ▸ Export: a new folder's name is enough."""
    from svetlana.gui.dialogs.keep_classes import KeepClassesDialog
    from svetlana.gui.widgets import common as widgets

    win = project_window
    _predict_everything_as(win, 0)
    typed = iter(["results-new", "filtered-new"])

    def user_types_a_new_name(dialog):
        assert dialog.directory().absolutePath() == str(tmp_path)  # next to the project
        dialog.findChild(QLineEdit, "fileNameEdit").setText(next(typed))
        dialog.accept()
        return 1

    monkeypatch.setattr(widgets.FolderDialog, "exec", user_types_a_new_name)
    tab = win.prediction_tab
    win.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.exportFinished, timeout=60000):  # written in the background
        tab.export_menu.actions_by_kind["masks"].trigger()  # Export ▸ Class masks and CSV…
    qtbot.waitUntil(lambda: not win.session.busy)
    assert (tmp_path / "results-new" / "predictions.csv").is_file()
    dialog = tab.exports.open_keep_dialog()
    assert isinstance(dialog, KeepClassesDialog)
    with qtbot.waitSignal(dialog.exported, timeout=60000):  # written in the background
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert any((tmp_path / "filtered-new").glob("*_filtered.tif"))
    dialog.close()

"""Labelling with real key presses and clicks: Random, Click, rectangle, Uncertain, classes, 3D, real data."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from conftest import DATA  # noqa: I001  (tests/gui/conftest.py, which pytest imported as `conftest`)
from svetlana.core.project.bundle import Project


def _centroid(win, obj):
    loaded = win.session.loaded()
    c = loaded.table.centroid[loaded.table.rows(obj)[0]]
    return float(c[-1]) + 0.5, float(c[-2]) + 0.5  # x, y at the pixel centre


def _widget_pos(win, x, y):
    QApplication.processEvents()
    return win.view.map_image_to_widget(x, y)


def _send(widget, kind, pos, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(
        kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), button, buttons, modifiers
    )
    QApplication.sendEvent(widget, ev)


def test_random_mode_labels_with_number_keys_and_journals_to_disk(project_window, qtbot):
    win = project_window
    tab = win.annotation_tab
    assert tab.mode == "random"
    seen = []
    for key in "1212":
        seen.append(tab.current)
        assert win.session.selection == (tab.current,)
        qtbot.keyClick(win, key)
    assert len(set(seen)) == 4, "each key goes on to a new object"
    ann = win.session.project.annotations
    assert [ann.get("cells", o).class_name for o in seen] == [
        "class 1",
        "class 2",
        "class 1",
        "class 2",
    ]
    # journalled as it was made: on disk before any save
    journal = win.session.project.path / "annotations.journal"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    labelled = {(r["object"], r["class"]) for r in records if r["op"] == "label"}
    assert (seen[0], "class 1") in labelled and (seen[3], "class 2") in labelled
    assert "4 of 30" in tab.progress.label.text() or (
        qtbot.waitUntil(lambda: "4 of 30" in tab.progress.label.text()) is None
    )


def test_random_order_is_stable_and_skip_back_clear(project_window, qtbot):
    win = project_window
    tab = win.annotation_tab
    first = tab.current
    qtbot.keyClick(win, Qt.Key.Key_Space)
    second = tab.current
    assert second != first
    qtbot.keyClick(win, Qt.Key.Key_Left)
    assert tab.current == first
    qtbot.keyClick(win, "1")
    assert win.session.project.annotations.get("cells", first) is not None
    qtbot.keyClick(win, Qt.Key.Key_Left)
    assert tab.current == first
    qtbot.keyClick(win, "0")
    assert win.session.project.annotations.get("cells", first) is None
    # the same project reopened gives the same first object
    path = win.session.project.path
    win.close_project()
    assert win.open_project(path)
    assert win.annotation_tab.current == first


def test_keys_work_when_a_list_has_focus(project_window, qtbot):
    win = project_window
    win.annotation_tab.classes_panel.tree.setFocus()
    obj = win.annotation_tab.current
    QTest.keyClick(win.annotation_tab.classes_panel.tree, "2")
    assert win.session.project.annotations.get("cells", obj).class_name == "class 2"


def test_click_mode_selects_object_under_mouse(project_window, qtbot):
    win = project_window
    win.annotation_tab.set_mode("click")
    assert win.session.selection == ()
    loaded = win.session.loaded()
    obj = int(loaded.table.ids[5])
    win.view.focus_object(obj)
    pos = _widget_pos(win, *_centroid(win, obj))
    qtbot.mouseClick(win.view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert win.session.selection == (obj,)
    qtbot.keyClick(win, "2")
    assert win.session.project.annotations.get("cells", obj).class_name == "class 2"


def test_rectangle_selection_labels_several_objects_in_one_undo_step(project_window, qtbot):
    win = project_window
    win.annotation_tab.set_mode("click")
    loaded = win.session.loaded()
    h, w = loaded.labels.shape
    win.view.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0)
    viewport = win.view.graphics.viewport()
    a = _widget_pos(win, 0, 0)
    b = _widget_pos(win, w / 2, h / 2)
    c = QPointF((a.x() + b.x()) / 2, (a.y() + b.y()) / 2)
    left = Qt.MouseButton.LeftButton
    _send(viewport, QEvent.Type.MouseButtonPress, a, left)
    _send(viewport, QEvent.Type.MouseMove, c, left)
    _send(viewport, QEvent.Type.MouseMove, b, left)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)
    cy, cx = loaded.table.centroid[:, 0], loaded.table.centroid[:, 1]
    expected = set(loaded.table.ids[(cy < h / 2) & (cx < w / 2)].tolist())
    selected = set(win.session.selection)
    assert len(selected) >= 2
    assert selected <= expected and len(expected - selected) <= 1  # pixel rounding at the border
    steps = win.session.undo_stack.count()
    qtbot.keyClick(win, "1")
    assert win.session.undo_stack.count() == steps + 1
    ann = win.session.project.annotations
    assert all(ann.get("cells", o).class_name == "class 1" for o in selected)
    win.undo_action.trigger()
    assert all(ann.get("cells", o) is None for o in selected)
    win.redo_action.trigger()
    assert all(ann.get("cells", o) is not None for o in selected)


def test_shift_drag_selects_a_rectangle_in_random_mode(project_window):
    win = project_window
    loaded = win.session.loaded()
    h, w = loaded.labels.shape
    win.view.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0)
    viewport = win.view.graphics.viewport()
    a, b = _widget_pos(win, 0, 0), _widget_pos(win, w, h)
    shift, left = Qt.KeyboardModifier.ShiftModifier, Qt.MouseButton.LeftButton
    _send(viewport, QEvent.Type.MouseButtonPress, a, left, shift)
    _send(viewport, QEvent.Type.MouseMove, (a + b) / 2, left, shift)
    _send(viewport, QEvent.Type.MouseMove, b, left, shift)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton, shift)
    assert len(win.session.selection) == len(loaded.table)


def test_hover_shows_object_id_in_status_bar(project_window):
    win = project_window
    obj = win.annotation_tab.current
    pos = _widget_pos(win, *_centroid(win, obj))
    _send(win.view.graphics.viewport(), QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton)
    assert f"object {obj}" in win.hover_label.text()
    assert "not labelled" in win.hover_label.text()


def test_uncertain_mode_without_predictions_says_what_to_do(project_window):
    win = project_window
    win.annotation_tab.set_mode("uncertain")
    assert win.annotation_tab.current is None
    assert "predict first" in win.annotation_tab.chooser.hint.text()


def test_uncertain_mode_follows_uncertainty(project_window, qtbot):
    from svetlana.core.usecases.predict import ImagePrediction

    win = project_window
    loaded = win.session.loaded()
    n = len(loaded.table)
    probs = np.full((n, 2), 0.5, np.float32)
    probs[:, 0] = np.linspace(0.5, 1.0, n)
    probs[:, 1] = 1 - probs[:, 0]
    unc = 1 - probs.max(axis=1)
    pred = ImagePrediction("cells", loaded.table, probs, ("class 1", "class 2"), unc)
    win.session.set_predictions("m", {"cells": pred})
    win.annotation_tab.set_mode("uncertain")
    assert win.annotation_tab.current == int(loaded.table.ids[0])
    qtbot.keyClick(win, "2")  # a label that disagrees with the prediction is a correction
    assert (
        win.session.project.annotations.get("cells", int(loaded.table.ids[0])).source
        == "correction"
    )
    assert win.annotation_tab.current == int(loaded.table.ids[1])


def test_3d_navigation_with_slider_and_keys(window, tmp_path, make_3d, qtbot):
    from svetlana.core.usecases.setup import create_project

    ip, mp = make_3d(tmp_path / "d3")
    window.set_project(create_project(tmp_path / "stack", [(ip, mp, "stack")], ["a", "b"]))
    view = window.view
    assert view.ndim == 3 and view.z_slider.isVisible()
    obj = window.annotation_tab.current
    loaded = window.session.loaded()
    zc = int(round(loaded.table.centroid[loaded.table.rows(obj)[0], 0]))
    assert view.z == zc, "the current object's slice is shown"
    view.z_slider.setValue(0)
    assert view.z == 0
    QTest.keyClick(window, Qt.Key.Key_Period)
    QTest.keyClick(window, Qt.Key.Key_Up)
    assert view.z == 2
    QTest.keyClick(window, Qt.Key.Key_Comma)
    assert view.z == 1 and view.z_slider.value() == 1
    # the overlay shows the slice's objects: object ids on slice 1 are those of z 1..3
    assert view.object_at(16, 16) == int(loaded.labels[1, 16, 16]) != 0
    QTest.keyClick(window, "2")
    assert window.session.project.annotations.get("stack", obj).class_name == "b"


def test_real_stardist_image(window, tmp_path, qtbot):
    img, mask = DATA / "stardist" / "img2d.tif", DATA / "stardist" / "mask2d.tif"
    from svetlana.core.usecases.setup import create_project

    window.set_project(
        create_project(tmp_path / "nuclei", [(img, mask, "nuclei")], ["round", "other"])
    )
    firsts = []
    for key in "1121":
        firsts.append(window.annotation_tab.current)
        qtbot.keyClick(window, key)
    path = window.session.project.path
    window.close()
    with Project.open(path) as p:
        assert p.annotations.counts() == {"round": 3, "other": 1}
        assert p.annotations.get("nuclei", firsts[2]).class_name == "other"

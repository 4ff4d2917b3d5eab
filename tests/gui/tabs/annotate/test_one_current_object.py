"""One current object: a class key labels the object shown as current, in every view
(Annotate, Review list, gallery), and each view highlights it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from svetlana.gui.widgets.image_view import SELECTED_RGBA

LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 120_000
CTRL = Qt.KeyboardModifier.ControlModifier


def _truth() -> dict[int, str]:
    from svetlana.core.synthetic.easy import texture_scene

    scene = texture_scene(n_objects=30, shape=(256, 256), seed=0)
    return {int(o): f"class {int(c) + 1}" for o, c in scene.classes.items()}


def _rows(tree) -> list[int]:
    return [int(tree.topLevelItem(i).text(0)) for i in range(tree.topLevelItemCount())]


def _click_row(qtbot, tree, obj: int) -> None:
    item = tree.topLevelItem(_rows(tree).index(obj))
    qtbot.mouseClick(tree.viewport(), LEFT, pos=tree.visualItemRect(item).center())


def _key(cls: str) -> str:
    return cls[-1]  # "class 1" -> "1"


@pytest.fixture
def reviewed(project_window, qtbot):
    """Every object labelled with its true class but one flipped; the check has run."""
    win, tab = project_window, project_window.annotation_tab
    truth = _truth()
    flipped = sorted(truth)[3]
    wrong = "class 2" if truth[flipped] == "class 1" else "class 1"
    session = win.session
    for c in ("class 1", "class 2"):
        session.label([o for o, t in truth.items() if t == c and o != flipped][:8], c)
    session.label([flipped], wrong)

    def fitted():
        r = tab.live.result
        assert r is not None and r.fast is not None and not tab.live.running

    qtbot.waitUntil(fitted, timeout=WAIT_MS)
    qtbot.mouseClick(tab.review.check_button, LEFT)
    qtbot.waitUntil(lambda: tab.review.tree.topLevelItemCount() > 0, timeout=WAIT_MS)
    return win, truth, flipped, wrong


def test_a_class_key_labels_the_object_shown_not_the_review_row(reviewed, qtbot):
    win, truth, _flipped, _wrong = reviewed
    tab, tree, session = win.annotation_tab, win.annotation_tab.review.tree, win.session
    row_obj = tab.review.current_object()
    assert row_obj is not None and session.selection == (row_obj,)  # the row's object shown
    row_label = session.project.annotations.get("cells", row_obj).class_name
    # The report's steps: Click, then Random: a new object is shown as current.
    qtbot.mouseClick(tab.chooser.mode_buttons["click"], LEFT)
    qtbot.mouseClick(tab.chooser.mode_buttons["random"], LEFT)
    shown = tab.current
    assert shown is not None and shown != row_obj
    assert f"object {shown}" in tab.current_panel.label.text()
    assert tab.review.current_object() is None  # no row highlighted: it is not current
    assert win.view._highlight == (shown,)
    tree.setFocus()  # even with the focus in the list
    other = "class 1" if row_label == "class 2" else "class 2"
    qtbot.keyClick(win, _key(other))
    assert session.project.annotations.get("cells", shown).class_name == other
    assert session.project.annotations.get("cells", row_obj).class_name == row_label
    assert tab.current != shown  # Random moved on


def test_relabelling_a_review_row_moves_on_and_undo_brings_it_back(reviewed, qtbot):
    win, truth, flipped, wrong = reviewed
    tab, tree, session = win.annotation_tab, win.annotation_tab.review.tree, win.session
    assert flipped in _rows(tree)
    n = len(_rows(tree))
    _click_row(qtbot, tree, flipped)
    assert session.selection == (flipped,) and tab.review.current_object() == flipped
    assert f"class: {wrong}" in tab.current_panel.label.text()
    qtbot.keyClick(tree, _key(truth[flipped]))
    assert session.project.annotations.get("cells", flipped).class_name == truth[flipped]
    assert flipped not in _rows(tree)
    if n > 1:  # the next row is the current object now, highlighted in the list
        assert session.selection == (tab.review.current_object(),)
        assert "judged likely wrong" in tab.review.status.text()
    else:
        assert "reviewed" in tab.review.status.text() and not tree.isVisible()
        assert f"class: {truth[flipped]}" in tab.current_panel.label.text()
    qtbot.keyClick(win, Qt.Key.Key_Z, CTRL)  # the relabelling undone: its row is back
    assert session.project.annotations.get("cells", flipped).class_name == wrong
    assert flipped in _rows(tree) and len(_rows(tree)) == n
    assert session.selection == (flipped,) and f"class: {wrong}" in tab.current_panel.label.text()


def test_keep_dismisses_the_current_row_only(reviewed, qtbot):
    win, _truth_, _flipped, _wrong = reviewed
    tab, tree, session = win.annotation_tab, win.annotation_tab.review.tree, win.session
    rows = _rows(tree)
    obj = rows[0]
    before = session.project.annotations.get("cells", obj)
    _click_row(qtbot, tree, obj)
    qtbot.mouseClick(tab.review.keep_button, LEFT)
    assert obj not in _rows(tree) and session.project.annotations.get("cells", obj) == before
    if len(rows) == 1:
        assert "reviewed" in tab.review.status.text()
    # K with a current object that is not a row changes nothing in the list
    qtbot.mouseClick(tab.chooser.mode_buttons["click"], LEFT)
    remaining = _rows(tree)
    qtbot.keyClick(win, "k")
    assert _rows(tree) == remaining


def test_the_gallery_highlights_the_current_object_and_labels_only_it(project_window, qtbot):
    from svetlana.gui.dialogs.gallery import RANDOM

    tab, session = project_window.annotation_tab, project_window.session
    qtbot.mouseClick(tab.gallery_button, LEFT)
    gallery = tab.gallery
    qtbot.waitExposed(gallery)
    outside = tab.current
    session.label([outside], "class 2")  # labelled: not among the Random thumbnails
    gallery.set_source(RANDOM)
    assert outside not in gallery.ids
    first = gallery.ids[0]
    assert session.selection == (first,) and gallery.current_object() == first
    qtbot.keyClick(gallery, "2")
    assert session.project.annotations.get("cells", first).class_name == "class 2"
    second = gallery.ids[1]
    assert session.selection == (second,) and gallery.current_object() == second
    # Another view makes another object current: the gallery's highlight follows it.
    fourth = gallery.ids[3]
    tab.go_to(fourth)
    assert gallery.current_object() == fourth
    qtbot.keyClick(gallery, "1")
    assert session.project.annotations.get("cells", fourth).class_name == "class 1"
    assert session.project.annotations.get("cells", second) is None
    # An object not in the gallery made current: no thumbnail is highlighted and a key in
    # the gallery labels nothing.
    tab.go_to(outside)
    assert gallery.current_object() is None
    qtbot.keyClick(gallery, "1")
    assert session.project.annotations.get("cells", outside).class_name == "class 2"
    assert "No thumbnail" in gallery.help.text()
    gallery.close()


def test_after_page_down_the_current_object_is_outlined(window, tmp_path, make_pair, qtbot):
    from svetlana.core.usecases.setup import create_project

    a = make_pair(tmp_path / "a", "one", seed=0)
    b = make_pair(tmp_path / "b", "two", seed=1)
    project = create_project(
        tmp_path / "p.svetlana", [(a[0], a[1], "one"), (b[0], b[1], "two")], ["x", "y"]
    )
    window.set_project(project)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.session.current_image == "two"
    obj = window.annotation_tab.current
    assert obj is not None and window.session.selection == (obj,)
    assert window.view._highlight == (obj,)
    window.view.flush()
    rows = window.view._index_of([obj])
    assert tuple(window.view.overlay.line[rows[0]]) == SELECTED_RGBA


def test_keep_is_greyed_out_until_a_listed_row_is_current(project_window, qtbot):
    """Keep acts on a row of the Review list: before a check, or with an object that is not
    listed, the button is greyed out and its tooltip says what to do, instead of doing nothing."""
    win, tab = project_window, project_window.annotation_tab
    keep = tab.review.keep_button
    assert not keep.isEnabled() and "Find suspicious labels" in keep.toolTip()
    truth = _truth()
    flipped = sorted(truth)[3]
    for c in ("class 1", "class 2"):
        win.session.label([o for o, t in truth.items() if t == c and o != flipped][:8], c)
    win.session.label([flipped], "class 2" if truth[flipped] == "class 1" else "class 1")

    def fitted():
        r = tab.live.result
        assert r is not None and r.fast is not None and not tab.live.running

    qtbot.waitUntil(fitted, timeout=WAIT_MS)
    qtbot.mouseClick(tab.review.check_button, LEFT)
    tree = tab.review.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() > 0, timeout=WAIT_MS)
    assert keep.isEnabled() and "remove its row" in keep.toolTip()  # the first row is current
    qtbot.mouseClick(tab.chooser.mode_buttons["click"], LEFT)
    qtbot.mouseClick(tab.chooser.mode_buttons["random"], LEFT)  # an object that is not listed
    assert tab.review.current_object() is None and not keep.isEnabled()
    obj = _rows(tree)[0]
    _click_row(qtbot, tree, obj)
    assert keep.isEnabled()
    qtbot.mouseClick(keep, LEFT)
    assert obj not in _rows(tree)

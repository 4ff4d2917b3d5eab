"""Live predictions, Suggest mode, Review labels and the Gallery, driven by real key presses."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from svetlana.gui.tabs.annotate import SUGGEST

pytestmark = pytest.mark.gui

WAIT_MS = 120_000  # measuring and a first forest on a busy CI machine


def truth_of(seed: int = 0) -> dict[int, str]:
    """The true class name of every object of conftest's write_scene (class 1 / class 2)."""
    from svetlana.core.synthetic.easy import texture_scene

    scene = texture_scene(n_objects=30, shape=(256, 256), seed=seed)
    return {int(o): f"class {int(c) + 1}" for o, c in scene.classes.items()}


def wait_live(qtbot, tab, n_labels: int) -> None:
    def fitted():
        r = tab.live.result
        assert r is not None and r.fast is not None and r.fast.n_labels == n_labels
        assert not tab.live.running

    qtbot.waitUntil(fitted, timeout=WAIT_MS)


def press_labels(qtbot, window, n: int, truth: dict[int, str]) -> list[int]:
    """Label ``n`` objects with their true class by pressing 1/2 on the current object."""
    tab = window.annotation_tab
    done = []
    for _ in range(n):
        obj = tab.current
        assert obj is not None
        qtbot.keyClick(window, "1" if truth[obj] == "class 1" else "2")
        done.append(obj)
    return done


def test_live_predictions_follow_the_labels_and_can_be_switched_off(project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    truth = truth_of()
    assert tab.live_box.toggle.isChecked()  # on by default
    labelled = press_labels(qtbot, win, 8, truth)
    if len({truth[o] for o in labelled}) < 2:
        pytest.skip("the random order gave one class in 8 labels")
    wait_live(qtbot, tab, 8)
    preview = win.session.view_options["live"]
    assert preview is not None and len(preview.ids) == 30
    text = tab.live_box.summary.text()
    assert "class 1:" in text and "class 2:" in text and "Accuracy estimate" in text
    # The trained model of the Training tab is untouched: nothing was saved.
    assert win.session.project.models.ids() == []
    tab.live_box.toggle.setChecked(False)
    assert win.session.view_options["live"] is None and tab.live_box.summary.text() == "Off."


def test_suggest_mode_offers_the_suggestions_and_never_a_labelled_object(project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    truth = truth_of()
    session = win.session
    by_class = {c: [o for o, t in truth.items() if t == c] for c in ("class 1", "class 2")}
    session.label(by_class["class 1"][:3], "class 1")
    session.label(by_class["class 2"][:3], "class 2")
    tab.set_mode(SUGGEST)
    wait_live(qtbot, tab, 6)
    qtbot.waitUntil(lambda: tab.current is not None, timeout=WAIT_MS)
    suggested = [int(o) for o in tab.live.result.suggested]
    press_labels(qtbot, win, 1, truth)  # the object shown before the suggestions came
    assert tab.current in suggested[:2]  # the next comes from them (most useful first)
    seen = press_labels(qtbot, win, 5, truth)
    labelled = set(session.project.annotations.for_image("cells"))
    assert len(set(seen)) == 5 and tab.current not in labelled


def test_review_lists_a_flipped_label_a_key_relabels_it_undoably(project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    truth = truth_of()
    session = win.session
    flipped = sorted(truth)[3]
    wrong = "class 2" if truth[flipped] == "class 1" else "class 1"
    for c in ("class 1", "class 2"):
        session.label([o for o, t in truth.items() if t == c and o != flipped], c)
    session.label([flipped], wrong)
    wait_live(qtbot, tab, 30)
    tab.review.check_button.click()
    tree = tab.review.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() > 0, timeout=WAIT_MS)
    rows = [int(tree.topLevelItem(i).text(0)) for i in range(tree.topLevelItemCount())]
    assert flipped in rows
    tree.setCurrentItem(tree.topLevelItem(rows.index(flipped)))
    assert session.selection == (flipped,)  # the row jumped to its object
    tree.setFocus()
    qtbot.keyClick(tree, "1" if truth[flipped] == "class 1" else "2")
    assert session.project.annotations.get("cells", flipped).class_name == truth[flipped]
    assert flipped not in [
        int(tree.topLevelItem(i).text(0)) for i in range(tree.topLevelItemCount())
    ]
    session.undo_stack.undo()
    assert session.project.annotations.get("cells", flipped).class_name == wrong
    # Keep dismisses a row without changing its label.
    if tree.topLevelItemCount():
        tree.setCurrentItem(tree.topLevelItem(0))
        obj = int(tree.topLevelItem(0).text(0))
        before = session.project.annotations.get("cells", obj)
        n = tree.topLevelItemCount()
        tab.review.keep_button.click()
        assert tree.topLevelItemCount() == n - 1
        assert session.project.annotations.get("cells", obj) == before


def test_gallery_keys_label_the_highlighted_thumbnail_and_move_on(project_window, qtbot):
    from svetlana.gui.dialogs.gallery import PREDICTED, RANDOM

    win, tab = project_window, project_window.annotation_tab
    session = win.session
    gallery = tab.open_gallery()
    qtbot.waitExposed(gallery)
    gallery.set_source(RANDOM)
    assert len(gallery.ids) == 30 and gallery.tiles[0].pixmap() is not None
    first, second = gallery.ids[0], gallery.ids[1]
    assert session.selection == (first,)  # the main view follows the highlight
    qtbot.keyClick(gallery, "2")
    assert session.project.annotations.get("cells", first).class_name == "class 2"
    assert gallery.current_object() == second and session.selection == (second,)
    qtbot.keyClick(gallery, Qt.Key.Key_Right)
    qtbot.keyClick(gallery, "1")
    assert session.project.annotations.get("cells", gallery.ids[2]).class_name == "class 1"
    # A predicted class, least confident first, once the live forest has two classes.
    session.label([gallery.ids[3]], "class 1")
    wait_live(qtbot, tab, 3)
    gallery.set_source(PREDICTED + "class 1")
    r = tab.live.result
    conf = {int(i): float(c) for i, c in zip(r.table.ids, r.fast.confidence, strict=True)}
    got = [conf[o] for o in gallery.ids]
    assert got == sorted(got)
    labelled = set(session.project.annotations.for_image("cells"))
    assert not set(gallery.ids) & labelled
    gallery.close()

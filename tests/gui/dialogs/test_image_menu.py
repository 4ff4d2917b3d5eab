"""File ▸ Remove image… and Set voxel size…, used as a user does: menu, question, spin boxes."""

from __future__ import annotations

from tests.gui.modal import click_button, when_modal_opens


def _label_two(window):
    ids = window.session.loaded().table.ids
    window.session.label([int(ids[0]), int(ids[1])], "class 1")


def test_removing_an_image_with_labels_asks_and_no_keeps_everything(project_window, qtbot):
    win = project_window
    _label_two(win)
    seen = when_modal_opens(lambda d: click_button(d, "No"))
    win.remove_image_action.trigger()
    assert seen and "2 labels (class 1: 2)" in seen.texts[0]
    assert win.session.project.image_names == ("cells",)
    assert win.session.project.annotations.counts()["class 1"] == 2


def test_removing_the_last_image_after_yes_empties_the_window_and_the_bundle(
    project_window, qtbot, tmp_path, make_pair
):
    win = project_window
    win.add_pairs_in_background([(*make_pair(tmp_path / "more", "second", seed=2), "second")])
    qtbot.waitUntil(lambda: win.image_box.count() == 2, timeout=20000)
    win.session.set_current_image("cells")
    _label_two(win)
    when_modal_opens(lambda d: click_button(d, "Yes"))
    win.remove_image_action.trigger()
    qtbot.waitUntil(lambda: win.image_box.count() == 1)
    assert win.image_box.currentText() == "second" and win.session.current_image == "second"
    assert sum(win.session.project.annotations.counts().values()) == 0
    assert not win.undo_action.isEnabled()  # history that named the image is gone
    assert not any("cells" in p.name for p in (win.session.project.path / "images").iterdir())
    when_modal_opens(lambda d: click_button(d, "Yes"))
    win.remove_image_action.trigger()
    qtbot.waitUntil(lambda: win.image_box.count() == 0)
    assert win.session.current_image is None


def test_set_voxel_size_types_into_the_spin_boxes_and_is_saved(window, qtbot, tmp_path, make_3d):
    from svetlana.core.project.bundle import Project
    from svetlana.core.usecases.setup import create_project

    ip, mp = make_3d(tmp_path / "d")
    window.set_project(create_project(tmp_path / "s.svetlana", [(ip, mp, "stack")], ["a", "b"]))

    def type_spacing(dialog):
        z = dialog.findChild(type(dialog.boxes[0]), "spacing_Z")
        z.selectAll()
        qtbot.keyClicks(z, "2.5")
        click_button(dialog, "OK")

    seen = when_modal_opens(type_spacing)
    window.spacing_action.trigger()
    assert seen and [b.objectName() for b in seen[0].boxes] == [
        "spacing_Z",
        "spacing_Y",
        "spacing_X",
    ]
    assert window.session.project.image("stack").spacing == (2.5, 1.0, 1.0)
    window.session.set_project(None)
    with Project.open(tmp_path / "s.svetlana", readonly=True) as p:
        assert p.image("stack").spacing == (2.5, 1.0, 1.0)


def test_the_image_menu_actions_wait_for_a_project(window):
    assert not window.remove_image_action.isEnabled()
    assert not window.spacing_action.isEnabled()

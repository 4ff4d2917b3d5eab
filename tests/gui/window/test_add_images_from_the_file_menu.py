"""File ▸ Add images…, clicked in the menu bar: the dialog, the image and mask picked, Add; the
image is read in the background, then it is in the project and on screen."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog
from tests.gui.modal import choose_from_menu_bar, click_button, when_modal_opens


def test_add_images_from_the_file_menu_adds_the_picked_pair(
    project_window, qtbot, tmp_path, make_pair, monkeypatch
):
    win = project_window
    image, mask = make_pair(tmp_path / "more", name="second", seed=4)
    picked = iter([str(image), str(mask)])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (next(picked), ""))
    seen_table = []

    def pick_then_add(dialog):
        click_button(dialog, "Add image and mask…")
        seen_table.append(dialog.pairs())
        click_button(dialog, "Add")

    opened = when_modal_opens(pick_then_add)
    with qtbot.waitSignal(win.session.imagesChanged, timeout=30000):
        choose_from_menu_bar(qtbot, win, "File", "Add images")
    assert opened.texts == ["Add images — Svetlana"]
    assert seen_table == [[(image, mask, "second")]]
    assert win.session.project.image_names == ("cells", "second")
    assert win.session.current_image == "second"
    assert len(win.session.loaded().table.ids) == 30  # its objects, read from the mask
    qtbot.waitUntil(lambda: not win.session.busy)

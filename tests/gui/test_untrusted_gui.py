"""The GUI refuses what the core refuses, with a dialog: bad class names, network programs, bad masks."""

from __future__ import annotations


def test_class_editor_refuses_bad_names_with_a_dialog(
    project_window, shown_errors, qtbot, monkeypatch
):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QInputDialog

    tab = project_window.annotation_tab
    ann = project_window.session.project.annotations
    before = ann.class_names
    typed = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (typed[-1], True))

    def click(button, text):
        typed.append(text)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    click(tab.classes_panel.add_button, "two\tcolumns")
    assert ann.class_names == before
    assert shown_errors and "tab" in shown_errors[-1]
    tab.classes_panel.tree.setCurrentItem(tab.classes_panel.tree.topLevelItem(0))
    click(tab.classes_panel.rename_button, " padded")
    assert ann.class_names == before
    assert "space" in shown_errors[-1]
    click(
        tab.classes_panel.add_button, "=1+2"
    )  # formula-looking names are allowed (neutralised in every CSV)
    assert ann.class_names == (*before, "=1+2")


def test_training_tab_refuses_a_network_program_with_a_dialog(
    project_window, shown_errors, tmp_path
):
    from tests.robustness.programs import Victim, write_programs

    win = project_window
    project = win.session.project
    ids = [int(i) for i in project.load("cells").table.ids]
    project.annotations.apply_labels(
        [("cells", o, "class 1" if k % 2 else "class 2") for k, o in enumerate(ids)]
    )
    victim = Victim(tmp_path / "precious.txt")
    tab = win.training_tab
    for name, path in write_programs(tmp_path / "nets", victim.path).items():
        tab.form.set_arch_file(path)
        assert tab.form.arch_file == str(path)
        assert tab.start_training() is None  # refused before any work starts
        assert "TorchScript program" in shown_errors[-1] and path.name in shown_errors[-1], name
        assert victim.unchanged(), name
    assert project.models.ids() == [] and not (project.path / "models").exists()


def test_new_project_dialog_refuses_swapped_files_until_the_user_insists(
    qtbot, tmp_path, shown_errors
):
    import tifffile
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox

    from svetlana.core.synthetic.easy import texture_scene
    from svetlana.gui.dialogs.new_project import NewProjectDialog

    scene = texture_scene(seed=1)
    tifffile.imwrite(tmp_path / "cells.tif", scene.image[0])
    tifffile.imwrite(tmp_path / "cells_masks.tif", scene.labels)
    dialog = NewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.add_pair(tmp_path / "cells_masks.tif", tmp_path / "cells.tif", "cells")  # swapped
    dialog.set_destination(tmp_path / "p.svetlana")
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(shown_errors), timeout=20000)
    assert "swapped" in shown_errors[-1] and "Use the masks as they are" in shown_errors[-1]
    assert dialog.project is None and not (tmp_path / "p.svetlana").exists()
    qtbot.waitUntil(lambda: ok.isEnabled(), timeout=5000)
    dialog.pairs_box.force_mask.setChecked(True)  # the user insists: it really is the mask
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.project is not None, timeout=20000)
    assert len(shown_errors) == 1
    dialog.project.close()

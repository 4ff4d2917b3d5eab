"""The GUI refuses what the core refuses, with a dialog: bad class names, network programs, bad masks."""

from __future__ import annotations


def test_class_editor_refuses_bad_names_with_a_dialog(project_window, shown_errors):
    tab = project_window.annotation_tab
    ann = project_window.session.project.annotations
    before = ann.class_names
    tab.add_class("two\tcolumns")
    assert ann.class_names == before
    assert shown_errors and "tab" in shown_errors[-1]
    tab.classes.setCurrentItem(tab.classes.topLevelItem(0))
    tab.rename_class(" padded")
    assert ann.class_names == before
    assert "space" in shown_errors[-1]
    tab.add_class("=1+2")  # formula-looking names are allowed (neutralised in every CSV)
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
        tab.set_arch_file(path)
        assert tab.arch_file == str(path)
        assert tab.start_training() is None  # refused before any work starts
        assert "TorchScript program" in shown_errors[-1] and path.name in shown_errors[-1], name
        assert victim.unchanged(), name
    assert project.model_ids() == [] and not (project.path / "models").exists()

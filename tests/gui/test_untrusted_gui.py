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

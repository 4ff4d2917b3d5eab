"""The collector and the window (gui/heap.py): once the Train tab has loaded torch and
scikit-learn their objects are out of the collector's walk, and a closed project is still
freed, even when a reference cycle held it while it was open."""

from __future__ import annotations

import gc
import weakref

from svetlana.gui.tabs.train import TrainingTab


def test_a_closed_project_is_freed_after_the_libraries_were_frozen(project_window, qtbot):
    win = project_window
    with qtbot.waitSignal(win.training_tab.deviceDetected, timeout=120_000):
        win.tabs.setCurrentWidget(win.training_tab)  # the user opens the Train tab
    assert isinstance(win.training_tab, TrainingTab) and gc.get_freeze_count() > 10_000
    project = win.session.project
    cycle: list = []
    cycle += [cycle, project]  # held by a cycle (as a lambda connected to a signal would)
    gc.freeze()  # the cycle frozen with the project, as the Train tab's freeze would
    gone = weakref.ref(project)
    del project, cycle
    win.close_action.trigger()  # File ▸ Close project
    assert win.session.project is None
    assert gone() is None  # collected: its images and measurements are not kept

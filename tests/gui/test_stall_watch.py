"""The stall measure of the GUI tests (tests/gui/stalls.py) sees a GUI thread that works or
waits, and does not count an idle event loop as a stall."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QTimer
from tests.gui.stalls import EventLoopWatch


def _on_the_gui_thread(qtbot, action) -> EventLoopWatch:
    """Run ``action`` from the event loop (as a click would), watched, and let the loop run on."""
    done = []
    with EventLoopWatch() as watch:
        QTimer.singleShot(50, lambda: (action(), done.append(1)))
        qtbot.waitUntil(lambda: bool(done), timeout=5000)
        qtbot.wait(50)
    return watch


def test_work_on_the_gui_thread_is_a_stall(qtbot):
    def train_here():  # what a trainer on the GUI thread does: 0.3 s of computing
        end = time.thread_time() + 0.3
        x = 0
        while time.thread_time() < end:
            x += 1

    watch = _on_the_gui_thread(qtbot, train_here)
    assert watch.longest_stall_ms >= 250, watch.report()


def test_waiting_on_the_gui_thread_is_a_stall(qtbot):
    # A GUI thread waiting for a worker (a join, a lock) is as frozen as a busy one.
    watch = _on_the_gui_thread(qtbot, lambda: threading.Event().wait(0.3))
    assert watch.longest_stall_ms >= 250, watch.report()


def test_an_idle_event_loop_is_no_stall(qtbot):
    with EventLoopWatch() as watch:
        qtbot.wait(300)
    assert watch.ticks > 5
    assert watch.longest_stall_ms < 150, watch.report()

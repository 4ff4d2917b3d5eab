"""The background-job runner: results and errors come back on the main thread; cancel stops work."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading

import pytest
from PySide6.QtWidgets import QMainWindow

from svetlana.core.errors import Cancelled, InputError
from svetlana.core.jobs import Progress
from svetlana.gui import jobs
from svetlana.gui.jobs import CANCELLED_MESSAGE, run_job
from svetlana.gui.session import Session


def test_result_arrives_on_the_main_thread(qtbot):
    main = threading.get_ident()
    seen = {}

    def work(progress, cancel):
        progress(Progress("work", 1, 1))
        return threading.get_ident()

    def on_success(result):
        seen["worker"] = result
        seen["callback"] = threading.get_ident()

    job = run_job(None, work, on_success=on_success)
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert seen["callback"] == main
    assert seen["worker"] != main
    assert not job.running


def test_exception_is_passed_with_its_traceback(qtbot):
    errors = []

    def work(progress, cancel):
        raise ValueError("boom")

    job = run_job(
        None, work, on_success=lambda r: errors.append("success?"), on_failure=errors.append
    )
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert errors[0].__traceback__ is not None


def test_cancel_stops_the_work_and_the_thread(qtbot):
    session = Session()
    busy = []
    session.busyChanged.connect(busy.append)
    outcome = []
    stop = threading.Event()

    def work(progress, cancel):
        k = 0
        while True:
            cancel.raise_if_cancelled()
            progress(Progress("loop", k, 0))
            k += 1
            stop.wait(0.001)

    job = run_job(None, work, on_success=outcome.append, on_failure=outcome.append, session=session)
    assert session.busy
    with qtbot.waitSignal(job.progressed, timeout=5000):
        pass
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert not job.running and job.wait(0)
    assert busy == [True, False] and not session.busy


def test_progress_is_batched_not_lost(qtbot):
    batches = []

    def work(progress, cancel):
        for k in range(20000):
            progress(Progress("fast", k + 1, 20000))
        return "ok"

    job = run_job(None, work, on_progress=batches.append)
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    events = [e for b in batches for e in b]
    assert [e.done for e in events] == list(range(1, 20001))
    assert len(batches) < 200  # 20,000 events, at most ~20 deliveries a second


def test_deliveries_queued_while_the_main_thread_was_busy_arrive_as_one(qtbot):
    """On a loaded machine the main thread may get no CPU while the worker reports: the
    deliveries that queued up meanwhile reach the views as one batch (one redraw), in order."""
    batches = []
    reported = threading.Event()

    def work(progress, cancel):
        for k in range(10):
            progress(Progress("epoch", k + 1, 10))
        reported.set()
        return "ok"

    job = jobs.Job(work, interval=0.0)  # a delivery for every event
    job.progressed.connect(batches.append)
    job.start()
    assert reported.wait(10)  # the main thread busy meanwhile: ten deliveries queue up
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert len(batches) == 1 and [e.done for e in batches[0]] == list(range(1, 11))


def test_cancelled_is_a_quiet_status_message(qtbot, monkeypatch):
    window = QMainWindow()
    qtbot.addWidget(window)
    dialogs = []
    monkeypatch.setattr(jobs, "_fallback_dialog", lambda parent, exc: dialogs.append(exc))
    jobs.report_error(window, Cancelled())
    assert window.statusBar().currentMessage() == CANCELLED_MESSAGE
    assert dialogs == []


@pytest.mark.parametrize("exc", [InputError("no such image"), RuntimeError("bug")])
def test_other_errors_open_the_error_dialog(qtbot, monkeypatch, exc):
    shown = []
    monkeypatch.setattr(jobs, "_fallback_dialog", lambda parent, e: shown.append(e))
    try:
        import svetlana.gui.errors as errors_mod
    except ImportError:
        pass
    else:
        monkeypatch.setattr(errors_mod, "show_error", lambda parent, e: shown.append(e))
    job = run_job(None, lambda p, c: (_ for _ in ()).throw(exc))
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert shown == [exc]

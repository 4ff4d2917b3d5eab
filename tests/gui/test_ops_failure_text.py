"""The status line a tab shows when its verb fails, is refused or is cancelled (gui/ops.py)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading

from svetlana.core.errors import Cancelled, InputError
from svetlana.gui.jobs import run_job
from svetlana.gui.ops import failure_text


def _failed_job(qtbot, exc: BaseException):
    """A real background job whose work raised ``exc``; returns (job, the exception received)."""
    seen = []

    def work(progress, cancel):
        raise exc

    job = run_job(None, work, on_failure=seen.append)
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    return job, seen[0]


def test_a_svetlana_error_while_running_names_the_verb_and_the_reason(qtbot):
    job, exc = _failed_job(qtbot, InputError("the mask 'cells.tif' has no objects"))
    assert failure_text(job, exc, "Training") == (
        "Training failed: the mask 'cells.tif' has no objects"
    )


def test_an_unexpected_error_while_running_names_the_verb_and_the_error(qtbot):
    job, exc = _failed_job(qtbot, RuntimeError("CUDA out of memory"))
    assert failure_text(job, exc, "Prediction") == "Prediction failed: CUDA out of memory"
    job, exc = _failed_job(qtbot, KeyError())  # no message: its kind, never an empty reason
    assert failure_text(job, exc, "Prediction") == "Prediction failed: KeyError"


def test_a_refusal_by_the_plan_is_shown_as_it_is(qtbot):
    refusal = InputError("label at least two classes first")
    assert failure_text(None, refusal, "Training") == "label at least two classes first"
    earlier, _ = _failed_job(qtbot, RuntimeError("an earlier run's error"))
    assert failure_text(earlier, refusal, "Training") == "label at least two classes first"


def test_a_cancelled_run_says_nothing_changed(qtbot):
    started = threading.Event()

    def work(progress, cancel):
        started.set()
        while True:
            cancel.raise_if_cancelled()

    seen = []
    job = run_job(None, work, on_failure=seen.append)
    assert started.wait(5)
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert isinstance(seen[0], Cancelled)
    assert failure_text(job, seen[0], "Training") == "Cancelled, nothing changed."

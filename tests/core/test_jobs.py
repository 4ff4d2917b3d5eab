"""Work on threads: the caller sees progress, can cancel, and gets a thread's error."""

from __future__ import annotations

import threading

import pytest

from svetlana.core.errors import Cancelled
from svetlana.core.jobs import CancelToken, run_threads


def test_every_task_runs_and_progress_is_reported_on_the_calling_thread() -> None:
    done: list[int] = []
    seen: list[str] = []
    lock = threading.Lock()

    def task(k: int):
        def run() -> None:
            with lock:
                done.append(k)

        return run

    run_threads(
        [task(k) for k in range(3)], report=lambda: seen.append(threading.current_thread().name)
    )
    assert sorted(done) == [0, 1, 2]
    assert seen and set(seen) == {threading.current_thread().name}


def test_a_tasks_error_is_raised_and_the_others_are_told_to_stop() -> None:
    stop = threading.Event()
    stopped = threading.Event()

    def failing() -> None:
        raise OSError("chunk 7 unreadable")

    def patient() -> None:  # works until told to stop, as the band loops do
        while not stop.wait(0.01):
            pass
        stopped.set()

    with pytest.raises(OSError, match="chunk 7"):
        run_threads([failing, patient], stop=stop, poll_s=0.02)
    assert stopped.is_set()


def test_cancelling_stops_the_tasks_and_raises_cancelled() -> None:
    token = CancelToken()
    stop = threading.Event()
    started = threading.Event()

    def worker() -> None:
        started.set()
        stop.wait(10)

    def cancel_soon() -> None:
        started.wait(5)
        token.cancel()

    threading.Thread(target=cancel_soon).start()
    with pytest.raises(Cancelled):
        run_threads([worker, worker], cancel=token, stop=stop, poll_s=0.02)
    assert stop.is_set()

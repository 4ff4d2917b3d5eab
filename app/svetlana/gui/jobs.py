"""One way to run background work: a worker in a QThread, results and errors back on the main thread."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from svetlana.core.errors import Cancelled, SvetlanaError
from svetlana.core.jobs import CancelToken, Progress

log = logging.getLogger(__name__)

# At most this many progress deliveries per second reach the main thread (events in between
# are batched, not dropped), so a fast loop in the worker never floods the GUI's event queue.
PROGRESS_INTERVAL_S = 0.05
CANCELLED_MESSAGE = "cancelled, nothing changed"

JobFn = Callable[[Callable[[Progress], None], CancelToken], Any]


class _Worker(QObject):
    """Runs ``fn(progress, cancel)`` in the worker thread; talks only through queued signals."""

    progressed = Signal(object)  # tuple[Progress, ...]
    done = Signal(object, object)  # (result, exception or None)

    def __init__(self, fn: JobFn, token: CancelToken, interval: float):
        super().__init__()
        self._fn = fn
        self._token = token
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: list[Progress] = []
        self._last_emit = 0.0

    def _progress(self, event: Progress) -> None:
        with self._lock:
            self._pending.append(event)
            now = time.monotonic()
            if now - self._last_emit < self._interval:
                return
            self._last_emit = now
            batch, self._pending = tuple(self._pending), []
        self.progressed.emit(batch)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = tuple(self._pending), []
        if batch:
            self.progressed.emit(batch)

    @Slot()
    def run(self) -> None:
        result, error = None, None
        try:
            result = self._fn(self._progress, self._token)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the main thread, none is lost
            error = exc
        self._flush()
        self.done.emit(result, error)
        # Quit from here, not from the main thread: a main thread blocked in Job.wait() must
        # still see the thread end.
        self.thread().quit()


class Job(QObject):
    """A running background job. Signals arrive on the main thread.

    ``progressed(tuple[Progress, ...])``: the events since the last delivery, oldest first.
    Deliveries that queued up while the main thread was busy (a loaded machine) are handed on
    as one, so that the views redraw once for them, not once each.
    ``succeeded(result)`` / ``failed(exception)``: exactly one of them, after the thread ended.
    ``finished()``: last; by then the thread has stopped and been waited for.
    """

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    _active: set[Job] = set()  # keeps running jobs alive without a parent to own them

    def __init__(
        self,
        fn: JobFn,
        parent: QObject | None = None,
        *,
        name: str = "job",
        interval: float = PROGRESS_INTERVAL_S,
    ):
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.result: Any = None
        self.error: BaseException | None = None
        self.plan: Any = None  # what run_op planned on the main thread (gui/ops.py)
        self._running = False
        self._done = False
        self._progress: list[Progress] = []  # received, not yet handed on
        self._thread = QThread()
        self._thread.setObjectName(f"svetlana-{name}")
        self._worker = _Worker(fn, self.token, interval)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progressed.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._thread.finished.connect(self._on_thread_finished)

    # ---- control ------------------------------------------------------------------
    def start(self) -> Job:
        if self._running or self._done:
            raise RuntimeError("a job runs once")
        self._running = True
        Job._active.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check (cooperative; the thread is never killed)."""
        self.token.cancel()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def wait(self, ms: int = -1) -> bool:
        """Block until the worker thread ends (for shutdown); signals still need the event loop."""
        if not self._running:
            return True
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    # ---- main-thread slots ----------------------------------------------------------
    @Slot(object)
    def _on_progress(self, events) -> None:
        if self._done:
            return
        if not self._progress:  # after every delivery queued now: one emit for all of them
            QTimer.singleShot(0, self, self._hand_on_progress)
        self._progress.extend(events)

    def _hand_on_progress(self) -> None:
        events, self._progress = tuple(self._progress), []
        if events and not self._done:
            self.progressed.emit(events)

    @Slot(object, object)
    def _on_done(self, result, error) -> None:
        self.result, self.error = result, error

    @Slot()
    def _on_thread_finished(self) -> None:
        self._hand_on_progress()  # every progress event before the result
        self._thread.wait()
        self._running = False
        self._done = True
        Job._active.discard(self)
        try:
            if self.error is None:
                self.succeeded.emit(self.result)
            else:
                self.failed.emit(self.error)
        finally:
            self.finished.emit()
            self._worker.deleteLater()
            self._thread.deleteLater()


def run_job(
    parent: QObject | None,
    fn: JobFn,
    *,
    on_success: Callable[[Any], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[tuple[Progress, ...]], None] | None = None,
    session=None,
    name: str = "job",
) -> Job:
    """Run ``fn(progress, cancel)`` in a worker thread (Anki's CollectionOp, in one call).

    ``fn`` must not touch widgets or live project state: give it a frozen snapshot. Callbacks
    run on the main thread. Without ``on_failure`` errors are reported with :func:`report_error`
    (Cancelled -> a quiet status message). With ``session`` it is marked busy while running.
    """
    job = Job(fn, parent, name=name)
    widget = parent if isinstance(parent, QWidget) else None
    if on_progress is not None:
        job.progressed.connect(on_progress)
    if on_success is not None:
        job.succeeded.connect(on_success)
    job.failed.connect(
        on_failure if on_failure is not None else (lambda exc: report_error(widget, exc))
    )
    if session is not None:
        session.set_busy(True)
        job.finished.connect(lambda: session.set_busy(False))
    log.debug("starting %s", name)
    return job.start()


# ---- reporting errors --------------------------------------------------------------------


def show_status(parent: QWidget | None, message: str, ms: int = 5000) -> None:
    """A quiet message in the window's status bar (logged when there is no window)."""
    log.info("%s", message)
    window = parent.window() if parent is not None else None
    if isinstance(window, QMainWindow):
        window.statusBar().showMessage(message, ms)


def report_error(parent: QWidget | None, exc: BaseException) -> None:
    """Cancelled -> a status message; anything else -> the error dialog."""
    if isinstance(exc, Cancelled):
        show_status(parent, CANCELLED_MESSAGE)
        return
    try:
        from svetlana.gui.errors import show_error  # logs it too
    except ImportError:
        if not isinstance(exc, SvetlanaError):
            log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
        _fallback_dialog(parent, exc)
    else:
        show_error(parent, exc)


def _fallback_dialog(parent: QWidget | None, exc: BaseException) -> None:
    box = QMessageBox(
        QMessageBox.Icon.Warning, "Svetlana", str(exc) or type(exc).__name__, parent=parent
    )
    if not isinstance(exc, SvetlanaError):
        box.setText(f"Something went wrong: {exc or type(exc).__name__}")
        box.setDetailedText("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    box.exec()


def stop_jobs(*jobs: Job | None, timeout_ms: int = 10000) -> bool:
    """Cancel running jobs and wait for their threads; True when none is left running."""
    ok = True
    for job in jobs:
        if job is not None and job.running:
            job.cancel()
            ok = job.wait(timeout_ms) and ok
    return ok

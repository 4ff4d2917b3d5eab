"""Progress events and a cooperative cancel token: how long work reports and stops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from svetlana.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units of ``stage``.

    ``metrics`` carries stage-specific numbers (loss, accuracy, validation metrics...).
    """

    stage: str
    done: int
    total: int
    message: str = ""
    eta_s: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores everything."""


class CancelToken:
    """Owned by the caller; long functions only check it (``raise_if_cancelled``)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def ensure_token(token: CancelToken | None) -> CancelToken:
    return token if token is not None else CancelToken()


def in_background(fn: Callable[[], Any], name: str = "background") -> Callable[[], Any]:
    """Start ``fn`` on a (daemon) thread; the returned function waits for its result, or
    raises its error, on the caller's thread."""
    out: list = []

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as e:  # noqa: BLE001 - raised on the caller's thread
            out.append((False, e))

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()

    def result() -> Any:
        t.join()
        ok, value = out[0]
        if not ok:
            raise value
        return value

    return result


def run_threads(
    tasks: list[Callable[[], None]],
    *,
    cancel: CancelToken | None = None,
    stop: threading.Event | None = None,
    report: Callable[[], None] | None = None,
    name: str = "work",
    poll_s: float = 0.25,
) -> None:
    """Each of ``tasks`` on its own thread while the calling thread waits: every ``poll_s`` it
    checks ``cancel`` (raising ``Cancelled``) and calls ``report``. A task's error is raised
    here as soon as it happens; on the way out ``stop`` is set (tasks check it between their
    pieces of work and return) and every thread is joined."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    stop = stop if stop is not None else threading.Event()
    with ThreadPoolExecutor(max(1, len(tasks)), thread_name_prefix=name) as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            pending = futures
            while pending:
                finished, pending = wait(pending, timeout=poll_s, return_when=FIRST_EXCEPTION)
                for f in finished:
                    f.result()  # a task's error, raised here at once (the others stop)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if report is not None:
                    report()
        finally:
            stop.set()

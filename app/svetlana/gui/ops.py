"""One way to run a long user verb (add images, train, predict, export, explain, demo): Anki's
CollectionOp for this app.

``run_op`` does, for any verb, what each tab used to repeat by hand:
  1. the busy guard (one verb at a time; the session is marked busy while it runs);
  2. ``plan(project)`` on the main thread: quick checks and a frozen snapshot (core use-case
     code; a ``SvetlanaError`` here is reported and nothing starts);
  3. ``run(plan, view, progress, cancel)`` in a worker thread, on a read-only view of the bundle
     of its own (never the live project, which the user keeps changing), Qt-free;
  4. ``commit(plan, result)`` back on the main thread, only if the project it started on is still
     the open one: the writes and the session's change signals happen there.
Failures (and Cancelled, as a quiet status) are reported on the main thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from svetlana.core.errors import SvetlanaError
from svetlana.gui.jobs import Job, report_error, run_job, show_status

log = logging.getLogger(__name__)

BUSY_MESSAGE = "wait for the running job to finish (or cancel it)"


def failure_text(job: Job | None, exc: BaseException, verb: str) -> str:
    """The status line after ``exc`` ended or refused a verb (``verb``: "Training", ...).

    Cancelled by the user -> "Cancelled, nothing changed."; failed while running (``exc`` is
    ``job``'s error) -> "<verb> failed: <why>"; refused by the plan before anything ran (no job,
    or another job's) -> the refusal itself.
    """
    why = str(exc) or type(exc).__name__
    ran = job is not None and job.error is exc
    if ran and job.cancelled:
        return "Cancelled, nothing changed."
    return f"{verb} failed: {why}" if ran else why


def run_op(
    parent: QWidget,
    session,
    name: str,
    plan: Callable[[Any], Any],
    run: Callable[..., Any],
    commit: Callable[[Any, Any], None] | None = None,
    *,
    on_progress: Callable[[tuple], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
    view: bool = True,
    needs_project: bool = True,
    exclusive: bool = True,
) -> Job | None:
    """Plan → run in a worker → commit (see the module's docstring). Returns the running Job,
    or None when it could not start (no project, another verb running, the plan refused).

    ``view=False``: ``run`` gets ``None`` instead of a read-only view (work that reads only
    files outside the bundle). ``needs_project=False``: ``plan`` may get ``None`` (the demo).
    ``exclusive=False``: a read-only refresh beside the user's verbs (the Results charts): it
    neither waits for the busy guard nor marks the session busy.
    """
    project = session.project
    if project is None and needs_project:
        show_status(parent, "open a project first")
        return None
    if exclusive and session.busy:
        show_status(parent, BUSY_MESSAGE)
        return None
    fail = on_failure if on_failure is not None else (lambda exc: report_error(parent, exc))
    try:
        planned = plan(project)
    except SvetlanaError as exc:
        fail(exc)
        return None
    bundle = project.path if project is not None and view else None

    def work(progress, cancel):
        if bundle is None:
            return run(planned, None, progress, cancel)
        from svetlana.core.project.bundle import Project

        with Project.open(bundle, readonly=True) as ro:
            return run(planned, ro, progress, cancel)

    def done(result) -> None:
        if session.project is not project:
            show_status(parent, f"the project was closed; the {name} was discarded")
            return
        if commit is not None:
            try:
                commit(planned, result)
            except SvetlanaError as exc:
                fail(exc)

    log.debug("operation %s planned", name)
    job = run_job(
        parent, work, on_success=done, on_failure=fail, on_progress=on_progress,
        session=session if exclusive else None, name=name,
    )  # fmt: skip
    job.plan = planned
    return job

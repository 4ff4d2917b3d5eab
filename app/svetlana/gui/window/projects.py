"""The project's lifecycle in the window: new, open (dialog, recent, dropped), the demo, switch
and close, each stopping the running work first (asking when there is any)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from svetlana.core.errors import SvetlanaError
from svetlana.core.project.bundle import Project
from svetlana.gui.errors import show_error
from svetlana.gui.heap import collect_after_project
from svetlana.gui.window.start_page import project_path_of


def demo_path() -> Path:
    from svetlana.core.usecases.demo import demo_path as core_demo_path

    return core_demo_path()  # the same project as `svetlana demo` without a window


class ProjectLifecycle(QObject):
    """Opens, switches and closes the window's project; remembers recent ones.

    ``window`` is the main window: its session, settings, start page, the tabs and the image
    actions whose running work is stopped before a project changes.
    """

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window
        self.demo_job = None

    @property
    def session(self):
        return self._window.session

    def open_project(self, path: str | Path) -> bool:
        path = Path(path)
        bundle = project_path_of(path) or path
        if not self.confirm_stop_jobs("open another project"):
            return False
        self.stop_jobs()
        try:
            self.session.open_project(bundle)
        except SvetlanaError as exc:
            show_error(self._window, exc, "Cannot open the project")
            if not bundle.exists():
                self._window.settings.remove_recent(bundle)
                self._show_recent()
            return False
        collect_after_project()
        self._remember(bundle)
        return True

    def set_project(self, project: Project) -> None:
        """Show a project opened elsewhere (new project dialog, demo)."""
        if not self.confirm_stop_jobs("switch project"):
            project.close()
            return
        self.stop_jobs()
        self.session.set_project(project)
        collect_after_project()
        self._remember(project.path)

    def close_project(self) -> None:
        if not self.confirm_stop_jobs("close the project"):
            return
        self.stop_jobs()
        self.session.set_project(None)
        collect_after_project()

    def _remember(self, path: Path) -> None:
        self._window.settings.add_recent(path)
        self._show_recent()

    def _show_recent(self) -> None:
        self._window.start_page.set_recent(self._window.settings.recent_projects())

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self._window, "Open a Svetlana project (the .svetlana folder)"
        )
        if path:
            self.open_project(path)

    def new_project(self) -> None:
        from svetlana.gui.dialogs.new_project import NewProjectDialog

        dialog = NewProjectDialog(self._window)
        if dialog.exec() and dialog.project is not None:
            self.set_project(dialog.project)

    def open_demo(self, path: Path | None = None) -> None:
        """Open the demo project (at ``path``, default the data folder's), building it first
        in a worker (a few seconds)."""
        from svetlana.core.usecases.demo import build_demo
        from svetlana.gui.ops import run_op

        path = Path(path) if path else demo_path()
        if project_path_of(path) is not None:
            self.open_project(path)
            return

        def build(p, _view, _progress, _cancel) -> None:
            p.parent.mkdir(parents=True, exist_ok=True)
            build_demo(p).close()

        def commit(p, _result) -> None:  # opened once the job has ended (the window is not busy)
            QTimer.singleShot(0, lambda: self.open_project(p))

        self.demo_job = run_op(
            self._window, self.session, "demo", lambda _project: path, build, commit,
            view=False, needs_project=False,
        )  # fmt: skip
        if self.demo_job is not None:
            self._window.statusBar().showMessage("Building the demo project…")

    def stop_jobs(self) -> bool:
        """Cancel background work and wait for its threads; True when none is left running."""
        from svetlana.gui.jobs import stop_jobs

        w = self._window
        ok = stop_jobs(w.image_actions.add_job, self.demo_job)
        for tab in (w.training_tab, w.prediction_tab, w.annotation_tab):
            stop = getattr(tab, "shutdown", None)
            if stop is not None:
                ok = stop() and ok
        return ok

    def confirm_stop_jobs(self, action: str) -> bool:
        """Ask before stopping running work; returns False if the user wants to keep it."""
        if not self.session.busy:
            return True
        answer = QMessageBox.question(
            self._window,
            "Work in progress",
            f"Training or prediction is still running. Stop it and {action}?\n\n"
            "A stopped run changes nothing in the project; your labels are saved.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        return self.stop_jobs()

"""The File menu's image actions: Add images (read and measured in a worker), Remove image,
Set voxel size, Export labels."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMainWindow

from svetlana.core.errors import ShapeMismatchError, SvetlanaError
from svetlana.core.wording import plural
from svetlana.gui.errors import reporting


class ImageActions(QObject):
    """What the window's image actions do; ``window`` gives the session and the status bar."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window
        self.add_job = None

    @property
    def session(self):
        return self._window.session

    def _say(self, text: str, ms: int = 0) -> None:
        self._window.statusBar().showMessage(text, ms)

    def add_images(self, pairs=None, error: SvetlanaError | None = None) -> None:
        """The Add images dialog; ``pairs`` and ``error`` reopen it after a shape mismatch,
        with the Axes field where the user types the image's axes and retries."""
        from svetlana.gui.dialogs.new_project import NewProjectDialog

        if self.session.project is None:
            return
        dialog = NewProjectDialog(self._window, adding=True)
        for image, mask, name, *axes in pairs or ():
            dialog.add_pair(image, mask, name, axes[0] if axes else None)
        if error is not None:
            dialog.ask_for_axes(error)
        if not dialog.exec():
            return
        self.add_pairs_in_background(dialog.to_read())

    def _add_failed(self, exc: BaseException, pairs) -> None:
        from svetlana.gui.jobs import report_error

        report_error(self._window, exc)
        if isinstance(exc, ShapeMismatchError):
            # the error suggests an axes string: let the user type it and retry
            QTimer.singleShot(0, lambda: self.add_images(pairs, exc))

    def add_pairs_in_background(self, pairs):
        """Read and measure the images in a worker (the window stays usable), then add them
        (gui/ops.py: run_op). Returns the job (None when there is nothing to do)."""
        from svetlana.core.project.images import prepare_images
        from svetlana.gui.ops import run_op

        pairs = [(Path(p[0]), Path(p[1]), *p[2:]) for p in pairs]  # (image, mask, name[, axes])
        if self.session.project is None or not pairs:
            return None

        def commit(_plan, prepared) -> None:
            names: list[str] = []
            with reporting(self._window, "Cannot add the image"):
                self.session.add_prepared(self.session.project, prepared, names)
            if names:
                self.session.set_current_image(names[0])
                self._say(f"added {plural(len(names), 'image')}", 5000)

        self.add_job = run_op(
            self._window, self.session, "add images", lambda _project: pairs,
            lambda p, _view, progress, cancel: prepare_images(p, progress, cancel), commit,
            on_failure=lambda exc: self._add_failed(exc, pairs),
            on_progress=lambda events: self._say(events[-1].message),
            view=False,  # reads the user's files, not the bundle
        )  # fmt: skip
        return self.add_job

    def remove_image(self) -> None:
        from svetlana.gui.dialogs.images import remove_current_image

        if remove_current_image(self._window, self.session):
            self._say("image removed", 5000)

    def set_spacing(self) -> None:
        from svetlana.gui.dialogs.images import set_current_spacing

        if set_current_spacing(self._window, self.session):
            self._say("voxel size set", 5000)

    def export_labels(self) -> None:
        from svetlana.core.usecases.labels import export_labels

        project = self.session.project
        if project is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self._window,
            "Export labels",
            str(project.path.parent / f"{project.name}_labels.csv"),
            "CSV (*.csv)",
        )
        if not path:
            return
        with reporting(self._window, "Cannot export the labels"):
            n = export_labels(project, path)
            self._say(f"{plural(n, 'label')} written to {path}", 6000)

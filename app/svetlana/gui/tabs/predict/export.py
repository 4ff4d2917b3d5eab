"""The Predict tab's exports: the Export button's menu (class masks, measurement table, QuPath
objects, bioimage.io package) and *Keep these classes…*. What each writes is planned and run by
``core/usecases/export.py``; here it runs in a worker (gui/ops.run_op) and is written beside the
folder chosen, then swapped in whole (``export_whole``: core's ``run_export_whole``): a cancel, a
failure or a crash leaves the folder as it was."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton

from svetlana.core.errors import SvetlanaError
from svetlana.core.io.outputs import check_output_folder
from svetlana.core.jobs import CancelToken
from svetlana.core.usecases.export import (
    BIOIMAGEIO,
    EXPORT_KINDS,
    MASKS,
    OBJECTS,
    TABLE,
    ExportDone,
    ExportPlan,
    export_refusal,
    plan_export,
    run_export_whole,
)
from svetlana.core.wording import plural
from svetlana.gui.jobs import Job, report_error, show_status
from svetlana.gui.ops import run_op
from svetlana.gui.widgets.common import choose_folder
from svetlana.gui.widgets.export_menu import ExportMenu, ask_package_info, show_done

CHOSEN_FOLDER = "the folder chosen"


def export_whole(plan: ExportPlan, progress, cancel: CancelToken) -> ExportDone:
    """``run_export_whole`` into the folder chosen (runs in the worker; Qt-free)."""
    return run_export_whole(plan, progress, cancel, arg=CHOSEN_FOLDER)


class ExportControls(QObject):
    """The Export button with its menu and the Keep these classes button, for the Result box;
    progress and status are shown in the run panel (its Cancel stops an export too).
    ``finished(ExportDone or None)`` once an export's worker is gone."""

    finished = Signal(object)

    def __init__(self, session, run_panel, parent=None):
        super().__init__(parent)
        self.session = session
        self.run = run_panel
        self.last_export_box = None
        self.keep_dialog = None
        self.export_button = QPushButton("Export")
        self.export_button.setToolTip(
            "Write the results to a folder: class masks and predictions.csv, a measurement\n"
            "table, objects for QuPath (GeoJSON), or the model as a bioimage.io package."
        )
        self.export_menu = ExportMenu(self.export_button)  # entries: gui/widgets/export_menu.py
        self.export_menu.aboutToShow.connect(self.refresh_menu)
        for kind in (MASKS, TABLE, OBJECTS, BIOIMAGEIO):
            self.export_menu.actions_by_kind[kind].triggered.connect(
                lambda _checked=False, kind=kind: self.choose_export(kind)
            )
        self.export_button.setMenu(self.export_menu)
        self.keep_button = QPushButton("Keep these classes…")
        self.keep_button.setToolTip(
            "Clean the segmentation: write a mask with only the objects of chosen classes\n"
            "(original ids, your mask's format), with a preview of what is removed."
        )
        self.keep_button.clicked.connect(self.open_keep_dialog)

    def update_enabled(self, busy: bool) -> None:
        shown = bool(self.session.predictions)
        self.export_button.setEnabled((shown or self.run.model.count() > 0) and not busy)
        self.keep_button.setEnabled(shown and not busy)

    def _model_for(self, kind: str) -> str | None:
        return self.run.model.selected() if kind == BIOIMAGEIO else self.session.prediction_model

    def refresh_menu(self) -> None:
        """Enable the Export entries the shown predictions and the chosen model allow."""
        project, model_id = self.session.project, self.run.model.selected()
        forest = project is not None and bool(model_id) and self.run.model.is_forest(model_id)
        any_2d = project is not None and any(
            project.image(im).ndim == 2
            for im in self.session.predictions
            if im in project.image_names
        )
        self.export_menu.refresh(bool(self.session.predictions), model_id, forest, any_2d)

    def choose_export(self, kind: str) -> None:
        """Menu entry: ask for the folder (and a package's author/licence), then export."""
        project = self.session.project
        if project is None:
            return
        refusal = export_refusal(project, kind, self.session.predictions, self._model_for(kind))
        if refusal is not None:  # said before a folder is asked for (none is created)
            self.run.status.setText(str(refusal))
            report_error(self.run, refusal)
            return
        title = f"Export {EXPORT_KINDS[kind].what} to (type a new name to create it)"
        folder = choose_folder(self.run, title, project.path.parent)
        if not folder:
            return
        info = None
        if kind == BIOIMAGEIO:
            info = ask_package_info(self.run)
            if info is None:
                return
        self.start_export(kind, folder, info)

    def start_export(self, kind: str, folder: str | Path, info=None) -> Job | None:
        """Write one of the Export menu's files in the background (see ``export_whole``)."""
        model_id, preds = self._model_for(kind), self.session.predictions
        outcome: list[ExportDone] = []

        def plan(project):
            planned = plan_export(project, kind, folder, preds, model_id, info)
            check_output_folder(planned.out_dir, EXPORT_KINDS[kind].folder, arg=CHOSEN_FOLDER)
            return planned

        def done(_plan, result: ExportDone) -> None:
            outcome.append(result)
            self.run.progress.setRange(0, 1)
            self.run.progress.setValue(1)
            self.run.progress.setFormat("done")
            self.run.status.setText(f"{result.message} Folder: {result.folder}")
            show_status(self.run, f"exported to {result.folder}")
            self.last_export_box = show_done(self.run, result)

        job = run_op(
            self.run, self.session, f"export-{kind}", plan,
            lambda p, _view, progress, cancel: export_whole(p, progress, cancel), done,
            on_progress=self.run.on_progress, on_failure=self._on_failed,
            view=False,  # run_export opens a read-only view of its own
        )  # fmt: skip
        if job is None:
            self.finished.emit(None)
            return None
        self.run.job = job
        self.run.start_progress("exporting…", f"Exporting to {job.plan.out_dir}…")
        job.finished.connect(lambda: self.finished.emit(outcome[0] if outcome else None))
        self.run.started.emit()
        return job

    def _on_failed(self, exc: BaseException) -> None:
        self.run.start_progress("", "")
        job = self.run.job
        ran = job is not None and job.error is exc  # else: refused by the plan
        self.run.status.setText(
            "Export cancelled."
            if ran and job.cancelled
            else f"Export failed: {exc}"
            if ran
            else str(exc)
        )
        report_error(self.run, exc)

    def export_to(self, folder: str | Path) -> list[Path]:
        """Write ``<image>_classes.tif`` and ``predictions.csv`` of the shown predictions now
        (for scripts and tests; the Export menu writes them in the background)."""
        project, preds = self.session.project, self.session.predictions
        if project is None or not preds:
            show_status(self.run, "nothing to export: run a prediction first")
            return []
        try:
            plan = plan_export(project, MASKS, folder, preds, self.session.prediction_model)
            check_output_folder(plan.out_dir, EXPORT_KINDS[MASKS].folder, arg=CHOSEN_FOLDER)
            done = export_whole(plan, lambda _p: None, CancelToken())
        except (SvetlanaError, OSError) as exc:
            report_error(self.run, exc)
            return []
        files = list(done.files)
        self.run.status.setText(f"Exported {plural(len(files), 'file')} to {folder}.")
        return files

    def open_keep_dialog(self):
        """The 'Keep these classes…' dialog (non-modal: the image stays usable beside it)."""
        from svetlana.gui.dialogs.keep_classes import KeepClassesDialog

        if not self.session.predictions:
            show_status(self.run, "run a prediction first")
            return None
        if self.keep_dialog is not None:
            self.keep_dialog.close()
        self.keep_dialog = KeepClassesDialog(self.session, self.parent())
        self.keep_dialog.show()
        return self.keep_dialog

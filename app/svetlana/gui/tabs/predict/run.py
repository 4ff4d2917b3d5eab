"""The Predict tab's run controls: the model, which objects (this image, all images, a folder
outside the project), Run and Cancel, the progress bar and the status line. A run is a
plan → run → commit operation (gui/ops.run_op); the progress bar and Cancel also serve an
export running from the Result box."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from svetlana.core.errors import InputError
from svetlana.core.usecases import predict as predicting
from svetlana.core.wording import plural
from svetlana.gui.jobs import Job, report_error
from svetlana.gui.ops import failure_text, run_op
from svetlana.gui.tabs.predict.models import ModelChooser
from svetlana.gui.widgets.common import choose_folder

SCOPES = ("image", "all", "folder")
SCOPE_TEXTS = (
    ("image", "This image", "Classify the objects of the image on screen."),
    ("all", "All images", "Classify every image of the project; results are saved in the project."),
    ("folder", "A folder…", "Classify image/mask pairs of a folder outside the project\n"
     "(e.g. cells.tif with cells_masks.tif). Your files are only read."),
)  # fmt: skip


class RunPanel(QGroupBox):
    """Predict with the chosen model; ``finished(model_id)`` ("" when cancelled or failed)
    once the worker thread is gone; ``folderPredicted`` after a folder run (``last_run``);
    ``started`` when a run or an export shown here began."""

    finished = Signal(str)
    folderPredicted = Signal()
    started = Signal()  # a run or an export began (Cancel now stops it)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__("Predict", parent)
        self.session = session
        self.job: Job | None = None  # the run or export shown in the progress bar
        self.last_run = None  # the last folder run (predicting.PredictionRun)
        self._result_model = ""
        form = QFormLayout(self)
        self.model = ModelChooser(session)
        form.addRow("Model", self.model)
        self.scope_group = QButtonGroup(self)
        self.scope_buttons: dict[str, QRadioButton] = {}
        row = QHBoxLayout()
        for i, (key, text, tip) in enumerate(SCOPE_TEXTS):
            b = QRadioButton(text)
            b.setToolTip(tip)
            self.scope_group.addButton(b, i)
            self.scope_buttons[key] = b
            row.addWidget(b)
        self.scope_buttons["image"].setChecked(True)
        form.addRow("Objects of", row)
        self.folder, self.folder_browse = self._path_row(
            form, "Input folder", "folder with image and mask files", self._browse_folder
        )
        self.out_dir, self.out_browse = self._path_row(
            form, "Output folder", "for the class masks and CSV", self._browse_out
        )
        self.workers = QSpinBox()
        self.workers.setRange(0, max(1, os.cpu_count() or 1))
        self.workers.setSpecialValueText("none (in the app)")
        self.workers.setToolTip(
            "Worker processes that classify the folder's images in parallel (a local Dask\n"
            "cluster); none = one image after the other inside the app."
        )
        form.addRow("Workers", self.workers)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip(
            "Classify the objects (in the background; the window stays usable)."
        )
        self.run_button.clicked.connect(self.run_prediction)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop; nothing is changed.")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setFormat("")
        form.addRow(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form.addRow(self.status)

    @staticmethod
    def _path_row(form: QFormLayout, label: str, placeholder: str, browse) -> tuple:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        row = QHBoxLayout()
        row.addWidget(edit)
        row.addWidget(button)
        form.addRow(label, row)
        return edit, button

    # ---- state ------------------------------------------------------------------------
    def scope(self) -> str:
        return next((k for k, b in self.scope_buttons.items() if b.isChecked()), "image")

    def running(self) -> bool:
        return self.job is not None and self.job.running

    def update_enabled(self, busy: bool) -> None:
        folder = self.scope() == "folder"
        for w in (self.folder, self.folder_browse, self.out_dir, self.out_browse, self.workers):
            w.setEnabled(folder)
        has_project = self.session.project is not None
        self.run_button.setEnabled(has_project and not busy and self.model.count() > 0)
        self.cancel_button.setEnabled(self.running())

    def start_progress(self, text: str, status: str) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        self.status.setText(status)

    def on_progress(self, events) -> None:
        last = events[-1]
        self.progress.setMaximum(max(1, last.total))
        self.progress.setValue(min(last.done, last.total))
        self.progress.setFormat(last.message or f"{last.fraction:.0%}")

    def cancel(self) -> None:
        if self.running():
            self.job.cancel()
            self.progress.setFormat("cancelling…")

    # ---- running ----------------------------------------------------------------------
    def run_prediction(self) -> Job | None:
        """Predict the chosen scope with the chosen model; ``None`` if it cannot start."""
        model_id, scope = self.model.selected(), self.scope()

        def plan(project):
            if model_id is None:
                raise InputError(
                    "the project has no trained model yet: train one in the Training tab"
                )
            return self._folder_plan(model_id) if scope == "folder" else self._images_plan(scope)

        def run(p, view, progress, cancel):
            if scope == "folder":
                return predicting.predict_folder(
                    p["model_dir"], p["folder"], p["out"], workers=p["workers"],
                    progress=progress, cancel=cancel,
                )  # fmt: skip
            # Everything heavy runs here: reading the images one at a time, loading the model
            # (unless cached from the last run), predicting, writing the files.
            planned = predicting.plan_prediction(
                view, model_id, p["names"], write=True, model=p["model"],
                cache_measurements=True,
            )  # fmt: skip
            result = predicting.run_prediction(planned, progress=progress, cancel=cancel)
            return result, planned.model_box

        job = run_op(
            self, self.session, "prediction", plan, run,
            lambda p, out: self._on_predicted(model_id, scope, out),
            on_progress=self.on_progress, on_failure=self._on_failed, view=scope != "folder",
        )  # fmt: skip
        if job is None:
            return None
        self.job = job
        self._result_model = ""
        self.start_progress("starting…", f"Predicting with {model_id}…")
        job.finished.connect(lambda: self.finished.emit(self._result_model))
        self.started.emit()
        return job

    def _images_plan(self, scope: str) -> dict:
        project = self.session.project
        if scope == "image":
            if self.session.current_image is None:
                raise InputError("the project has no image yet")
            names = [self.session.current_image]
        else:
            names = list(project.image_names)
            if not names:
                raise InputError("the project has no images to predict")
        return {"names": names, "model": self.model.loaded(self.model.selected())}

    def _folder_plan(self, model_id: str) -> dict:
        folder = self.folder.text().strip()
        out = self.out_dir.text().strip()
        if not folder:
            raise InputError("choose the folder with the image and mask files")
        if not out:
            raise InputError("choose an output folder for the results")
        if not Path(folder).is_dir():
            raise InputError("folder not found", folder)
        return {
            "model_dir": self.session.project.models.dir(model_id),
            "folder": folder,
            "out": out,
            "workers": self.workers.value() or None,
        }

    def _on_predicted(self, model_id: str, scope: str, result) -> None:
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("done")
        self._result_model = model_id
        if scope == "folder":
            self.last_run = result
            n = sum(result.total_counts.values())
            failed = (
                f"; {plural(len(result.errors), 'image')} failed (see errors.csv)"
                if result.errors
                else ""
            )
            self.status.setText(
                f"{plural(n, 'object')} in {plural(len(result.counts), 'image')}; "
                f"results written to {result.out_dir}{failed}"
            )
            self.folderPredicted.emit()
            return
        result, box = result
        if box:  # the worker loaded the model: keep it for the next run and Explain
            self.model.keep_loaded(model_id, box[0])
        preds = list(result.predictions.values())
        merged = dict(self.session.predictions) if self.session.prediction_model == model_id else {}
        merged.update({p.image: p for p in preds})
        self.session.set_predictions(model_id, merged)
        n = sum(len(p.ids) for p in preds)
        where = self.session.project.predictions_dir / model_id  # both scopes are saved
        self.status.setText(
            f"Classified {plural(n, 'object')} in {plural(len(preds), 'image')} "
            f"with {model_id}; saved in {where}."
        )

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status.setText(failure_text(self.job, exc, "Prediction"))
        report_error(self, exc)

    # ---- folder pickers -----------------------------------------------------------------
    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with image and mask files")
        if folder:
            self.folder.setText(folder)
            if not self.out_dir.text().strip():
                # beside the input folder: it is never written to (core/io/outputs.py)
                name = f"{Path(folder).name}-svetlana-{self.model.selected() or 'predictions'}"
                self.out_dir.setText(str(Path(folder).parent / name))

    def _browse_out(self) -> None:
        folder = choose_folder(self, "Output folder (type a new name to create it)")
        if folder:
            self.out_dir.setText(folder)

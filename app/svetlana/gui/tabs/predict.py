"""The Prediction tab: run a model on this image, all images or a folder; counts, filter, explain, export.

~770 lines, not yet split into panels (issue 20, item F): scopes (image, project, folder), the
run, the counts table, corrections, Explain and the export entries share the tab's model and
prediction state. The long verbs are plan/run/commit operations through gui/ops.run_op; the
exports' plan and run are core/usecases/export.py; the charts are a window of their own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import InputError, ModelError, SvetlanaError
from svetlana.core.io.fileio import atomic_write_json
from svetlana.core.io.outputs import RUN_FILE, check_output_folder, output_folder
from svetlana.core.jobs import CancelToken
from svetlana.core.ml.explain import FOREST_NOT_EXPLAINED
from svetlana.core.ml.forest import is_forest
from svetlana.core.usecases import predict as predicting
from svetlana.core.usecases.export import (
    BIOIMAGEIO,
    MASKS,
    OBJECTS,
    TABLE,
    ExportDone,
    ExportPlan,
    export_refusal,
    plan_export,
    run_export,
)
from svetlana.core.wording import plural
from svetlana.gui.dialogs.results_window import ResultsWindow
from svetlana.gui.jobs import Job, report_error, show_status, stop_jobs
from svetlana.gui.ops import run_op
from svetlana.gui.session import Session
from svetlana.gui.widgets.common import CountsTable, ExplainView, choose_folder
from svetlana.gui.widgets.export_menu import ExportMenu, ask_package_info, show_done
from svetlana.gui.widgets.results_panel import ResultsPanel

log = logging.getLogger(__name__)

SCOPES = ("image", "all", "folder")
EXPLAIN_TIP = (
    "Shows which part of the object's surroundings made the model choose its class\n"
    "(Grad-CAM: bright = important)."
)


# the kind each export records in its folder's run.json (a later export may replace only its own)
EXPORT_KINDS = {MASKS: "predictions", TABLE: "table", OBJECTS: "objects", BIOIMAGEIO: "bioimage.io"}
CHOSEN_FOLDER = "the folder chosen"


def export_whole(plan: ExportPlan, progress, cancel: CancelToken) -> ExportDone:
    """``run_export`` into a new folder beside the one chosen, swapped in whole once complete
    (``core/io/outputs.output_folder``, as the CLI's predict does): a cancel, a failure or a
    crash leaves the chosen folder as it was, never half-written (Qt-free; runs in the worker)."""
    kind = EXPORT_KINDS[plan.kind]
    with output_folder(plan.out_dir, kind, arg=CHOSEN_FOLDER) as tmp:
        done = run_export(replace(plan, out_dir=tmp), progress, cancel)
        if not (tmp / RUN_FILE).exists():  # the next export knows the folder is its own
            atomic_write_json(tmp / RUN_FILE, {"kind": kind})
        cancel.raise_if_cancelled()
    final = Path(plan.out_dir).absolute()
    files = tuple(final / Path(f).relative_to(tmp) for f in done.files)
    return replace(done, folder=final, files=files)


class PredictionTab(QWidget):
    """Classify objects with a trained model in the background and review the result.

    Signals for the main window: ``retrainRequested`` (connect it to
    ``TrainingTab.start_training`` and show the training tab), ``predictionFinished(model_id)``
    ("" when cancelled or failed; the worker thread is gone by then).
    The class overlay itself is drawn by the image view from ``session.predictions`` and
    ``session.view_options["max_confidence"]``.
    """

    retrainRequested = Signal()
    predictionFinished = Signal(str)
    explainFinished = Signal()
    exportFinished = Signal(object)  # ExportDone, or None when it failed or was cancelled

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self.last_run = None  # the last folder run (predicting.PredictionRun)
        self._model_cache: tuple[str, object] | None = None  # the last model loaded
        self._forest_models: dict[str, bool] = {}
        self._result_model = ""
        self._build()
        session.projectChanged.connect(self._on_project_changed)
        session.modelsChanged.connect(lambda: self.refresh_models(select_newest=True))
        session.predictionsChanged.connect(self.refresh_counts)
        session.currentImageChanged.connect(lambda _name: self.refresh_counts())
        session.labelsChanged.connect(lambda _keys: self._on_labels_changed())
        session.busyChanged.connect(lambda _b: self._update_buttons())
        session.selectionChanged.connect(lambda _sel: self._update_buttons())
        session.viewOptionsChanged.connect(self._sync_slider)
        self._on_project_changed()

    # ---- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        run_box = QGroupBox("Predict")
        form = QFormLayout(run_box)
        self.model = QComboBox()
        self.model.setToolTip("The trained model to use (newest first).")
        self.model.currentIndexChanged.connect(lambda _i: self._on_model_chosen())
        form.addRow("Model", self.model)

        self.scope_group = QButtonGroup(self)
        self.scope_buttons: dict[str, QRadioButton] = {}
        scope_row = QHBoxLayout()
        for i, (key, text, tip) in enumerate(
            (
                ("image", "This image", "Classify the objects of the image on screen."),
                ("all", "All images", "Classify every image of the project; results are saved in the project."),
                ("folder", "A folder…", "Classify image/mask pairs of a folder outside the project\n"
                 "(e.g. cells.tif with cells_masks.tif). Your files are only read."),
            )
        ):  # fmt: skip
            b = QRadioButton(text)
            b.setToolTip(tip)
            self.scope_group.addButton(b, i)
            self.scope_buttons[key] = b
            scope_row.addWidget(b)
        self.scope_buttons["image"].setChecked(True)
        self.scope_group.idToggled.connect(lambda _i, _on: self._update_buttons())
        form.addRow("Objects of", scope_row)

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder with image and mask files")
        self.folder_browse = QPushButton("Browse…")
        self.folder_browse.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(self.folder_browse)
        form.addRow("Input folder", row)
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("for the class masks and CSV")
        self.out_browse = QPushButton("Browse…")
        self.out_browse.clicked.connect(self._browse_out)
        row = QHBoxLayout()
        row.addWidget(self.out_dir)
        row.addWidget(self.out_browse)
        form.addRow("Output folder", row)
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

        result_box = QGroupBox("Result")
        res = QVBoxLayout(result_box)
        self.shown_model = QLabel()
        self.shown_model.setWordWrap(True)
        self.shown_model.setToolTip(
            "The model whose predictions are on the image, in the counts and in Export.\n"
            "Objects you labelled or corrected count (and export) as your class."
        )
        res.addWidget(self.shown_model)
        self.counts = CountsTable()
        self.counts.setToolTip(
            "Objects per class: your label where you gave one, else the model's prediction\n"
            "(exactly what Export writes)."
        )
        res.addWidget(self.counts)
        self.confidence_label = QLabel()
        self.confidence_label.setWordWrap(True)
        self.confidence = QSlider(Qt.Orientation.Horizontal)
        self.confidence.setRange(0, 100)
        self.confidence.setValue(100)
        self.confidence.setToolTip(
            "Show only the predictions the model is least sure of (confidence at or below this value):\n"
            "check them first, and correct wrong ones by clicking the object and pressing its class key."
        )
        self.confidence.valueChanged.connect(self._on_confidence)
        res.addWidget(self.confidence_label)
        res.addWidget(self.confidence)
        corr = QHBoxLayout()
        self.corrections_label = QLabel()
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip(
            "Train a new model with your corrections (the Training tab's settings)."
        )
        self.retrain_button.clicked.connect(self.retrainRequested)
        corr.addWidget(self.corrections_label, 1)
        corr.addWidget(self.retrain_button)
        res.addLayout(corr)
        self.export_button = QPushButton("Export")
        self.export_button.setToolTip(
            "Write the results to a folder: class masks and predictions.csv, a measurement\n"
            "table, objects for QuPath (GeoJSON), or the model as a bioimage.io package."
        )
        self.export_menu = ExportMenu(self)  # entries: gui/widgets/export_menu.py
        self.export_menu.aboutToShow.connect(self.refresh_export_menu)
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
        self.keep_dialog = None
        self.results_button = QPushButton("Results per class…")
        self.results_button.setToolTip(
            "Charts of the objects per class per image and of a measurement per class,\n"
            "in a window of their own; each saves as PNG or SVG with its data as CSV."
        )
        self.results_button.clicked.connect(self.open_results)
        self.actions_row = QHBoxLayout()
        self.actions_row.addWidget(self.export_button)
        self.actions_row.addWidget(self.keep_button)
        self.actions_row.addStretch(1)
        res.addLayout(self.actions_row)
        res.addWidget(self.results_button)

        explain_box = QGroupBox("Explain")
        ex = QVBoxLayout(explain_box)
        self.explain_button = QPushButton("Explain selected object")
        self.explain_button.setToolTip(EXPLAIN_TIP)
        self.explain_button.clicked.connect(self.explain_selected)
        self.explain_view = ExplainView()
        ex.addWidget(self.explain_button)
        ex.addWidget(self.explain_view)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(run_box)
        lay.addWidget(result_box, 1)
        lay.addWidget(explain_box, 2)
        # Charts per class in a window of their own (the side panel is too narrow to read them).
        self.results_panel = ResultsPanel(self.session)
        self.results_window = ResultsWindow(self.results_panel, self)
        self._sync_slider()
        self._update_buttons()

    # ---- state ----------------------------------------------------------------------
    def scope(self) -> str:
        for key, b in self.scope_buttons.items():
            if b.isChecked():
                return key
        return "image"

    def set_scope(self, scope: str) -> None:
        self.scope_buttons[scope].setChecked(True)

    def selected_model(self) -> str | None:
        return self.model.currentData()

    def _on_project_changed(self) -> None:
        self._model_cache = None
        self._forest_models = {}
        self.last_run = None
        self.refresh_models(select_newest=True)
        self.refresh_counts()
        self._update_buttons()

    def refresh_models(self, select_newest: bool = False) -> None:
        self._forest_models.clear()  # a removed model's name may come back as another model
        project = self.session.project
        current = self.selected_model()
        ids = list(reversed(project.models.ids())) if project is not None else []
        with QSignalBlocker(self.model):
            self.model.clear()
            for mid in ids:
                self.model.addItem(mid, mid)
            keep = current if current in ids and not select_newest else (ids[0] if ids else None)
            if keep is not None:
                self.model.setCurrentIndex(self.model.findData(keep))
        self.refresh_corrections()
        self.refresh_shown_model()
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.job is not None and self.job.running
        busy = self.session.busy or running
        has_project = self.session.project is not None
        scope = self.scope()
        for w in (self.folder, self.folder_browse, self.out_dir, self.out_browse, self.workers):
            w.setEnabled(scope == "folder")
        self.run_button.setEnabled(has_project and not busy and self.model.count() > 0)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(
            (bool(self.session.predictions) or self.model.count() > 0) and not busy
        )
        self.keep_button.setEnabled(bool(self.session.predictions) and not busy)
        explained = self.session.prediction_model or self.selected_model()
        forest = has_project and explained is not None and self._is_forest(explained)
        self.explain_button.setEnabled(
            has_project
            and not busy
            and self.model.count() > 0
            and bool(self.session.selection)
            and not forest
        )
        self.explain_button.setToolTip(
            f"Grad-CAM explains a CNN; {explained} is a forest on measurements: the\n"
            "measurements that decide are listed with it in the Train tab."
            if forest
            else EXPLAIN_TIP
        )

    def _is_forest(self, model_id: str) -> bool:
        """Whether a model is a forest (cards read once per model)."""
        known = self._forest_models
        if model_id not in known:
            try:
                known[model_id] = is_forest(self.session.project.models.card(model_id))
            except SvetlanaError:  # an unreadable card: Explain itself will say so
                known[model_id] = False
        return known[model_id]

    # ---- running ----------------------------------------------------------------------
    def run_prediction(self) -> Job | None:
        """Predict the chosen scope with the chosen model; ``None`` if it cannot start."""
        model_id, scope = self.selected_model(), self.scope()

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
            lambda p, out: self._on_predicted(model_id, scope, out, p),
            on_progress=self._on_progress, on_failure=self._on_failed, view=scope != "folder",
        )  # fmt: skip
        if job is None:
            return None
        self.job = job
        self._result_model = ""
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.status.setText(f"Predicting with {model_id}…")
        self.job.finished.connect(self._on_job_finished)
        self._update_buttons()
        return self.job

    def _cached_model(self, model_id: str):
        """The model loaded by the last run or Explain, if it is ``model_id`` (else None)."""
        cache = self._model_cache
        return cache[1] if cache is not None and cache[0] == model_id else None

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
        return {"names": names, "model": self._cached_model(self.selected_model())}

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

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.progress.setFormat("cancelling…")

    def _on_progress(self, events) -> None:
        last = events[-1]
        self.progress.setMaximum(max(1, last.total))
        self.progress.setValue(min(last.done, last.total))
        self.progress.setFormat(last.message or f"{last.fraction:.0%}")

    def _on_predicted(self, model_id: str, scope: str, result, _plan=None) -> None:
        if scope != "folder":
            result, box = result
            if box:  # the worker loaded the model: keep it for the next run and Explain
                self._model_cache = (model_id, box[0])
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("done")
        self._result_model = model_id
        if scope == "folder":
            self.last_run = result
            n = sum(result.total_counts.values())
            self.status.setText(
                f"{plural(n, 'object')} in {plural(len(result.counts), 'image')}; "
                f"results written to {result.out_dir}"
                + (
                    f"; {plural(len(result.errors), 'image')} failed (see errors.csv)"
                    if result.errors
                    else ""
                )
            )
            self.refresh_counts()
            return
        if self.session.project is None:
            return
        preds = list(result.predictions.values())
        merged = dict(self.session.predictions) if self.session.prediction_model == model_id else {}
        merged.update({p.image: p for p in preds})
        self.session.set_predictions(model_id, merged)
        n = sum(len(p.ids) for p in preds)
        where = f"; saved in {self.session.project.predictions_dir / model_id}"  # both scopes
        self.status.setText(
            f"Classified {plural(n, 'object')} in {plural(len(preds), 'image')} "
            f"with {model_id}{where}."
        )
        self.refresh_corrections()

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("")
        ran = self.job is not None and self.job.error is exc  # else: refused by the plan
        self.status.setText(
            "Cancelled, nothing changed."
            if ran and self.job.cancelled
            else f"Prediction failed: {exc}"
            if ran
            else str(exc)
        )
        report_error(self, exc)

    def _on_job_finished(self) -> None:
        self._update_buttons()
        self.predictionFinished.emit(self._result_model)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel running work and wait for its thread (call before the window closes the project)."""
        panel_stopped = self.results_panel.shutdown(timeout_ms)
        return stop_jobs(self.job, timeout_ms=timeout_ms) and panel_stopped

    # ---- result views -------------------------------------------------------------------
    def _on_labels_changed(self) -> None:
        self.refresh_counts()
        self.refresh_corrections()

    def _on_model_chosen(self) -> None:
        self._show_saved_predictions()
        self.refresh_corrections()
        self.refresh_shown_model()

    def _show_saved_predictions(self) -> None:
        """Nothing shown yet: show the chosen model's saved predictions of this image, when
        current (``results.saved_predictions``), as reopening a project does for the newest."""
        session, chosen = self.session, self.selected_model()
        if session.project is None or session.predictions or chosen is None:
            return
        if session.current_image is None:
            return
        from svetlana.core.usecases.results import saved_predictions

        got = saved_predictions(session.project, chosen, [session.current_image])
        if got:
            session.set_predictions(chosen, got)

    def predictions_stale(self) -> bool:
        """True when the shown predictions are not from the model chosen in the Model box."""
        shown = self.session.prediction_model
        return (
            bool(self.session.predictions) and shown is not None and shown != self.selected_model()
        )

    def refresh_shown_model(self) -> None:
        shown = self.session.prediction_model
        if not self.session.predictions or shown is None:
            self.shown_model.setText("")
            self.export_button.setText("Export")
            self.shown_model.setVisible(False)
            return
        self.shown_model.setVisible(True)
        if self.predictions_stale():
            chosen = self.selected_model()
            self.shown_model.setText(
                f"<b>⚠ Stale:</b> shown are the predictions of <b>{shown}</b>; the chosen model is "
                f"<b>{chosen}</b>. Press Run to predict with {chosen}."
            )
            self.shown_model.setStyleSheet("QLabel { background: #fff3cd; color: #664d03; }")
            self.export_button.setText(f"Export ({shown}, stale)")
        else:
            from svetlana.core.usecases.classes import class_mismatch

            text = f"Predictions of <b>{shown}</b>; your labels and corrections override them."
            first = next(iter(self.session.predictions.values()))
            note = class_mismatch(self.session.project, first.class_names)
            if note:
                text += f"<br>Note: {note}."
            self.shown_model.setText(text)
            self.shown_model.setStyleSheet("")
            self.export_button.setText(f"Export ({shown})")

    def final_classes(self) -> dict:
        """image -> FinalClasses of the shown predictions (what the overlay and Export show)."""
        from svetlana.core.annotations.final_class import project_final_classes

        if self.session.project is None:
            return {}
        return project_final_classes(self.session.project, self.session.predictions)

    def refresh_counts(self) -> None:
        finals = self.final_classes() if self.session.predictions else {}
        columns: dict[str, dict[str, int]] = {}
        names: tuple[str, ...] = ()
        colours: list[str] = []
        if finals:
            first = next(iter(finals.values()))
            names = tuple(first.class_names)
            current = finals.get(self.session.current_image)
            if current is not None:
                columns["this image"] = current.counts()
            total = dict.fromkeys(names, 0)
            for f in finals.values():
                for k, v in f.counts().items():
                    total[k] = total.get(k, 0) + v
            columns[f"all predicted ({len(finals)})"] = total
        elif self.last_run is not None:
            names = tuple(self.last_run.class_names)
            columns["folder"] = self.last_run.total_counts
        if self.session.project is not None and names:
            store = self.session.project.annotations
            colours = [store.class_info(n).colour if n in store.class_names else "" for n in names]
        self.counts.set_counts(names, colours, columns)
        self._update_confidence_label()
        self.refresh_shown_model()
        self._update_buttons()

    def _on_confidence(self, value: int) -> None:
        self.session.set_view_option("max_confidence", value / 100.0)

    def _sync_slider(self) -> None:
        value = int(round(float(self.session.view_options.get("max_confidence", 1.0)) * 100))
        if self.confidence.value() != value:
            with QSignalBlocker(self.confidence):
                self.confidence.setValue(value)
        self._update_confidence_label()

    def _update_confidence_label(self) -> None:
        x = self.confidence.value() / 100.0
        text = f"Show predictions with confidence ≤ {x:.0%}"
        pred = (
            self.session.predictions.get(self.session.current_image)
            if self.session.predictions
            else None
        )
        if pred is not None:
            shown = int((pred.confidence <= x + 1e-9).sum())
            text += f" ({shown} of {plural(len(pred.ids), 'object')} on this image)"
        self.confidence_label.setText(text)

    def refresh_corrections(self) -> None:
        # Since the chosen model (after a retrain: the new one, which learnt the earlier ones).
        model_id = self.selected_model() or self.session.prediction_model
        n = self.session.corrections_since(model_id) if model_id else 0
        self.corrections_label.setText(f"{plural(n, 'correction')} since {model_id}")
        self.corrections_label.setVisible(n > 0)
        self.retrain_button.setVisible(n > 0)

    # ---- explain ------------------------------------------------------------------------
    def explain_selected(self) -> Job | None:
        """Grad-CAM of the first selected object of the current image: the model is loaded,
        the image read and the patch cut in the worker (gui/ops.py), never on the GUI thread."""
        name = self.session.current_image
        if self.session.project is None or name is None or not self.session.selection:
            show_status(self, "select an object on the image first")
            return None
        obj = int(self.session.selection[0])
        model_id = self.session.prediction_model or self.selected_model()
        if model_id is not None and self._is_forest(model_id):
            # Said where the heatmap would be, not in an error dialog: nothing went wrong.
            self.explain_view.caption.setText(FOREST_NOT_EXPLAINED)
            show_status(self, "a forest is not explained with Grad-CAM")
            return None

        def plan(project):
            if model_id is None:
                raise InputError(
                    "the project has no trained model yet: train one in the Training tab"
                )
            card = project.models.card(model_id)
            if is_forest(card):
                raise ModelError(FOREST_NOT_EXPLAINED)
            return {"card": card, "model": self._cached_model(model_id)}

        def run(p, view, _progress, _cancel):
            from svetlana.core.ml.explain import gradcam

            model = p["model"] or predicting.load_model(view, model_id)[0]
            im = view.load(name)
            if not bool(im.table.contains(np.asarray([obj]))[0]):
                raise InputError(f"image {name!r} has no object {obj}")
            patch = im.object_patch(obj, int(p["card"]["patch_size"]))
            return model, patch, gradcam(model, patch)

        def commit(p, result) -> None:
            model, patch, heat = result
            self._model_cache = (model_id, model)
            class_names = tuple(p["card"]["classes"])
            pred = (
                self.session.predictions.get(name)
                if self.session.prediction_model == model_id
                else None
            )
            caption = f"Object {obj} ({model_id})"
            if pred is not None:
                row = int(pred.table.rows(np.asarray([obj]))[0])
                k = int(pred.class_index[row]) - 1
                caption += f": predicted {class_names[k]} ({float(pred.confidence[row]):.0%}). Bright = what decided it."
            self.explain_view.show_result(patch, heat, caption)

        job = run_op(self, self.session, "explain", plan, run, commit)
        if job is None:
            return None
        job.finished.connect(self.explainFinished)
        self.job = job
        job.finished.connect(self._update_buttons)
        return job

    # ---- export -------------------------------------------------------------------------
    def open_results(self) -> None:
        """The Results per class window (non-modal: the image stays usable beside it)."""
        self.results_window.show()
        self.results_window.raise_()
        self.results_window.activateWindow()

    def open_keep_dialog(self):
        """The 'Keep these classes…' dialog (non-modal: the image stays usable beside it)."""
        from svetlana.gui.dialogs.keep_classes import KeepClassesDialog

        if not self.session.predictions:
            show_status(self, "run a prediction first")
            return None
        if self.keep_dialog is not None:
            self.keep_dialog.close()
        self.keep_dialog = KeepClassesDialog(self.session, self)
        self.keep_dialog.show()
        return self.keep_dialog

    def export_to(self, folder: str | Path) -> list[Path]:
        """Write ``<image>_classes.tif`` and ``predictions.csv`` of the shown predictions now
        (for scripts and tests; the Export menu writes them in the background)."""
        project, preds = self.session.project, self.session.predictions
        if project is None or not preds:
            show_status(self, "nothing to export: run a prediction first")
            return []
        try:
            plan = plan_export(project, MASKS, folder, preds, self.session.prediction_model)
            check_output_folder(plan.out_dir, EXPORT_KINDS[MASKS], arg=CHOSEN_FOLDER)
            done = export_whole(plan, lambda _p: None, CancelToken())
        except (SvetlanaError, OSError) as exc:
            report_error(self, exc)
            return []
        files = list(done.files)
        show_status(self, f"exported {plural(len(files), 'file')} to {folder}")
        self.status.setText(f"Exported {plural(len(files), 'file')} to {folder}.")
        return files

    def _is_forest(self, model_id: str) -> bool:
        try:
            return is_forest(self.session.project.models.card(model_id))
        except SvetlanaError:  # an unreadable card: the worker will say so
            return False

    def refresh_export_menu(self) -> None:
        """Enable the Export entries the shown predictions and the chosen model allow."""
        project, model_id = self.session.project, self.selected_model()
        forest = False
        if project is not None and model_id:
            try:
                forest = is_forest(project.models.card(model_id))
            except SvetlanaError:  # an unreadable card: the export itself will say so
                forest = False
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
        model_id = self.selected_model() if kind == BIOIMAGEIO else self.session.prediction_model
        refusal = export_refusal(project, kind, self.session.predictions, model_id)
        if refusal is not None:  # said before a folder is asked for (none is created)
            self.status.setText(str(refusal))
            report_error(self, refusal)
            return
        start = project.path.parent
        what = {MASKS: "predictions", TABLE: "the measurement table", OBJECTS: "the GeoJSON files",
                BIOIMAGEIO: "the bioimage.io package"}[kind]  # fmt: skip
        folder = choose_folder(self, f"Export {what} to (type a new name to create it)", start)
        if not folder:
            return
        info = None
        if kind == BIOIMAGEIO:
            info = ask_package_info(self)
            if info is None:
                return
        self.start_export(kind, folder, info)

    def start_export(self, kind: str, folder: str | Path, info=None) -> Job | None:
        """Write one of the Export menu's files in the background (core/usecases/export.py)."""
        model_id = self.selected_model() if kind == BIOIMAGEIO else self.session.prediction_model
        outcome: list[ExportDone] = []

        def plan(project):
            planned = plan_export(project, kind, folder, self.session.predictions, model_id, info)
            check_output_folder(planned.out_dir, EXPORT_KINDS[kind], arg=CHOSEN_FOLDER)
            return planned

        def done(_plan, result: ExportDone) -> None:
            outcome.append(result)
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("done")
            self.status.setText(f"{result.message} Folder: {result.folder}")
            show_status(self, f"exported to {result.folder}")
            self.last_export_box = show_done(self, result)

        job = run_op(
            self, self.session, f"export-{kind}", plan,
            lambda p, _view, progress, cancel: export_whole(p, progress, cancel), done,
            on_progress=self._on_progress, on_failure=self._on_export_failed,
            view=False,  # run_export opens a read-only view of its own
        )  # fmt: skip
        if job is None:
            self.exportFinished.emit(None)
            return None
        self.job = job
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("exporting…")
        self.status.setText(f"Exporting to {job.plan.out_dir}…")
        self.job.finished.connect(self._update_buttons)
        self.job.finished.connect(lambda: self.exportFinished.emit(outcome[0] if outcome else None))
        self._update_buttons()
        return self.job

    def _on_export_failed(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        ran = self.job is not None and self.job.error is exc  # else: refused by the plan
        cancelled = ran and self.job.cancelled
        self.status.setText(
            "Export cancelled." if cancelled else f"Export failed: {exc}" if ran else str(exc)
        )
        report_error(self, exc)

    # ---- folder pickers -------------------------------------------------------------------
    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with image and mask files")
        if folder:
            self.folder.setText(folder)
            if not self.out_dir.text().strip():
                # beside the input folder: it is never written to (core/io/outputs.py)
                name = f"{Path(folder).name}-svetlana-{self.selected_model() or 'predictions'}"
                self.out_dir.setText(str(Path(folder).parent / name))

    def _browse_out(self) -> None:
        folder = choose_folder(self, "Output folder (type a new name to create it)")
        if folder:
            self.out_dir.setText(folder)

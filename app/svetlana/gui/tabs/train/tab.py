"""The Training tab: train with the settings form (gui/widgets/training_form.py), live curves,
the candidates of `auto`; the model list with each model's card is models.py. Training runs
through gui/ops.run_op.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.annotations.store import label_time
from svetlana.core.usecases import train
from svetlana.core.wording import accuracy_estimate, plural
from svetlana.gui.jobs import Job, report_error, run_job, show_status, stop_jobs
from svetlana.gui.ops import failure_text, run_op
from svetlana.gui.session import Session
from svetlana.gui.tabs.train.models import ModelsPanel
from svetlana.gui.widgets.model_card import TrainingCurves, candidate_text
from svetlana.gui.widgets.training_form import DEVICE_TEXT, FIELDS, TrainingForm

log = logging.getLogger(__name__)


def detect_devices() -> dict[str, bool]:
    """Which devices torch can use here; also loads torch's optimiser machinery and sklearn.

    Importing torch and (on the first optimiser step) torch._dynamo holds Python's GIL for up
    to ~250 ms at a time, which would freeze the window mid-training; doing it once here, in
    the background when the tab is first shown, keeps training itself smooth.
    """
    from svetlana.core.ml._torch import load_torch

    torch = load_torch("train")  # thread-safe: training may start while this runs
    from svetlana.core.ml.forest import preload

    preload()  # the same for scikit-learn (forest models)
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    devices = {"cpu": True, "cuda": bool(torch.cuda.is_available()), "mps": bool(mps)}
    from svetlana.gui.heap import freeze_loaded_objects

    freeze_loaded_objects()  # torch's and sklearn's objects out of the collector's walk
    return devices


class TrainingTab(QWidget):
    """Train a model on the labelled objects of the session's project, in the background.

    Public: ``start_training()`` (also the slot for "Retrain"), ``cancel()``; the settings are
    ``form`` (``config()``, ``settings()``/``apply_settings()``), the models ``models_panel``.
    """

    trainingStarted = Signal()
    trainingFinished = Signal(str)  # new model id, "" when cancelled or failed; thread is gone
    deviceDetected = Signal(str)  # "cuda" / "mps" / "cpu"

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self.device_job: Job | None = None
        self.devices: dict[str, bool] | None = None
        self.last_model_id = ""
        self._build()
        session.projectChanged.connect(self.refresh)
        session.modelsChanged.connect(self.models_panel.refresh)
        session.labelsChanged.connect(lambda _keys: self._refresh_label_summary())
        session.classesChanged.connect(self._refresh_label_summary)
        session.busyChanged.connect(lambda _b: self._update_buttons())
        self.refresh()

    # ---- layout -------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainingForm()
        for name in FIELDS:  # the tab reads and tests click the form's fields by name
            setattr(self, name, getattr(self.form, name))
        form_box = self.form

        self.label_summary = QLabel()
        self.label_summary.setWordWrap(True)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip(
            "Train a new model on every labelled object (the window stays usable)."
        )
        self.train_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop training; the project is left as it was.")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.candidates = QLabel()
        self.candidates.setTextFormat(Qt.TextFormat.RichText)
        self.candidates.setWordWrap(True)
        self.candidates.setToolTip(
            "Each candidate's balanced accuracy on labelled objects it was not trained on\n"
            "(mean ± spread over the cross-validation folds), as each one finishes."
        )
        self._candidate_rows: list[dict] = []

        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)

        self.curves = TrainingCurves()
        self.curves.setMinimumHeight(300)

        self.models_panel = ModelsPanel(self.session)
        self.models_panel.modelShown.connect(self._show_model)
        for name in ("models", "card", "confusion", "per_class", "confusion_title"):
            setattr(self, name, getattr(self.models_panel, name))  # read by tests

        # One column that scrolls: the panel beside the image is narrow, and a biologist reads
        # it top to bottom: settings, Train, live curves, then the result and the model list.
        column = QWidget()
        lay = QVBoxLayout(column)
        lay.addWidget(form_box)
        lay.addWidget(self.label_summary)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.candidates)
        lay.addWidget(self.curves)
        lay.addWidget(self.models_panel)
        lay.addStretch(1)
        for combo in column.findChildren(QComboBox):
            # long item texts must not widen the narrow panel (the popup still shows them whole)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(12)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(column)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._update_buttons()

    # ---- device detection -------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.devices is None and self.device_job is None:
            self.detect_device()

    def detect_device(self) -> None:
        """Find CUDA/MPS in the background (importing torch takes seconds)."""
        if self.device_job is not None:
            return
        self.device_job = run_job(
            self, lambda _p, _c: detect_devices(), on_success=self._on_devices,
            on_failure=lambda exc: log.warning("device detection failed: %s", exc), name="devices",
        )  # fmt: skip
        self.device_job.finished.connect(self._device_job_done)

    def _device_job_done(self) -> None:
        self.device_job = None

    def _on_devices(self, devices: dict[str, bool]) -> None:
        self.devices = devices
        found = "cuda" if devices.get("cuda") else "mps" if devices.get("mps") else "cpu"
        model = self.device.model()
        for i in range(self.device.count()):
            name = self.device.itemData(i)
            if name == "auto":
                self.device.setItemText(i, f"Automatic: {DEVICE_TEXT[found]}")
            elif name in devices:
                ok = devices[name]
                self.device.setItemText(i, DEVICE_TEXT[name] + ("" if ok else " – not found"))
                model.item(i).setEnabled(ok)
        self.deviceDetected.emit(found)

    # ---- training -----------------------------------------------------------------------
    def start_training(self) -> Job | None:
        """Train with the form's settings (also what "Retrain" runs). ``None`` if it cannot start."""
        # The plan is quick (checks, the model's name; a network file is checked before any
        # work); the patches and measurements are made in the worker from a read-only view of
        # the bundle; the model is committed on the main thread (gui/ops.py: run_op).
        form = self.form
        patch_size = form.patch_size_value()

        def plan(project):
            config = form.config()
            kind = "cnn" if form.arch_file else form.kind()
            return {
                "config": config,
                "n": train.check_training_labels(project),
                "kind": kind,
                "network": train.user_network(project, form.arch_file) if form.arch_file else None,
                "model_id": project.models.new_id(self.model_name.text().strip() or None),
                "started": label_time(),
                "budget": form.time_budget_value() if kind == "auto" else None,
                "mode": form.mode_choice.value(),
            }

        def run(p, view, progress, cancel):
            tjob = train.prepare_training(
                view, p["config"], patch_size=patch_size, kind=p["kind"], model_id=p["model_id"],
                started=p["started"], network=p["network"], budget_s=p["budget"], mode=p["mode"],
            )  # fmt: skip
            cancel.raise_if_cancelled()
            return tjob, train.run_training(tjob, progress, cancel)

        job = run_op(
            self, self.session, "training", plan, run, lambda _p, out: self._on_trained(out),
            on_progress=self._on_progress, on_failure=self._on_failed,
        )  # fmt: skip
        if job is None:
            return None
        self.job, p = job, job.plan
        self._candidate_rows = []
        self.candidates.setText("")
        self.last_model_id = ""
        self.curves.clear()
        self.progress.setRange(0, p["config"].epochs)
        self.progress.setValue(0)
        self.progress.setFormat(f"{p['model_id']}: starting…")
        n_labels = plural(p["n"], "labelled object")
        self.status.setText(
            f"Training {p['model_id']} on {n_labels}…"
            if p["kind"] == "cnn"
            else f"Measuring {n_labels}, then cross-validating "
            + ("a forest and a CNN…" if p["kind"] == "auto" else "a forest…")
        )
        self.job.finished.connect(self._on_job_finished)
        self._update_buttons()
        self.trainingStarted.emit()
        return self.job

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.progress.setFormat("cancelling…")

    def _on_progress(self, events) -> None:
        rows = [dict(e.metrics) for e in events if e.stage == "train" and e.metrics]
        if rows:
            self.curves.add_rows(rows)
        finished = [
            dict(e.metrics)
            for e in events
            if e.stage == "select" and e.metrics.get("event") == "candidate"
        ]
        if finished:
            self._candidate_rows += finished
            self._show_candidates()
        last = events[-1]
        if last.stage in ("select", "measure"):
            self.progress.setMaximum(max(1, last.total))
            self.progress.setValue(last.done)
            self.progress.setFormat(last.message or last.stage)
            return
        if last.stage != "train":
            return
        self.progress.setMaximum(max(1, last.total))
        self.progress.setValue(last.done)
        eta = (
            f" – about {_duration(last.eta_s)} left"
            if last.eta_s is not None and last.done < last.total
            else ""
        )
        self.progress.setFormat(f"epoch {last.done}/{last.total}{eta}")

    def _on_trained(self, out) -> None:
        tjob, result = out
        trained = self.session.commit_training(self.session.project, tjob, result)
        self.last_model_id = trained.id
        self.curves.show_model(trained.card, result.history)
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"{trained.id}: done")
        what = str(trained.card.get("architecture", ""))
        if (trained.card.get("selection") or {}).get("mode") == "auto":
            what += ", chosen by cross-validation"
        self.status.setText(
            f"Trained {trained.id} ({what}): {accuracy_estimate(result.metrics)}; "
            f"{result.seconds:.1f} s on {result.device}."
        )
        self.models_panel.select_model(trained.id)
        show_status(self, f"trained {trained.id}")

    def _show_candidates(self) -> None:
        lines = [candidate_text(r) for r in self._candidate_rows]
        self.candidates.setText(
            "<b>Candidates</b> (balanced accuracy, cross-validated):<br>" + "<br>".join(lines)
        )

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status.setText(failure_text(self.job, exc, "Training"))
        report_error(self, exc)

    def _on_job_finished(self) -> None:
        self._update_buttons()
        self.trainingFinished.emit(self.last_model_id)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel running work and wait for its thread (call before the window closes the project)."""
        return stop_jobs(self.job, self.device_job, timeout_ms=timeout_ms)

    # ---- models and project -------------------------------------------------------------
    def refresh(self) -> None:
        self.models_panel.refresh()
        self._refresh_label_summary()
        self._update_buttons()

    def _show_model(self, card: dict) -> None:
        """The chosen model's curves (a forest: a sentence), unless a training draws its own."""
        if self.job is None or not self.job.running:
            self.curves.show_model(card)

    def _refresh_label_summary(self) -> None:
        project = self.session.project
        if project is None:
            self.label_summary.setText("")
            return
        from svetlana.core.usecases.classes import rare_classes_warning

        counts = project.annotations.counts()
        first = project.image_names[:1]  # the estimate beside the mode needs labels and 2D/3D
        ndim = project.image(first[0]).ndim if first else 2
        self.form.mode_choice.set_labels(sum(counts.values()), ndim)
        parts = [f"{c}: {counts.get(c, 0)}" for c in project.annotations.class_names]
        text = "Labelled objects – " + (", ".join(parts) if parts else "no classes yet")
        warning = rare_classes_warning(counts) if counts else None
        if warning:  # shown before the user trains, not after
            text += f"\n⚠ {warning[0].upper()}{warning[1:]}."
        self.label_summary.setText(text)

    def _update_buttons(self) -> None:
        running = self.job is not None and self.job.running
        self.train_button.setEnabled(
            self.session.project is not None and not self.session.busy and not running
        )
        self.cancel_button.setEnabled(running)


def _duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"

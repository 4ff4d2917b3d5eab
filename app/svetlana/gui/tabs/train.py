"""The Training tab: every `svetlana train` option as a form, live curves, metrics and the model list.

~760 lines, not yet split into panels (issue 20, item F): the form of every `svetlana train`
option, the live curves, the candidates of `auto` and the model list are one tab; each part is
a few methods over the same widgets. Training itself runs through gui/ops.run_op.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.annotations.store import label_time
from svetlana.core.errors import SvetlanaError
from svetlana.core.ml.models import ARCHITECTURES
from svetlana.core.ml.training import AUGMENTATIONS, LOSSES, TrainingConfig
from svetlana.core.usecases import train
from svetlana.core.wording import accuracy_estimate, plural
from svetlana.gui.jobs import Job, report_error, run_job, show_status, stop_jobs
from svetlana.gui.ops import run_op
from svetlana.gui.session import Session
from svetlana.gui.widgets.common import (
    ConfusionTable,
    PerClassTable,
    TrainingCurves,
    candidate_text,
    format_card,
)

log = logging.getLogger(__name__)

LOAD_FILE = "__file__"  # item data of the "Load network file…" entry
KIND_CHOICES = ("auto", "forest")  # items before the CNN architectures

ARCH_TEXT = {
    "auto": "Automatic (forest or CNN)",
    "forest": "Forest (measurements)",
    "small": "Small CNN (~14k parameters)",
    "minimal": "Minimal CNN (the paper's; fast)",
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50 (slow without a GPU)",
}
LOSS_TEXT = {
    "ce": "Cross-entropy (standard)",
    "weighted-ce": "Weighted (rare classes count more)",
    "focal": "Focal (hard examples count more)",
    "bce": "Binary cross-entropy per class",
    "mse": "Mean squared error",
}
AUGMENT_TEXT = {
    "none": "None",
    "flips": "Flips",
    "flips+rot90": "Flips and 90° rotations",
    "full": "Flips, rotations, brightness, noise…",
}
DEVICE_TEXT = {
    "auto": "Automatic",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
}


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
    return {"cpu": True, "cuda": bool(torch.cuda.is_available()), "mps": bool(mps)}


class TrainingTab(QWidget):
    """Train a model on the labelled objects of the session's project, in the background.

    Public: ``start_training()`` (also the slot for "Retrain"), ``cancel()``, ``config()``,
    ``settings()``/``apply_settings()`` for the main window to persist the form.
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
        self._arch_file: str | None = None
        self._build()
        session.projectChanged.connect(self.refresh)
        session.modelsChanged.connect(self.refresh_models)
        session.labelsChanged.connect(lambda _keys: self._refresh_label_summary())
        session.classesChanged.connect(self._refresh_label_summary)
        session.busyChanged.connect(lambda _b: self._update_buttons())
        self.refresh()

    # ---- layout -------------------------------------------------------------------
    def _build(self) -> None:
        d = TrainingConfig()
        form_box = QGroupBox("Settings")
        form = QFormLayout(form_box)

        self.arch = QComboBox()
        for a in (*KIND_CHOICES, *ARCHITECTURES):
            self.arch.addItem(ARCH_TEXT.get(a, a), a)
        self.arch.addItem("Load network file…", LOAD_FILE)
        self.arch.setToolTip(
            "What learns to tell your classes apart.\n"
            "Automatic (recommended): measures every object, cross-validates a forest on the\n"
            "measurements and a CNN on the pixels, and keeps the better one.\n"
            "Forest: size, shape, brightness and texture measurements; fast, needs few labels.\n"
            "Small CNN: 3 conv blocks (~14k parameters); the CNN that Automatic tries.\n"
            "Minimal CNN: the SVETLANA paper's network (~3k parameters).\n"
            "ResNets: bigger; worth it for subtle differences, best with a GPU.\n"
            "Load network file: start from the weights of one of these networks\n"
            "(a state_dict .pt, e.g. an exported weights.pt) and fine-tune them on your labels.\n"
            "Files that hold a program (TorchScript, pickles) are refused."
        )
        self._arch_index = 0
        self.arch.currentIndexChanged.connect(self._on_arch_changed)
        form.addRow("Network", self.arch)

        self.time_budget = QSpinBox()
        self.time_budget.setRange(0, 24 * 3600)
        self.time_budget.setSpecialValueText("default (12 s in 2D, 20 s in 3D)")
        self.time_budget.setSuffix(" s")
        self.time_budget.setToolTip(
            "Automatic only: seconds for cross-validating the forest and the CNN and the final\n"
            "fit (like svetlana train --time-budget). A CNN that cannot finish in it is not\n"
            "tried; give more time (e.g. 120 s) for the CNN a chance on many labels."
        )
        form.addRow("Time budget", self.time_budget)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(d.epochs)
        self.epochs.setToolTip(
            "How many times the network sees every labelled object.\n"
            "More epochs learn more but take longer; watch the validation curves flatten."
        )
        form.addRow("Epochs", self.epochs)

        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(d.batch_size)
        self.batch_size.setToolTip(
            "Objects per training step. Smaller uses less memory;\n"
            "lower it if the GPU runs out of memory."
        )
        form.addRow("Batch size", self.batch_size)

        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(d.lr)
        self.lr.setToolTip(
            "How big each learning step is. Too high: the loss jumps around or explodes;\n"
            "too low: learning is slow. The default suits the minimal network."
        )
        form.addRow("Learning rate", self.lr)

        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(6)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(1e-4)
        self.weight_decay.setValue(d.weight_decay)
        self.weight_decay.setToolTip(
            "Keeps the network simple to avoid learning your labels by heart (0 = off)."
        )
        form.addRow("Weight decay", self.weight_decay)

        self.loss = QComboBox()
        for name in LOSSES:
            self.loss.addItem(LOSS_TEXT.get(name, name), name)
        self.loss.setToolTip(
            "How mistakes are scored during training.\n"
            "Use weighted cross-entropy when one class has many more labels than another."
        )
        form.addRow("Loss", self.loss)

        self.augment = QComboBox()
        for name in AUGMENTATIONS:
            self.augment.addItem(AUGMENT_TEXT.get(name, name), name)
        self.augment.setCurrentIndex(AUGMENTATIONS.index(d.augment))
        self.augment.setToolTip(
            "Shows the network flipped/rotated copies of your objects so it learns\n"
            "that orientation does not matter. 'Full' also varies brightness and adds noise."
        )
        form.addRow("Augmentation", self.augment)

        self.patch_size = QSpinBox()
        self.patch_size.setRange(3, 512)
        self.patch_size.setSpecialValueText("auto")
        self.patch_size.setSuffix(" px")
        self.patch_size.setValue(3)
        self.patch_size.setToolTip(
            "Size of the square cut out around each object.\n"
            "Auto fits nearly every object of the project with a little context."
        )
        form.addRow("Patch size", self.patch_size)

        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(d.val_fraction)
        self.val_fraction.setToolTip(
            "Share of labelled objects kept aside to check the model honestly.\n"
            "The accuracy and confusion matrix are measured on them (0 = none kept aside)."
        )
        form.addRow("Validation fraction", self.val_fraction)

        self.early_stopping = QCheckBox("Stop when validation stops improving")
        self.early_stopping.setChecked(d.early_stopping)
        self.early_stopping.setToolTip(
            "Ends training early and keeps the best model seen on the validation objects."
        )
        form.addRow("", self.early_stopping)

        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(d.seed)
        self.seed.setToolTip(
            "The same seed and settings give the same model on the CPU (reproducible)."
        )
        form.addRow("Random seed", self.seed)

        self.device = QComboBox()
        for name, text in DEVICE_TEXT.items():
            self.device.addItem(text, name)
        self.device.setToolTip(
            "Where the network is trained. Automatic uses a GPU when one is found."
        )
        form.addRow("Device", self.device)

        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setToolTip(
            "CPU threads for training. Automatic picks what is fastest for the network."
        )
        form.addRow("CPU threads", self.threads)

        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("automatic (model-1, model-2, …)")
        self.model_name.setToolTip("A name for the new model: letters, digits, '-', '_' and '.'.")
        form.addRow("Model name", self.model_name)

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

        self.models = QListWidget()
        self.models.setToolTip("Models of this project, newest first. Select one to see its card.")
        self.models.currentItemChanged.connect(self._on_model_selected)
        self.models.setMaximumHeight(110)
        self.card = QLabel()
        self.card.setTextFormat(Qt.TextFormat.RichText)
        self.card.setWordWrap(True)
        self.card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.confusion = ConfusionTable()
        self.per_class = PerClassTable()
        for table in (self.confusion, self.per_class):
            table.setMaximumHeight(170)

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
        lay.addWidget(QLabel("<b>Models</b>"))
        lay.addWidget(self.models)
        lay.addWidget(self.card)
        self.confusion_title = QLabel("Confusion matrix (validation objects)")
        self.confusion_title.setWordWrap(True)
        lay.addWidget(self.confusion_title)
        lay.addWidget(self.confusion)
        lay.addWidget(QLabel("Per class"))
        lay.addWidget(self.per_class)
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

    # ---- form <-> config ------------------------------------------------------------
    def kind(self) -> str:
        """ "auto", "forest" or "cnn" (a registry network or a network file)."""
        data = self.arch.currentData()
        return data if data in KIND_CHOICES else "cnn"

    def config(self) -> TrainingConfig:
        """The form as a TrainingConfig (raises TrainingError with a plain message)."""
        arch = self.arch.currentData()
        return TrainingConfig(
            arch=arch if arch in ARCHITECTURES else TrainingConfig().arch,
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            lr=float(self.lr.value()),
            weight_decay=float(self.weight_decay.value()),
            loss=self.loss.currentData(),
            augment=self.augment.currentData(),
            val_fraction=float(self.val_fraction.value()),
            seed=self.seed.value(),
            device=self.device.currentData(),
            threads=self.threads.value() or None,
            early_stopping=self.early_stopping.isChecked(),
        )

    def time_budget_value(self) -> float | None:
        """Seconds for Automatic's choice, or None for the default."""
        return float(self.time_budget.value()) or None

    def patch_size_value(self) -> int | str:
        v = self.patch_size.value()
        return "auto" if v == self.patch_size.minimum() else v

    @property
    def arch_file(self) -> str | None:
        """The network file chosen with "Load network file…", or None for a built-in network."""
        data = self.arch.currentData()
        return data if data not in (*ARCHITECTURES, *KIND_CHOICES, LOAD_FILE) else None

    def set_arch_file(self, path: str | Path | None) -> None:
        """Train from a weights file (a state_dict); ``None`` goes back to the registry."""
        with QSignalBlocker(self.arch):
            idx = self.arch.findData(str(self._arch_file)) if self._arch_file else -1
            if idx >= 0:
                self.arch.removeItem(idx)
            self._arch_file = str(path) if path else None
            if self._arch_file:
                pos = self.arch.findData(LOAD_FILE)
                self.arch.insertItem(pos, f"File: {Path(self._arch_file).name}", self._arch_file)
                self.arch.setItemData(pos, self._arch_file, Qt.ItemDataRole.ToolTipRole)
                self.arch.setCurrentIndex(pos)
            elif self.arch.currentData() not in (*KIND_CHOICES, *ARCHITECTURES):
                self.arch.setCurrentIndex(0)
        self._arch_index = self.arch.currentIndex()

    def _on_arch_changed(self, index: int) -> None:
        self.time_budget.setEnabled(self.arch.itemData(index) == "auto")
        if self.arch.itemData(index) != LOAD_FILE:
            self._arch_index = index
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Network to fine-tune", "", "PyTorch weights (*.pt *.pth);;All files (*)"
        )
        if path:
            self.set_arch_file(path)
        else:
            with QSignalBlocker(self.arch):
                self.arch.setCurrentIndex(self._arch_index)

    def settings(self) -> dict:
        """The form for the main window to store (QSettings); ``apply_settings`` restores it."""
        d = self.config().to_dict()
        d["patch_size"] = self.patch_size_value()
        d["kind"] = self.kind()
        d["time_budget"] = self.time_budget.value()
        return d

    def apply_settings(self, d: dict) -> None:
        d = dict(d or {})
        patch = d.pop("patch_size", "auto")
        # Settings stored before model kinds existed named only a CNN: the new default is auto.
        kind = d.pop("kind", "auto")
        budget = d.pop("time_budget", 0)
        try:
            cfg = TrainingConfig.from_dict(
                {k: v for k, v in d.items() if k in TrainingConfig().to_dict()}
            )
        except SvetlanaError as exc:
            log.warning("stored training settings ignored: %s", exc)
            return
        self.arch.setCurrentIndex(
            max(0, self.arch.findData(kind if kind in KIND_CHOICES else cfg.arch))
        )
        self.epochs.setValue(cfg.epochs)
        self.batch_size.setValue(cfg.batch_size)
        self.lr.setValue(cfg.lr)
        self.weight_decay.setValue(cfg.weight_decay)
        self.loss.setCurrentIndex(max(0, self.loss.findData(cfg.loss)))
        self.augment.setCurrentIndex(max(0, self.augment.findData(cfg.augment)))
        self.val_fraction.setValue(cfg.val_fraction)
        self.seed.setValue(cfg.seed)
        self.device.setCurrentIndex(max(0, self.device.findData(cfg.device)))
        self.threads.setValue(cfg.threads or 0)
        self.early_stopping.setChecked(cfg.early_stopping)
        self.patch_size.setValue(
            self.patch_size.minimum() if patch in (None, "auto") else int(patch)
        )
        try:
            self.time_budget.setValue(max(0, int(float(budget or 0))))
        except (TypeError, ValueError):
            self.time_budget.setValue(0)

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
        patch_size = self.patch_size_value()

        def plan(project):
            config = self.config()
            kind = "cnn" if self.arch_file else self.kind()
            return {
                "config": config,
                "n": train.check_training_labels(project),
                "kind": kind,
                "network": train.user_network(project, self.arch_file) if self.arch_file else None,
                "model_id": project.models.new_id(self.model_name.text().strip() or None),
                "started": label_time(),
                "budget": self.time_budget_value() if kind == "auto" else None,
            }

        def run(p, view, progress, cancel):
            tjob = train.prepare_training(
                view, p["config"], patch_size=patch_size, kind=p["kind"], model_id=p["model_id"],
                started=p["started"], network=p["network"], budget_s=p["budget"],
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
        self.curves.set_rows(result.history)
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"{trained.id}: done")
        what = str(trained.card.get("architecture", ""))
        if (trained.card.get("selection") or {}).get("mode") == "auto":
            what += ", chosen by cross-validation"
        self.status.setText(
            f"Trained {trained.id} ({what}): {accuracy_estimate(result.metrics)}; "
            f"{result.seconds:.1f} s on {result.device}."
        )
        self.select_model(trained.id)
        show_status(self, f"trained {trained.id}")

    def _show_candidates(self) -> None:
        lines = [candidate_text(r) for r in self._candidate_rows]
        self.candidates.setText(
            "<b>Candidates</b> (balanced accuracy, cross-validated):<br>" + "<br>".join(lines)
        )

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("")
        ran = self.job is not None and self.job.error is exc  # else: refused by the plan
        self.status.setText(
            "Cancelled, nothing changed."
            if ran and self.job.cancelled
            else f"Training failed: {exc}"
            if ran
            else str(exc)
        )
        report_error(self, exc)

    def _on_job_finished(self) -> None:
        self._update_buttons()
        self.trainingFinished.emit(self.last_model_id)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel running work and wait for its thread (call before the window closes the project)."""
        return stop_jobs(self.job, self.device_job, timeout_ms=timeout_ms)

    # ---- models and project -------------------------------------------------------------
    def refresh(self) -> None:
        self.refresh_models()
        self._refresh_label_summary()
        self._update_buttons()

    def refresh_models(self) -> None:
        project = self.session.project
        current = self.selected_model()
        with QSignalBlocker(self.models):
            self.models.clear()
            ids = list(reversed(project.models.ids())) if project is not None else []
            for mid in ids:
                item = QListWidgetItem(model_line(project, mid))
                item.setData(Qt.ItemDataRole.UserRole, mid)
                self.models.addItem(item)
        keep = current if current in ids else (ids[0] if ids else None)
        if keep:
            self.select_model(keep)
        else:
            self._show_card(None)

    def selected_model(self) -> str | None:
        item = self.models.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select_model(self, model_id: str) -> None:
        for i in range(self.models.count()):
            if self.models.item(i).data(Qt.ItemDataRole.UserRole) == model_id:
                if self.models.currentRow() == i:
                    self._on_model_selected(self.models.item(i), None)
                else:
                    self.models.setCurrentRow(i)
                return

    def _on_model_selected(self, item, _previous=None) -> None:
        self._show_card(item.data(Qt.ItemDataRole.UserRole) if item is not None else None)

    def _show_card(self, model_id: str | None) -> None:
        project = self.session.project
        if project is None or model_id is None:
            self.card.setText(
                "No model yet: label objects of at least two classes, then press Train."
            )
            self.confusion.setRowCount(0)
            self.per_class.setRowCount(0)
            return
        try:
            card = project.models.card(model_id)
        except SvetlanaError as exc:
            self.card.setText(f"Cannot read this model's card: {exc}")
            return
        self.card.setText(format_card(card))
        classes = card.get("classes", [])
        metrics = card.get("metrics") or {}
        self.confusion_title.setText(
            "Confusion matrix (cross-validation: each labelled object judged by a model not "
            "trained on it)"
            if metrics.get("estimate") == "cross-validation"
            else "Confusion matrix (validation objects)"
        )
        self.confusion.set_matrix(metrics.get("confusion", []), classes)
        self.per_class.set_rows(metrics.get("per_class", []), classes)
        if self.job is None or not self.job.running:
            self.curves.set_rows(card.get("history") or [])

    def _refresh_label_summary(self) -> None:
        project = self.session.project
        if project is None:
            self.label_summary.setText("")
            return
        from svetlana.core.usecases.classes import rare_classes_warning

        counts = project.annotations.counts()
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


def model_line(project, model_id: str) -> str:
    """'model-2 · forest · 91% cross-validated · 2026-03-01 14:05': a model in the list."""
    try:
        card = project.models.card(model_id)
    except SvetlanaError:
        return f"{model_id} · card unreadable"
    forest = card.get("kind") == "forest" or card.get("architecture") == "forest"
    kind = "forest" if forest else f"CNN {card.get('architecture', '?')}"
    metrics = card.get("metrics") or {}
    acc = metrics.get("accuracy")
    if isinstance(acc, int | float):
        how = {"cross-validation": "cross-validated"}.get(
            metrics.get("estimate"), "on validation" if metrics.get("n_val") else "on training"
        )
        acc_text = f"{acc:.0%} {how}"
    else:
        acc_text = "accuracy unknown"
    date = str(card.get("created", "")).replace("T", " ")[:16]
    return " · ".join(t for t in (model_id, kind, acc_text, date) if t)


def _duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"

"""The Train tab's settings: every `svetlana train` option as a form (TrainingForm), read as a
TrainingConfig, saved and restored with the window's settings."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from svetlana.core.errors import SvetlanaError
from svetlana.core.ml.models import ARCHITECTURES
from svetlana.core.ml.training_config import AUGMENTATIONS, LOSSES, TrainingConfig
from svetlana.gui.widgets.mode_choice import ModeChoice

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

# each field's tooltip (what it does, in a biologist's words)
TIPS = {
    "time_budget": "Automatic only: seconds for cross-validating the forest and the CNN and the final\n"
    "fit (like svetlana train --time-budget). A CNN that cannot finish in it is not\n"
    "tried; give more time (e.g. 120 s) for the CNN a chance on many labels.",
    "epochs": "How many times the network sees every labelled object.\n"
    "More epochs learn more but take longer; watch the validation curves flatten.",
    "batch_size": "Objects per training step. Smaller uses less memory;\n"
    "lower it if the GPU runs out of memory.",
    "lr": "How big each learning step is. Too high: the loss jumps around or explodes;\n"
    "too low: learning is slow. The default suits the minimal network.",
    "weight_decay": "Keeps the network simple to avoid learning your labels by heart (0 = off).",
    "loss": "How mistakes are scored during training.\n"
    "Use weighted cross-entropy when one class has many more labels than another.",
    "augment": "Shows the network flipped/rotated copies of your objects so it learns\n"
    "that orientation does not matter. 'Full' also varies brightness and adds noise.",
    "patch_size": "Size of the square cut out around each object.\n"
    "Auto fits nearly every object of the project with a little context.",
    "val_fraction": "Share of labelled objects kept aside to check the model honestly.\n"
    "The accuracy and confusion matrix are measured on them (0 = none kept aside).",
    "early_stopping": "Ends training early and keeps the best model seen on the validation objects.",
    "seed": "The same seed and settings give the same model on the CPU (reproducible).",
    "device": "Where the network is trained. Automatic uses a GPU when one is found.",
    "threads": "CPU threads for training. Automatic picks what is fastest for the network.",
}


# the form's fields, also reachable on the tab (tab.epochs is tab.form.epochs)
FIELDS = (
    "arch", "time_budget", "epochs", "batch_size", "lr", "weight_decay", "loss", "augment",
    "patch_size", "val_fraction", "early_stopping", "seed", "device", "threads", "model_name",
)  # fmt: skip


class TrainingForm(QGroupBox):
    """The settings of the next training; ``config()`` reads them (raises with a plain message)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Settings", parent)
        self._arch_file: str | None = None
        d = TrainingConfig()
        form = QFormLayout(self)

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

        row = _Rows(form)
        self.time_budget = row.spin("time_budget", "Time budget", (0, 24 * 3600), 0, " s")
        self.time_budget.setSpecialValueText("default (grows with labels)")
        self.mode_choice = ModeChoice(self.time_budget)  # quick / thorough, and the estimate
        form.addRow("Mode", self.mode_choice)
        self.epochs = row.spin("epochs", "Epochs", (1, 10000), d.epochs)
        self.batch_size = row.spin("batch_size", "Batch size", (1, 4096), d.batch_size)
        self.lr = row.dspin("lr", "Learning rate", (1e-6, 1.0), d.lr, step=1e-4, decimals=6)
        self.weight_decay = row.dspin(
            "weight_decay", "Weight decay", (0.0, 1.0), d.weight_decay, step=1e-4, decimals=6
        )
        self.loss = row.combo("loss", "Loss", LOSS_TEXT, LOSSES, d.loss)
        self.augment = row.combo("augment", "Augmentation", AUGMENT_TEXT, AUGMENTATIONS, d.augment)
        self.patch_size = row.spin("patch_size", "Patch size", (3, 512), 3, " px")
        self.patch_size.setSpecialValueText("auto")
        self.val_fraction = row.dspin(
            "val_fraction", "Validation fraction", (0.0, 0.9), d.val_fraction, step=0.05
        )
        self.early_stopping = QCheckBox("Stop when validation stops improving")
        self.early_stopping.setChecked(d.early_stopping)
        self.early_stopping.setToolTip(TIPS["early_stopping"])
        form.addRow("", self.early_stopping)
        self.seed = row.spin("seed", "Random seed", (0, 2**31 - 1), d.seed)
        self.device = row.combo("device", "Device", DEVICE_TEXT, tuple(DEVICE_TEXT), d.device)
        self.threads = row.spin("threads", "CPU threads", (0, 256), 0)
        self.threads.setSpecialValueText("automatic")
        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("automatic (model-1, model-2, …)")
        self.model_name.setToolTip("A name for the new model: letters, digits, '-', '_' and '.'.")
        form.addRow("Model name", self.model_name)

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
        self.mode_choice.setEnabled(self.arch.itemData(index) == "auto")
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
        d["mode"] = self.mode_choice.value()
        return d

    def apply_settings(self, d: dict) -> None:
        d = dict(d or {})
        patch = d.pop("patch_size", "auto")
        # Settings stored before model kinds existed named only a CNN: the new default is auto.
        kind = d.pop("kind", "auto")
        budget = d.pop("time_budget", 0)
        self.mode_choice.set_value(d.pop("mode", "quick"))
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


class _Rows:
    """Adds one labelled row to the form: a spin box or a choice, with its range and tooltip."""

    def __init__(self, form: QFormLayout):
        self.form = form

    def _add(self, name: str, label: str, box: QWidget) -> None:
        box.setToolTip(TIPS[name])
        self.form.addRow(label, box)

    def spin(self, name: str, label: str, bounds: tuple, value: int, suffix: str = "") -> QSpinBox:
        box = QSpinBox()
        box.setRange(*bounds)
        box.setSuffix(suffix)
        box.setValue(value)
        self._add(name, label, box)
        return box

    def dspin(self, name, label, bounds, value, *, step, decimals=2) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
        box.setRange(*bounds)
        box.setSingleStep(step)
        box.setValue(value)
        self._add(name, label, box)
        return box

    def combo(self, name: str, label: str, texts: dict, names, current: str) -> QComboBox:
        box = QComboBox()
        for n in names:
            box.addItem(texts.get(n, n), n)
        box.setCurrentIndex(max(0, box.findData(current)))
        self._add(name, label, box)
        return box

"""Automatic's mode, quick or thorough (as `svetlana train --mode`), with beside it what the
choice will do and for about how long (core.ml.choosing.estimate_text), before Train is pressed."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from svetlana.core.ml.choosing import MODES, estimate_text

MODE_TEXT = {"quick": "Quick", "thorough": "Thorough (minutes)"}
TIP = (
    "Automatic only (like svetlana train --mode).\n"
    "Quick: the forest and the CNN on up to 3 folds, in a budget that grows with the labels\n"
    "(~20 s for 500 labels in 2D).\n"
    "Thorough: the CNN on every fold and the hybrid (the forest on the measurements plus the\n"
    "CNN's probabilities); minutes (~7 min for 500 labels on a 2-core computer)."
)


class ModeChoice(QWidget):
    """The mode box and the estimate under it; ``set_labels`` tells it how many labels there are."""

    def __init__(self, budget: QSpinBox, parent: QWidget | None = None):
        super().__init__(parent)
        self.budget = budget
        self.combo = QComboBox()
        for m in MODES:
            self.combo.addItem(MODE_TEXT[m], m)
        self.combo.setToolTip(TIP)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setToolTip("What Automatic will do, and the most it may take")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo)
        lay.addWidget(self.estimate)
        self._labels, self._ndim = 0, 2
        self.combo.currentIndexChanged.connect(lambda _i: self.refresh())
        budget.valueChanged.connect(lambda _v: self.refresh())
        self.refresh()

    def value(self) -> str:
        return self.combo.currentData()

    def set_value(self, mode: str) -> None:
        self.combo.setCurrentIndex(max(0, self.combo.findData(mode)))

    def set_labels(self, n: int, ndim: int) -> None:
        self._labels, self._ndim = int(n), int(ndim)
        self.refresh()

    def refresh(self) -> None:
        if not self.isEnabled():
            self.estimate.setText("")
            return
        given = float(self.budget.value()) or None
        mode, what = estimate_text(self._labels, self._ndim, self.value(), given).split(": ", 1)
        self.estimate.setText(f"In {mode} mode it {what}.")  # "quick: cross-validates…"

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.EnabledChange:
            self.refresh()

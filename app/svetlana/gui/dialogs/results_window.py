"""*Results per class* in a window of its own (non-modal, resizable): the charts are large
enough to read, their legends above the bars, and what is saved looks like the window."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QVBoxLayout, QWidget

from svetlana.gui.widgets.results_panel import ResultsPanel


class ResultsWindow(QDialog):
    """Holds the Predict tab's ResultsPanel; closing it only hides it (the panel stops
    recomputing while hidden and catches up when shown again)."""

    def __init__(self, panel: ResultsPanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Results per class — Svetlana")
        self.setModal(False)
        self.panel = panel
        lay = QVBoxLayout(self)
        lay.addWidget(panel)
        self.resize(960, 760)

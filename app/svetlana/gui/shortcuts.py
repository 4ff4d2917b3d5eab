"""The keyboard shortcuts, listed once for the help dialog (the ? key)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("1 … 9", "Label the current object(s) with the class of that key, then go to the next"),
    ("0 or Backspace", "Clear the label of the current object(s)"),
    ("Space or →", "Skip: go to the next object"),
    ("←", "Go back to the previous object"),
    ("Click", "Select an object (Ctrl+click adds to the selection)"),
    ("Shift+drag", "Select the objects in a rectangle (plain drag in Click mode)"),
    ("Middle-drag / wheel", "Pan / zoom the image"),
    ("Ctrl+0", "Show the whole image"),
    ("Page Up / Page Down", "Previous / next image"),
    (", and .  or ↑ and ↓", "Previous / next Z slice (3D images)"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"),
    ("Ctrl+1 / Ctrl+2 / Ctrl+3", "Annotate / Train / Predict tab"),
    ("Ctrl+N / Ctrl+O", "New project / open project"),
    ("?", "Show this list"),
)


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — Svetlana")
        table = QTableWidget(len(SHORTCUTS), 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for row, (keys, what) in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(620, 420)

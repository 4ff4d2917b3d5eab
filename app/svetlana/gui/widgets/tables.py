"""Read-only result tables of the Train and Predict tabs: confusion matrix, per-class metrics,
counts per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)


def _item(
    text: str, align=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    it.setTextAlignment(align)
    return it


class ReadOnlyTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def text(self, row: int, col: int) -> str:
        it = self.item(row, col)
        return it.text() if it is not None else ""


class ConfusionTable(ReadOnlyTable):
    """Rows: true class; columns: predicted class. The diagonal (correct) is tinted green."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip(
            "Rows: the class you labelled. Columns: the class the model predicted.\n"
            "Numbers off the diagonal are mistakes on the validation objects."
        )

    def set_matrix(self, confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> None:
        m = np.asarray(confusion, dtype=np.int64)
        k = len(class_names)
        self.clear()
        self.setRowCount(k)
        self.setColumnCount(k)
        self.setHorizontalHeaderLabels([f"→ {c}" for c in class_names])
        self.setVerticalHeaderLabels(list(class_names))
        for i in range(k):
            for j in range(k):
                v = int(m[i, j]) if m.shape == (k, k) else 0
                it = _item(str(v))
                if i == j:
                    it.setBackground(QBrush(QColor(200, 240, 200)))
                elif v:
                    it.setBackground(QBrush(QColor(250, 210, 200)))
                self.setItem(i, j, it)


class PerClassTable(ReadOnlyTable):
    """Precision, recall, F1 and support per class."""

    COLUMNS = ("precision", "recall", "F1", "objects")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip(
            "Precision: of the objects the model called this class, the fraction that really are.\n"
            "Recall: of the objects of this class, the fraction the model found.\n"
            "F1: the balance of both. Objects: validation objects of this class."
        )

    def set_rows(self, per_class: Sequence[Mapping], class_names: Sequence[str]) -> None:
        self.clear()
        self.setRowCount(len(class_names))
        self.setColumnCount(len(self.COLUMNS))
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.setVerticalHeaderLabels(list(class_names))
        for i, row in enumerate(per_class[: len(class_names)]):
            for j, key in enumerate(("precision", "recall", "f1")):
                self.setItem(i, j, _item(f"{float(row.get(key, 0.0)):.2f}"))
            self.setItem(i, 3, _item(str(int(row.get("support", 0)))))


class CountsTable(ReadOnlyTable):
    """Objects per predicted class, with the class colour; columns are set by the caller."""

    def set_counts(
        self,
        class_names: Sequence[str],
        colours: Sequence[str],
        columns: Mapping[str, Mapping[str, int]],
    ) -> None:
        self.clear()
        heads = list(columns)
        self.setRowCount(len(class_names))
        self.setColumnCount(len(heads) + 1)
        self.setHorizontalHeaderLabels(["class", *heads])
        self.verticalHeader().setVisible(False)
        for i, name in enumerate(class_names):
            it = _item(name, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            if i < len(colours) and QColor.isValidColorName(colours[i]):
                it.setData(Qt.ItemDataRole.DecorationRole, QColor(colours[i]))
            self.setItem(i, 0, it)
            for j, h in enumerate(heads):
                self.setItem(i, j + 1, _item(str(int(columns[h].get(name, 0)))))

    def counts(self, column: int = 1) -> dict[str, int]:
        return {self.text(r, 0): int(self.text(r, column) or 0) for r in range(self.rowCount())}

"""Small widgets shared by the training and prediction tabs: metric tables, curves, model card.

~390 lines, not split: a dozen independent small widgets and text helpers (each < 70 lines,
no shared state); split, they would only scatter the tabs' imports.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.wording import accuracy_estimate, plural

log = logging.getLogger(__name__)


class FolderDialog(QFileDialog):
    """A folder picker in which typing the name of a folder that does not exist yet creates it
    (Qt's own picker would answer "Directory not found"); native pickers offer "New folder"."""

    def __init__(self, parent: QWidget | None, title: str, start: str | Path = ""):
        super().__init__(parent, title, str(start))
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly, True)
        self.setLabelText(QFileDialog.DialogLabel.FileName, "Folder (a new name creates it)")

    def accept(self) -> None:
        typed = self._typed_path()
        if typed is not None and not typed.exists() and typed.parent.is_dir():
            try:
                typed.mkdir()
            except OSError as exc:
                log.warning("cannot create %s: %s", typed, exc)
            else:
                self.setDirectory(str(typed.parent))
                self.selectFile(typed.name)
        super().accept()

    def _typed_path(self) -> Path | None:
        from PySide6.QtWidgets import QLineEdit

        edit = self.findChild(QLineEdit, "fileNameEdit")
        text = edit.text().strip() if edit is not None else ""
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else Path(self.directory().absolutePath()) / path


def choose_folder(parent: QWidget | None, title: str, start: str | Path = "") -> str:
    """The chosen folder ("" when cancelled); a new folder can be made by typing its name."""
    dialog = FolderDialog(parent, title, start)
    if not dialog.exec():
        return ""
    files = dialog.selectedFiles()
    return files[0] if files else ""


class WheelGuard(QObject):
    """Application event filter: the mouse wheel changes a spin box or combo box only when it has
    the keyboard focus (click it first); otherwise the wheel scrolls the panel underneath.

    Fields get ``Qt.StrongFocus`` as they are polished, so the wheel itself no longer focuses them.
    Fields that never take focus (``NoFocus``, e.g. the image list) keep their wheel.
    """

    FIELDS = (QAbstractSpinBox, QComboBox)

    @classmethod
    def adopt(cls, root: QWidget) -> None:
        """Give the fields already polished under ``root`` the strong focus policy."""
        for field in root.findChildren(QWidget):
            if isinstance(field, cls.FIELDS) and field.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Polish and isinstance(obj, self.FIELDS):
            if obj.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                obj.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        elif (
            kind == QEvent.Type.Wheel
            and isinstance(obj, self.FIELDS)
            and obj.focusPolicy() != Qt.FocusPolicy.NoFocus
            and not obj.hasFocus()
        ):
            area = obj.parentWidget()
            while area is not None and not isinstance(area, QAbstractScrollArea):
                area = area.parentWidget()
            if area is None:
                event.ignore()  # Qt offers a real wheel event to the parents
            else:  # scroll the panel underneath, as if the field were not there
                QApplication.sendEvent(area.viewport(), event)
                event.accept()
            return True
        return False


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


class TrainingCurves(QWidget):
    """Loss and accuracy per epoch, training (solid) and validation (dashed)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget(title="loss")
        self.acc_plot = pg.PlotWidget(title="accuracy")
        for p in (self.loss_plot, self.acc_plot):
            p.setBackground("w")
            p.showGrid(x=True, y=True, alpha=0.3)
            p.setLabel("bottom", "epoch")
            p.addLegend(offset=(-10, 10))
            p.setMinimumHeight(140)
            # The wheel scrolls the panel, never zooms: a zoom would stay for later trainings.
            p.setMouseEnabled(x=False, y=False)
            p.setMenuEnabled(False)
            p.hideButtons()
            lay.addWidget(p)
        self.acc_plot.setYRange(0, 1.02)
        # A forest learns in one go: what it shows instead of curves (``show_model``).
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("QLabel { padding: 12px; }")
        self.note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note.hide()
        lay.addWidget(self.note)
        train_pen = pg.mkPen("#1f77b4", width=2)
        val_pen = pg.mkPen("#d62728", width=2, style=Qt.PenStyle.DashLine)
        self.loss_train = self.loss_plot.plot([], [], pen=train_pen, name="training")
        self.loss_val = self.loss_plot.plot([], [], pen=val_pen, name="validation")
        self.acc_train = self.acc_plot.plot([], [], pen=train_pen, name="training")
        self.acc_val = self.acc_plot.plot([], [], pen=val_pen, name="validation")
        self.rows: list[dict] = []

    def show_model(self, card: Mapping, rows: Sequence[Mapping] | None = None) -> None:
        """A model's curves (``rows``, else its card's history), or for a forest, which has
        none, a sentence saying so with its cross-validated accuracy."""
        forest = card.get("kind") == "forest" or card.get("architecture") == "forest"
        history = list(rows if rows is not None else card.get("history") or [])
        if forest and not history:
            acc = accuracy_estimate(card.get("metrics") or {})
            self.note.setText(
                "A forest has no training curve: it learns from the measurements in one go, "
                f"not epoch by epoch. {acc[:1].upper() + acc[1:]}."
            )
        self._show_note(forest and not history)
        self.set_rows(history)

    def _show_note(self, note: bool) -> None:
        self.note.setVisible(note)
        self.loss_plot.setVisible(not note)
        self.acc_plot.setVisible(not note)

    def clear(self) -> None:
        self._show_note(False)
        self.rows = []
        for p in (self.loss_plot, self.acc_plot):
            p.enableAutoRange(x=True, y=p is self.loss_plot)
        self._redraw()

    def add_rows(self, rows: Sequence[Mapping]) -> None:
        self.rows.extend(dict(r) for r in rows)
        self._redraw()

    def set_rows(self, rows: Sequence[Mapping]) -> None:
        self.rows = [dict(r) for r in rows]
        self._redraw()

    def _redraw(self) -> None:
        def series(key: str) -> tuple[np.ndarray, np.ndarray]:
            pts = [
                (r["epoch"], r[key])
                for r in self.rows
                if r.get(key) is not None and math.isfinite(r[key])
            ]
            if not pts:
                return np.zeros(0), np.zeros(0)
            a = np.asarray(pts, dtype=float)
            return a[:, 0], a[:, 1]

        self.loss_train.setData(*series("loss"))
        self.loss_val.setData(*series("val_loss"))
        self.acc_train.setData(*series("accuracy"))
        self.acc_val.setData(*series("val_accuracy"))


def format_card(card: Mapping) -> str:
    """The model card as a few lines of HTML a biologist can read."""
    metrics = card.get("metrics") or {}
    acc = metrics.get("accuracy")
    counts = card.get("label_counts") or {}
    labels = ", ".join(f"{c}: {n}" for c, n in counts.items()) or ", ".join(card.get("classes", []))
    training = card.get("training") or {}
    rows = [
        ("Model", card.get("id", "")),
        ("Architecture", card.get("architecture", "?")),
        ("Classes", ", ".join(card.get("classes", []))),
        ("Labels", f"{card.get('n_labels', '?')} ({labels})"),
        (
            "Accuracy",
            accuracy_estimate(metrics).removeprefix("accuracy ")
            if isinstance(acc, int | float)
            else "–",
        ),
        *_kind_rows(card, training),
        ("Trained", str(card.get("created", "?")).replace("T", " ")[:19]),
        (
            "Device",
            f"{card.get('device', '?')}"
            + (f", {plural(int(card['threads']), 'thread')}" if card.get("threads") else ""),
        ),
        ("Time", f"{float(card.get('seconds', 0)):.1f} s"),
    ]
    body = "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>" + candidates_html(card)


def _kind_rows(card: Mapping, training: Mapping) -> list[tuple[str, str]]:
    if card.get("kind") == "forest" or card.get("architecture") == "forest":
        top = card.get("importances") or []
        names = ", ".join(html.escape(str(t.get("name"))) for t in top[:5]) or "–"
        return [
            ("Kind", f"forest of {card.get('trees', '?')} trees on object measurements"),
            ("Decides by", names),
        ]
    cnn_rows = [
        ("Patch size", f"{card.get('patch_size', '?')} px"),
        ("Epochs", str(len(card.get("history") or []) or training.get("epochs", "?"))),
    ]
    if card.get("kind") == "hybrid":
        top = card.get("importances") or []
        names = ", ".join(html.escape(str(t.get("name"))) for t in top[:5]) or "–"
        arch = html.escape(str(card.get("cnn_architecture", "?")))
        return [
            (
                "Kind",
                f"hybrid: forest of {card.get('trees', '?')} trees on object measurements "
                f"+ the class probabilities of the CNN {arch}",
            ),  # fmt: skip
            ("Decides by", names),
            *cnn_rows,
        ]
    return cnn_rows


def candidates_html(card: Mapping) -> str:
    """The cross-validated comparison of the candidates (``--arch auto``), or ""."""
    sel = card.get("selection") or {}
    rows = sel.get("candidates") or []
    if not rows:
        return ""
    cv = sel.get("cv") or {}
    how = f"{cv.get('folds', '?')}-fold cross-validation" + (
        ", grouped by image" if cv.get("grouped_by_image") else ""
    )
    if sel.get("effort") and isinstance(sel.get("budget_s"), int | float):
        how += f", {html.escape(str(sel['effort']))} mode, budget {sel['budget_s']:.0f} s"
    lines = [candidate_text(r, r.get("name") == sel.get("chosen")) for r in rows]
    reason = html.escape(str(sel.get("reason", "")))
    return (
        f"<p><b>Candidates</b> ({how}; balanced accuracy):<br>"
        + "<br>".join(lines)
        + f"<br><i>Chosen: {html.escape(str(sel.get('chosen')))}</i> – {reason}</p>"
    )


def candidate_text(row: Mapping, chosen: bool = False) -> str:
    """One candidate as a line of HTML: its mean ± spread over folds, or why it was not run."""
    name = html.escape(str(row.get("name")))
    score = row.get("balanced_accuracy")
    if row.get("status") == "done" and isinstance(score, int | float):
        text = f"{score:.1%} ± {float(row.get('spread') or 0):.1%} ({float(row.get('seconds', 0)):.1f} s)"
    else:
        status, note = str(row.get("status")), str(row.get("note") or "")
        # A note that already says it ("stopped after 0 of 3 folds: ...") is not prefixed twice.
        text = html.escape(note if note.startswith(status) else f"{status}: {note}".rstrip(": "))
    line = f"{name}: {text}"
    return f"<b>✔ {line}</b>" if chosen else f"&nbsp;&nbsp;&nbsp;{line}"


class ExplainView(QWidget):
    """An object's patch and its Grad-CAM heatmap side by side (3D: maximum projection)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel("Select an object on the image and press Explain.")
        self.caption.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumHeight(140)
        self.patch_box = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.heat_box = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        for box in (self.patch_box, self.heat_box):
            box.setMenuEnabled(False)  # pyqtgraph's right-click menu (View All, Export...)
        self.patch_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.patch_box.addItem(self.patch_item)
        self.heat_box.addItem(self.heat_item)
        self.heat_item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        lay.addWidget(self.caption)
        lay.addWidget(self.graphics)
        self.heatmap: np.ndarray | None = None

    def show_result(self, patch: np.ndarray, heatmap: np.ndarray, caption: str) -> None:
        """``patch`` (C, ...) with the object mask as last channel; ``heatmap`` its spatial shape."""
        img = patch[0] if patch.shape[0] > 1 else patch[-1]
        if img.ndim == 3:
            img, heatmap = img.max(axis=0), heatmap.max(axis=0)
        self.heatmap = heatmap
        lo, hi = np.percentile(img, (1, 99.8)) if img.size else (0.0, 1.0)
        self.patch_item.setImage(img, levels=(float(lo), float(hi) if hi > lo else float(lo) + 1))
        self.heat_item.setImage(heatmap, levels=(0.0, 1.0))
        self.patch_box.autoRange(padding=0)
        self.heat_box.autoRange(padding=0)
        self.caption.setText(caption)

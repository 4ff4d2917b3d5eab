"""The Train tab's model list: the project's models, newest first, and the chosen one's card,
confusion matrix and per-class table."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from svetlana.core.errors import SvetlanaError
from svetlana.gui.session import Session
from svetlana.gui.widgets.model_card import format_card
from svetlana.gui.widgets.tables import ConfusionTable, PerClassTable


class ModelsPanel(QWidget):
    """The models of the session's project; selecting one shows its card."""

    modelShown = Signal(dict)  # the shown model's card (its curves, or a forest's sentence)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
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
        self.confusion_title = QLabel("Confusion matrix (validation objects)")
        self.confusion_title.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("<b>Models</b>"))
        lay.addWidget(self.models)
        lay.addWidget(self.card)
        lay.addWidget(self.confusion_title)
        lay.addWidget(self.confusion)
        lay.addWidget(QLabel("Per class"))
        lay.addWidget(self.per_class)

    def refresh(self) -> None:
        """The project's models again, keeping the chosen one (else the newest)."""
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
            else "Confusion matrix (each labelled object predicted by models that did not learn "
            "from it)"
            if metrics.get("estimate") == "out-of-bag"
            else "Confusion matrix (validation objects)"
        )
        self.confusion.set_matrix(metrics.get("confusion", []), classes)
        self.per_class.set_rows(metrics.get("per_class", []), classes)
        self.modelShown.emit(dict(card))


def model_line(project, model_id: str) -> str:
    """'model-2 · forest · 91% cross-validated · 2026-03-01 14:05': a model in the list."""
    try:
        card = project.models.card(model_id)
    except SvetlanaError:
        return f"{model_id} · card unreadable"
    forest = card.get("kind") == "forest" or card.get("architecture") == "forest"
    kind = "forest" if forest else f"CNN {card.get('architecture', '?')}"
    if card.get("kind") == "hybrid":
        kind = f"hybrid (forest + CNN {card.get('cnn_architecture', '?')})"
    metrics = card.get("metrics") or {}
    acc = metrics.get("accuracy")
    if isinstance(acc, int | float):
        how = {"cross-validation": "cross-validated", "out-of-bag": "expected"}.get(
            metrics.get("estimate"), "on validation" if metrics.get("n_val") else "on training"
        )
        acc_text = f"{acc:.0%} {how}"
    else:
        acc_text = "accuracy unknown"
    date = str(card.get("created", "")).replace("T", " ")[:16]
    return " · ".join(t for t in (model_id, kind, acc_text, date) if t)

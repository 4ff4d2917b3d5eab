"""The Predict tab's Model box: the project's models, newest first, each with its kind,
accuracy and date; which ones are forests (Explain and the package refuse them); the model the
last run or Explain loaded, kept for the next."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QWidget,
)

from svetlana.core.errors import SvetlanaError
from svetlana.core.ml.forest import is_forest

TIP = "The trained model to use (newest first): kind, accuracy, date."


class ModelChooser(QComboBox):
    """The model to predict with; ``selected()`` is its id (None when the project has none).

    A model's line (id, kind, accuracy, date) is wider than the Predict panel: the box shows it
    cut with "…" (never clipped mid-word without a sign) and whole in its tooltip, and the list
    it opens is as wide as the longest line."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._forest: dict[str, bool] = {}
        self._loaded: tuple[str, object] | None = None  # (model id, the model loaded last)
        self.setToolTip(TIP)
        self.currentIndexChanged.connect(self._tip)

    def _tip(self) -> None:
        self.setToolTip(f"{self.currentText()}\n{TIP}" if self.count() else TIP)

    def _label_rect(self, opt: QStyleOptionComboBox):
        return self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, self
        )

    def shown_text(self) -> str:
        """The text the closed box shows: the current line, cut with "…" to fit."""
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        return self.fontMetrics().elidedText(
            opt.currentText, Qt.TextElideMode.ElideRight, self._label_rect(opt).width()
        )

    def paintEvent(self, _event) -> None:
        painter = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self.shown_text()
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)

    def showPopup(self) -> None:
        view = self.view()
        margin = 2 * view.frameWidth() + view.verticalScrollBar().sizeHint().width() + 16
        view.setMinimumWidth(max(self.width(), view.sizeHintForColumn(0) + margin))
        super().showPopup()

    def selected(self) -> str | None:
        return self.currentData()

    def forget(self) -> None:
        """Another project: nothing known about its models yet."""
        self._forest.clear()
        self._loaded = None

    def refresh(self, select_newest: bool = False) -> None:
        from svetlana.gui.tabs.train.models import model_line

        self._forest.clear()  # a removed model's name may come back as another model
        project = self.session.project
        current = self.selected()
        ids = list(reversed(project.models.ids())) if project is not None else []
        with QSignalBlocker(self):
            self.clear()
            for mid in ids:
                line = model_line(project, mid)
                self.addItem(line, mid)
                self.setItemData(self.count() - 1, line, Qt.ItemDataRole.ToolTipRole)
            keep = current if current in ids and not select_newest else (ids[0] if ids else None)
            if keep is not None:
                self.setCurrentIndex(self.findData(keep))
        self._tip()

    def is_forest(self, model_id: str) -> bool:
        """Whether a model is a forest (cards read once per model; unreadable: not a forest,
        the work itself then says what is wrong)."""
        if model_id not in self._forest:
            try:
                self._forest[model_id] = is_forest(self.session.project.models.card(model_id))
            except SvetlanaError:
                self._forest[model_id] = False
        return self._forest[model_id]

    def loaded(self, model_id: str | None):
        """The model loaded by the last run or Explain, if it is ``model_id`` (else None)."""
        cache = self._loaded
        return cache[1] if cache is not None and cache[0] == model_id else None

    def keep_loaded(self, model_id: str, model) -> None:
        self._loaded = (model_id, model)

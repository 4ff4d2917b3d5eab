"""Review labels: the labels confident learning judges likely wrong; jump, relabel or keep."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import SvetlanaError
from svetlana.gui import keymap
from svetlana.gui.errors import show_error
from svetlana.gui.jobs import Job, run_job, stop_jobs

log = logging.getLogger(__name__)


def _guard(slot):
    """A job callback that does nothing once the panel (its window) is deleted."""

    def call(*args):
        try:
            slot(*args)
        except RuntimeError:
            log.debug("label check result dropped: its window is gone")

    return call


class ReviewPanel(QGroupBox):
    """Rows = suspicious labels of the current image, most suspicious first. Selecting a row
    shows its object; a class key relabels it (undoable, Ctrl+Z); Keep dismisses it."""

    jump = Signal(int)  # object id of the current image to show

    def __init__(self, session, live, parent: QWidget | None = None):
        super().__init__("Review labels", parent)
        self.session = session
        self.live = live
        self._job: Job | None = None
        self._kept: set[tuple[str, int]] = set()
        self.check_button = QPushButton("Find suspicious labels")
        self.check_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.check_button.setToolTip(
            "Cross-validated forests judge each label of this image; confident learning lists\n"
            "those likely wrong. Select a row to see the object, press its right class key, or\n"
            "Keep to dismiss it."
        )
        self.check_button.clicked.connect(self.check)
        self.keep_button = QPushButton("Keep")
        self.keep_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.keep_button.setToolTip("The label is right: remove the row (K)")
        self.keep_button.clicked.connect(self.keep)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #444;")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Object", "Label", "Suggested", "Score"])
        self.tree.setRootIsDecorated(False)
        self.tree.setMaximumHeight(150)
        self.tree.currentItemChanged.connect(self._on_row)
        row = QHBoxLayout()
        row.addWidget(self.check_button, 1)
        row.addWidget(self.keep_button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.tree)
        session.currentImageChanged.connect(lambda _n: self.clear())
        session.projectChanged.connect(self.clear)

    def clear(self) -> None:
        self.tree.clear()
        self.status.setText("")

    # ---- checking ------------------------------------------------------------------------
    def check(self) -> None:
        r = self.live.result
        if r is None or r.image != self.session.current_image:
            self.status.setText("Waiting for the live predictions of this image…")
            self.live.schedule(0)
            return
        if self._job is not None and self._job.running:
            return
        table = r.table

        def work(progress, cancel):
            from svetlana.core.usecases.label_check import check_labels

            return check_labels(table, cancel=cancel)

        self.status.setText("Checking the labels…")
        self.check_button.setEnabled(False)
        self._job = run_job(
            None, work, on_success=_guard(self._show), on_failure=_guard(self._failed),
            name="check-labels",
        )  # fmt: skip
        self._job.finished.connect(_guard(lambda: self.check_button.setEnabled(True)))

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(str(exc))

    def _show(self, check) -> None:
        from svetlana.core.wording import plural

        self.tree.clear()
        image = self.session.current_image
        for s in check.suspects:
            if (s.image, s.object) in self._kept or s.image != image:
                continue
            item = QTreeWidgetItem([str(s.object), s.label, s.suggested, f"{s.score:.2f}"])
            item.setData(0, Qt.ItemDataRole.UserRole, s.object)
            self.tree.addTopLevelItem(item)
        n = self.tree.topLevelItemCount()
        text = (
            f"{plural(n, 'label')} of {check.checked} judged likely wrong"
            if n
            else f"All {check.checked} labels look right."
        )
        if check.unchecked_classes:
            text += f" Not judged (fewer than 3 labels): {', '.join(check.unchecked_classes)}."
        self.status.setText(text)
        if n:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
            self.tree.setFocus()

    # ---- rows ----------------------------------------------------------------------------
    def current_object(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else int(item.data(0, Qt.ItemDataRole.UserRole))

    def _on_row(self, item, _previous) -> None:
        if item is not None:
            self.jump.emit(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def _drop_current(self) -> None:
        item = self.tree.currentItem()
        if item is None:
            return
        index = self.tree.indexOfTopLevelItem(item)
        self.tree.takeTopLevelItem(index)
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(
                self.tree.topLevelItem(min(index, self.tree.topLevelItemCount() - 1))
            )

    def keep(self) -> None:
        obj = self.current_object()
        if obj is None:
            return
        self._kept.add((self.session.current_image, obj))
        self._drop_current()

    def relabel(self, class_name: str) -> None:
        obj = self.current_object()
        if obj is None:
            return
        try:
            self.session.label((obj,), class_name)  # one step on the undo stack
        except SvetlanaError as exc:
            show_error(self, exc)
            return
        self._drop_current()

    def handle_key(self, event: QKeyEvent) -> bool:
        """Class keys and K while a row of the list has the focus."""
        if not self.tree.hasFocus() or self.current_object() is None:
            return False
        action = keymap.action_for(event, keymap.REVIEW)
        if action == "label":
            cls = self.session.project.annotations.class_for_key(event.text())
            if cls is not None:
                self.relabel(cls)
            return True
        if action == "keep":
            self.keep()
            return True
        return False

    def shutdown(self) -> bool:
        return stop_jobs(self._job)

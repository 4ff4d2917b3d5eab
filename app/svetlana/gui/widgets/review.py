"""Review labels: the labels confident learning judges likely wrong; jump, relabel or keep."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

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


KEEP_TIP = "The current object's label is right: remove its row (K)"
KEEP_TIP_NO_ROW = (
    "Keep dismisses a row of the list: click Find suspicious labels, then select a row"
)


class ReviewPanel(QGroupBox):
    """Rows = suspicious labels of the current image, most suspicious first. Selecting a row
    makes its object the session's current object; a class key relabels it (undoable, Ctrl+Z)
    and the next row follows; Keep dismisses it.

    The rows are derived: the last check's suspects that were neither kept nor relabelled
    since, so an undone relabelling brings its row back. The row of the current object is
    highlighted; no row is when the current object is not in the list.
    """

    jump = Signal(int)  # object id of the current image to show (the view chose it: a row)
    checked = Signal()  # a check's rows are shown

    def __init__(self, session, live, parent: QWidget | None = None):
        super().__init__("Review labels", parent)
        self.session = session
        self.live = live
        self._job: Job | None = None
        self._check = None  # the last LabelCheck of the current image
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
        self.keep_button.setToolTip(KEEP_TIP)
        self.keep_button.setEnabled(False)  # until a listed row is the current object
        self.keep_button.clicked.connect(self.keep)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #444;")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Object", "Label", "Suggested", "Score"])
        self.tree.setRootIsDecorated(False)
        self.tree.setMinimumHeight(130)  # five rows at least; more when the panel has room
        self.tree.hide()  # shown with the rows of a check
        self.tree.currentItemChanged.connect(self._on_row)
        row = QHBoxLayout()
        row.addWidget(self.check_button, 1)
        row.addWidget(self.keep_button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.tree, 1)
        session.currentImageChanged.connect(lambda _n: self.clear())
        session.projectChanged.connect(self.clear)
        session.labelsChanged.connect(lambda _k: self._check is not None and self._fill())
        session.selectionChanged.connect(lambda _ids: self._highlight_current())
        session.currentLabelled.connect(self._on_current_labelled)

    def clear(self) -> None:
        self._check = None
        self.tree.clear()
        self.tree.hide()
        self._enable_keep()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
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
        self._check = check
        self._fill()
        self.checked.emit()
        if self.tree.topLevelItemCount():
            self._choose(self.tree.topLevelItem(0))

    # ---- rows ----------------------------------------------------------------------------
    def _open(self) -> list:
        """The suspects still to review: not kept, and still labelled as when checked."""
        s = self.session
        if self._check is None or s.project is None:
            return []
        image = s.current_image
        ann = s.project.annotations

        def still(x) -> bool:
            lab = ann.get(x.image, x.object)
            return lab is not None and lab.class_name == x.label

        return [
            x
            for x in self._check.suspects
            if x.image == image and (x.image, x.object) not in self._kept and still(x)
        ]

    def _fill(self) -> None:
        from svetlana.core.wording import plural

        check = self._check
        self.tree.blockSignals(True)
        self.tree.clear()
        for x in self._open():
            item = QTreeWidgetItem([str(x.object), x.label, x.suggested, f"{x.score:.2f}"])
            item.setData(0, Qt.ItemDataRole.UserRole, x.object)
            self.tree.addTopLevelItem(item)
        self.tree.blockSignals(False)
        n = self.tree.topLevelItemCount()
        found = sum(1 for x in check.suspects if x.image == self.session.current_image)
        if n:
            text = f"{plural(n, 'label')} of {check.checked} judged likely wrong"
            if n < found:
                text += f" ({found - n} reviewed)"
        elif found:
            text = f"All {plural(found, 'suspicious label')} reviewed."
        else:
            text = f"All {check.checked} labels look right."
        if check.unchecked_classes:
            text += f" Not judged (fewer than 3 labels): {', '.join(check.unchecked_classes)}."
        self.status.setText(text)
        self.tree.setVisible(bool(n))
        vertical = QSizePolicy.Policy.Preferred if n else QSizePolicy.Policy.Maximum
        self.setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self._highlight_current()

    def _item_of(self, obj: int):
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if int(item.data(0, Qt.ItemDataRole.UserRole)) == obj:
                return item
        return None

    def _highlight_current(self) -> None:
        """The row of the session's current object is the current row; no row otherwise."""
        sel = self.session.selection
        item = self._item_of(sel[0]) if len(sel) == 1 else None
        self.tree.blockSignals(True)
        if item is None:
            self.tree.setCurrentItem(None)
            self.tree.clearSelection()
        else:
            self.tree.setCurrentItem(item)
        self.tree.blockSignals(False)
        self._enable_keep()

    def _enable_keep(self) -> None:
        """Keep acts on the highlighted row: greyed out, saying why, when there is none."""
        listed = self.current_object() is not None
        self.keep_button.setEnabled(listed)
        self.keep_button.setToolTip(KEEP_TIP if listed else KEEP_TIP_NO_ROW)

    def current_object(self) -> int | None:
        """The object of the highlighted row: the session's current object, when it is listed."""
        item = self.tree.currentItem()
        return None if item is None else int(item.data(0, Qt.ItemDataRole.UserRole))

    def _choose(self, item) -> None:
        self.tree.setCurrentItem(item)  # _on_row: the row's object becomes the current one

    def _on_row(self, item, _previous) -> None:
        if item is not None:
            self.jump.emit(int(item.data(0, Qt.ItemDataRole.UserRole)))
        self._enable_keep()

    def _next_after(self, obj: int) -> None:
        """Make the row after ``obj`` (in the check's order) current, else the last one."""
        order = [x.object for x in self._check.suspects] if self._check else []
        rows = [
            int(self.tree.topLevelItem(i).text(0)) for i in range(self.tree.topLevelItemCount())
        ]
        if not rows:
            return
        pos = order.index(obj) if obj in order else len(order)
        later = [o for o in rows if order.index(o) > pos]
        self._choose(self._item_of(later[0] if later else rows[-1]))

    def _on_current_labelled(self, source: str, ids, _class_name) -> None:
        if source == "review" and len(ids) == 1:
            self._next_after(int(ids[0]))

    def keep(self) -> None:
        obj = self.current_object()
        if obj is None:
            return
        self._kept.add((self.session.current_image, obj))
        self._fill()
        self._next_after(obj)

    def key_keep(self) -> bool:
        """K: keep the current object's label, when its row is listed (else not ours)."""
        if self.current_object() is None:
            return False
        self.keep()
        return True

    def shutdown(self) -> bool:
        return stop_jobs(self._job)

"""The Classes box: the project's classes with their keys and counts; add, rename (or merge),
recolour and remove them, each an undoable command."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.annotations.commands import AddClass, MergeClasses, RemoveClass, UpdateClass
from svetlana.core.errors import SvetlanaError
from svetlana.core.wording import plural
from svetlana.gui.errors import show_error


def _swatch(colour: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(colour))
    return QIcon(pix)


class ClassesPanel(QGroupBox):
    """The class list and its four buttons. Each button's slot takes no parameter: Qt's
    ``clicked`` passes ``checked=False`` into a slot's first one."""

    message = Signal(str)  # short status text for the window

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__("Classes", parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Key", "Class", "Labelled"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 40)
        self.tree.setColumnWidth(1, 150)
        self.tree.itemDoubleClicked.connect(
            lambda _item, col: self.ask_rename_class() if col == 1 else self.ask_class_colour()
        )
        self.tree.setToolTip("Double-click a name to rename it, the key to change its colour")
        self.tree.setMaximumHeight(130)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.ask_new_class)
        self.rename_button = QPushButton("Rename")
        self.rename_button.setToolTip(
            "Rename the class; renaming it to another class's name merges the two (undoable)"
        )
        self.rename_button.clicked.connect(self.ask_rename_class)
        self.colour_button = QPushButton("Colour")
        self.colour_button.clicked.connect(self.ask_class_colour)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.ask_remove_class)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.rename_button, self.colour_button, self.remove_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(b)
        self._reselect: str | None = None  # the class to select after the next refresh
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree)
        lay.addLayout(buttons)

    # ---- the list -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the list from the project's classes; the selected class stays selected (a
        renamed one under its new name), so Rename then Colour needs no second click."""
        keep = self._reselect or self.selected_class()
        self._reselect = None
        self.tree.clear()
        project = self.session.project
        if project is None:
            return
        for c in project.annotations.classes:
            item = QTreeWidgetItem([c.key or "–", c.name, ""])
            item.setIcon(0, _swatch(c.colour))
            item.setData(1, Qt.ItemDataRole.UserRole, c.name)
            self.tree.addTopLevelItem(item)
            if c.name == keep:
                self.tree.setCurrentItem(item)
        self._fit_height()
        self.update_counts()

    def _fit_height(self) -> None:
        """As tall as its rows (at least three, at most about six): room for the panels below."""
        row = self.tree.sizeHintForRow(0) if self.tree.topLevelItemCount() else 18
        rows = min(max(self.tree.topLevelItemCount(), 3), 6)
        frame = 2 * self.tree.frameWidth() + self.tree.header().sizeHint().height() + 4
        self.tree.setMaximumHeight(frame + rows * max(row, 16))

    def update_counts(self) -> None:
        """The Labelled column: this image's labels per class (and all images')."""
        project = self.session.project
        if project is None:
            return
        counts = project.annotations.counts(self.session.current_image)
        totals = project.annotations.counts()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            name = item.data(1, Qt.ItemDataRole.UserRole)
            item.setText(2, f"{counts.get(name, 0)}  ({totals.get(name, 0)} in all)")

    def selected_class(self) -> str | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(1, Qt.ItemDataRole.UserRole)

    def _selected_or_say(self) -> str | None:
        name = self.selected_class()
        if name is None or self.session.project is None:
            self.message.emit("select a class in the list first")
            return None
        return name

    def _push(self, cmd) -> bool:
        try:
            self.session.push(cmd)
        except SvetlanaError as exc:
            show_error(self, exc)
            return False
        return True

    # ---- the buttons --------------------------------------------------------------------
    def ask_new_class(self) -> None:
        """Add: ask for a name, add the class (undoable)."""
        if self.session.project is None:
            return
        n = len(self.session.project.annotations.classes) + 1
        name, ok = QInputDialog.getText(
            self, "Add class", "Name of the new class:", text=f"class {n}"
        )
        if ok:
            self._push(AddClass(name))

    def ask_rename_class(self) -> None:
        """Rename: a new name for the selected class; another class's name merges the two."""
        old = self._selected_or_say()
        if old is None:
            return
        new_name, ok = QInputDialog.getText(self, "Rename class", f"New name for {old}:", text=old)
        if not ok or new_name == old:
            return
        if new_name.strip() in self.session.project.annotations.class_names:
            self._ask_merge(old, new_name.strip())  # e.g. a typo 'smal' renamed to 'small'
            return
        self._reselect = new_name.strip()
        if not self._push(UpdateClass(old, new_name=new_name)):
            self._reselect = None

    def ask_class_colour(self) -> None:
        """Colour: a colour picker for the selected class."""
        name = self._selected_or_say()
        if name is None:
            return
        current = QColor(self.session.project.annotations.class_info(name).colour)
        chosen = QColorDialog.getColor(current, self, f"Colour of {name}")
        if chosen.isValid():
            self._push(UpdateClass(name, colour=chosen.name()))

    def _ask_merge(self, name: str, into: str) -> None:
        n = self.session.project.annotations.counts().get(name, 0)
        answer = QMessageBox.question(
            self,
            "Merge classes",
            f"A class {into!r} exists. Merge {name!r} into it ({plural(n, 'label')} become "
            f"{into!r})? (Edit ▸ Undo separates them again.)",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._push(MergeClasses(name, into))

    def ask_remove_class(self) -> None:
        """Remove: a class with labels goes only after a question naming how many."""
        name = self._selected_or_say()
        if name is None:
            return
        n = self.session.project.annotations.counts().get(name, 0)
        if n:
            answer = QMessageBox.question(
                self,
                "Remove class",
                f"Remove the class {name!r} and its {plural(n, 'label')}? "
                f"The {plural(n, 'object')} become unlabelled. (Edit ▸ Undo brings them back.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._push(RemoveClass(name))

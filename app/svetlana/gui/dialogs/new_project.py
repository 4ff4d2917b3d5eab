"""New project (or add images): the images and masks (image_pairs.py), where to save, class
names; validated together, then read in a worker before anything is written."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import InputError, ShapeMismatchError, SvetlanaError
from svetlana.core.project.bundle import SUFFIX, Project
from svetlana.core.usecases.setup import create_prepared, create_project
from svetlana.gui.dialogs.image_pairs import AXES_COLUMN, ImagePairsBox
from svetlana.gui.errors import show_error

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("class 1", "class 2")
__all__ = ["AXES_COLUMN", "NewProjectDialog"]  # AXES_COLUMN: where tests look for the axes


class NewProjectDialog(QDialog):
    """Collects what a new project needs. ``adding=True`` only picks images for an open project."""

    def __init__(self, parent: QWidget | None = None, adding: bool = False, start_dir: str = ""):
        super().__init__(parent)
        self.adding = adding
        self.start_dir = start_dir
        self.project: Project | None = None
        self.setWindowTitle("Add images — Svetlana" if adding else "New project — Svetlana")

        # 1. images
        self.pairs_box = ImagePairsBox(start_dir)
        self.pairs_box.destinationSuggested.connect(self._suggest_destination)
        self.table = self.pairs_box.table  # read by tests
        box1 = self.pairs_box

        # 2. where to save
        self.dest_edit = QLineEdit()
        self.dest_edit.setPlaceholderText("folder/my-project.svetlana")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_destination)
        box2 = QGroupBox("2. Where to save the project")
        lay2 = QHBoxLayout(box2)
        lay2.addWidget(self.dest_edit, 1)
        lay2.addWidget(browse)

        # 3. classes
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(110)
        for name in DEFAULT_CLASSES:
            self._add_class_item(name)
        add_class = QPushButton("Add class")
        add_class.clicked.connect(
            lambda: self._add_class_item(f"class {self.class_list.count() + 1}", edit=True)
        )
        rm_class = QPushButton("Remove class")
        rm_class.clicked.connect(lambda: self.class_list.takeItem(self.class_list.currentRow()))
        box3 = QGroupBox("3. Classes (double-click to rename; you can change them later)")
        lay3 = QHBoxLayout(box3)
        lay3.addWidget(self.class_list, 1)
        col = QVBoxLayout()
        col.addWidget(add_class)
        col.addWidget(rm_class)
        col.addStretch(1)
        lay3.addLayout(col)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Add" if adding else "Create project"
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(box1, 1)
        layout.addWidget(box2)  # kept (hidden) when adding: picking a pair fills dest_edit
        layout.addWidget(box3)
        box2.setVisible(not adding)
        box3.setVisible(not adding)
        self.status = QLabel()
        self.status.setVisible(False)
        layout.addWidget(self.status)
        # Shown when an image's shape does not match its mask's: the axes string fixes it.
        self.axes_label = QLabel("Axes:")
        self.axes_edit = QLineEdit()
        self.axes_edit.setPlaceholderText("e.g. ZCYX or YXC")
        self.axes_edit.setMaximumWidth(160)
        self.axes_edit.textChanged.connect(self._on_axes_typed)
        self._axes_row = -1
        axes_row = QHBoxLayout()
        axes_row.addWidget(self.axes_label)
        axes_row.addWidget(self.axes_edit)
        axes_row.addStretch(1)
        layout.addLayout(axes_row)
        self.axes_label.setVisible(False)
        self.axes_edit.setVisible(False)
        layout.addWidget(self.buttons)
        self.job = None
        self.resize(760, 600 if not adding else 380)

    # ---- model -------------------------------------------------------------------------
    def _add_class_item(self, name: str, edit: bool = False) -> None:
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.class_list.addItem(item)
        if edit:
            self.class_list.editItem(item)

    def class_names(self) -> list[str]:
        return [self.class_list.item(i).text().strip() for i in range(self.class_list.count())]

    def set_class_names(self, names: Sequence[str]) -> None:
        self.class_list.clear()
        for n in names:
            self._add_class_item(n)

    def to_read(self) -> list[tuple[Path, Path, str, str | None]]:
        return self.pairs_box.to_read()

    def pairs(self) -> list[tuple[Path, Path, str]]:
        return self.pairs_box.pairs()

    def add_pair(self, image, mask, name: str | None = None, axes: str | None = None) -> None:
        self.pairs_box.add_pair(image, mask, name, axes)

    def set_folder(self, folder: str | Path) -> int:
        """Fill the table with the pairs found in a folder; returns how many."""
        return self.pairs_box.set_folder(folder)

    def ask_for_axes(self, exc: SvetlanaError) -> bool:
        """After an image whose shape does not match its mask's: show the Axes column, put the
        cursor in the image's row, and say what to type. Returns whether the error was of that
        kind (a ShapeMismatchError naming an image of the table)."""
        if not isinstance(exc, ShapeMismatchError) or exc.path is None:
            return False
        row = self.pairs_box.show_axes_of(exc.path)
        if row is None:
            return False
        self._axes_row = row
        self.axes_label.setText(f"Axes of {exc.path.name}:")
        self.axes_edit.setText(self.pairs_box.axes_of(row) or "")
        self.axes_label.setVisible(True)
        self.axes_edit.setVisible(True)
        self.axes_edit.setFocus()
        self.status.setText(
            f"{exc.path.name}: {exc.message}. Type the image's axes in file order "
            "(e.g. ZCYX for Z, channel, Y, X; YXC for colour images) and press "
            f"{self.buttons.button(QDialogButtonBox.StandardButton.Ok).text()} again."
        )
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #b04000;")
        self.status.setVisible(True)
        return True

    def _on_axes_typed(self, text: str) -> None:
        self.pairs_box.set_axes(self._axes_row, text)

    def _suggest_destination(self, path: str) -> None:
        if not self.dest_edit.text():
            self.dest_edit.setText(path)

    def set_destination(self, path: str | Path) -> None:
        self.dest_edit.setText(str(path))

    def destination(self) -> Path | None:
        text = self.dest_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)

    # ---- actions -----------------------------------------------------------------------
    def _choose_destination(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save the project as",
            self.dest_edit.text() or self.start_dir,
            f"Svetlana project (*{SUFFIX})",
        )
        if path:
            self.set_destination(path)

    def validate(self) -> None:
        if not self.pairs():
            raise InputError("add at least one image with its mask")
        names = [n for _, _, n in self.pairs()]
        if len(set(names)) != len(names):
            raise InputError(
                "two images have the same name in the project; rename one in the table"
            )
        if self.adding:
            return
        dest = self.destination()
        if dest is None:
            raise InputError("choose where to save the project")
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError("already exists; choose another name for the project", dest)
        classes = self.class_names()
        if any(not c for c in classes):
            raise InputError("a class name cannot be empty")
        if len(set(classes)) != len(classes):
            raise InputError("class names must be different from each other")

    def create(self) -> Project:
        """Validate, then create the project on disk, here and now (blocking)."""
        self.validate()
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return create_project(self.destination(), self.to_read(), self.class_names())
        finally:
            QGuiApplication.restoreOverrideCursor()

    def accept(self) -> None:
        """OK: validate, read the images in a worker (the window keeps painting), then create."""
        try:
            self.validate()
        except SvetlanaError as exc:
            show_error(self, exc)
            return
        if self.adding:
            super().accept()
            return
        self._start_creating()

    def _start_creating(self) -> None:
        from svetlana.core.project.images import prepare_images
        from svetlana.gui.jobs import run_job

        pairs, dest, classes = self.to_read(), self.destination(), self.class_names()

        def work(progress, cancel):
            return prepare_images(pairs, progress, cancel)

        def done(prepared) -> None:
            try:
                self.project = create_prepared(dest, prepared, classes)
            except SvetlanaError as exc:
                self._set_working(False)
                show_error(self, exc)
                return
            self._set_working(False)
            QDialog.accept(self)

        def failed(exc: BaseException) -> None:
            self._set_working(False)
            from svetlana.core.errors import Cancelled

            if not isinstance(exc, Cancelled):
                show_error(self, exc)
                if isinstance(exc, SvetlanaError):
                    self.ask_for_axes(exc)

        self._set_working(True)
        self.job = run_job(
            self,
            work,
            on_success=done,
            on_failure=failed,
            on_progress=lambda events: self.status.setText(events[-1].message),
            name="create project",
        )

    def _set_working(self, working: bool) -> None:
        self.status.setStyleSheet("")
        self.status.setText("Reading the images…" if working else "")
        self.status.setVisible(working)
        for w in self.findChildren(QWidget):
            if w is not self.status and w is not self.buttons and w.parent() is self:
                w.setEnabled(not working)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not working)

    def reject(self) -> None:
        job = getattr(self, "job", None)
        if job is not None and job.running:
            job.cancel()
            job.wait(10000)
        super().reject()

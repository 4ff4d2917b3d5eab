"""New project (or add images): pick image+mask files or a folder of pairs, where to save, class names.

~430 lines: one dialog (files or a folder of pairs, per-row axes, destination, classes) whose
parts validate together before anything is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import InputError, SvetlanaError
from svetlana.core.project.bundle import SUFFIX, Project
from svetlana.core.project.images import default_image_name
from svetlana.core.usecases.setup import create_prepared, create_project
from svetlana.gui.errors import show_error

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("class 1", "class 2")
AXES_COLUMN = 3
IMAGE_FILTER = "Images (*.tif *.tiff *.png *.npy *.jpg *.jpeg *.bmp);;All files (*)"


class NewProjectDialog(QDialog):
    """Collects what a new project needs. ``adding=True`` only picks images for an open project."""

    def __init__(self, parent: QWidget | None = None, adding: bool = False, start_dir: str = ""):
        super().__init__(parent)
        self.adding = adding
        self.start_dir = start_dir
        self.project: Project | None = None
        self.setWindowTitle("Add images — Svetlana" if adding else "New project — Svetlana")

        # 1. images
        self.files_radio = QRadioButton("Image and mask files")
        self.folder_radio = QRadioButton("A folder of images with their masks (matched by name)")
        self.files_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.files_radio)
        group.addButton(self.folder_radio)
        self.pick_button = QPushButton("Add image and mask…")
        self.pick_button.clicked.connect(self._pick)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        self.files_radio.toggled.connect(self._mode_changed)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Image", "Mask", "Name in the project", "Axes"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeaderItem(AXES_COLUMN).setToolTip(
            "The image's axes in file order, e.g. ZCYX or YXC: only needed when the channels\n"
            "are not recognised (the image and mask shapes then seem not to match)."
        )
        self.table.setColumnHidden(AXES_COLUMN, True)  # shown when a shape does not match
        self.table.verticalHeader().hide()
        self.table.setMinimumHeight(140)
        hint = QLabel(
            "A mask is an integer label image of the same size (0 = background, one value per object), "
            "e.g. from Cellpose or StarDist. In a folder, <i>x.tif</i> pairs with <i>x_masks.tif</i>, "
            "<i>x_mask.png</i>, <i>x_cp_masks.png</i>, <i>x_seg.npy</i> or <i>masks/x.tif</i>."
        )
        hint.setWordWrap(True)
        box1 = QGroupBox("1. Images and their segmentation masks")
        lay1 = QVBoxLayout(box1)
        lay1.addWidget(self.files_radio)
        lay1.addWidget(self.folder_radio)
        row = QHBoxLayout()
        row.addWidget(self.pick_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay1.addLayout(row)
        lay1.addWidget(self.table)
        lay1.addWidget(hint)
        self.force_mask = QCheckBox("Use the masks as they are")
        self.force_mask.setToolTip(
            "Svetlana refuses a mask that looks like an intensity image (most values scattered in\n"
            "many pieces, almost no background: usually the image and the mask were swapped).\n"
            "Tick this only if such a file really is your label mask."
        )
        lay1.addWidget(self.force_mask)

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
        """The pairs with the axes typed for them (None: inferred) and whether to skip the mask
        check, as ``prepare_images`` takes."""
        force = self.force_mask.isChecked()
        return [(*p, self.axes_of(r), force) for r, p in enumerate(self.pairs())]

    def axes_of(self, row: int) -> str | None:
        item = self.table.item(row, AXES_COLUMN)
        text = item.text().strip().upper() if item is not None else ""
        return text or None

    def ask_for_axes(self, exc: SvetlanaError) -> bool:
        """After "image shape does not match mask shape": show the Axes column, put the cursor in
        the image's row, and say what to type. Returns whether the error was of that kind."""
        if "does not match" not in exc.message or exc.path is None:
            return False
        rows = [
            r
            for r in range(self.table.rowCount())
            if Path(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)) == exc.path
        ]
        if not rows:
            return False
        self.table.setColumnHidden(AXES_COLUMN, False)
        self.table.setCurrentCell(rows[0], AXES_COLUMN)
        self._axes_row = rows[0]
        self.axes_label.setText(f"Axes of {exc.path.name}:")
        self.axes_edit.setText(self.axes_of(rows[0]) or "")
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
        item = self.table.item(self._axes_row, AXES_COLUMN) if self._axes_row >= 0 else None
        if item is not None:
            item.setText(text.strip().upper())

    def pairs(self) -> list[tuple[Path, Path, str]]:
        out = []
        for r in range(self.table.rowCount()):
            image = Path(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole))
            mask = Path(self.table.item(r, 1).data(Qt.ItemDataRole.UserRole))
            out.append((image, mask, self.table.item(r, 2).text().strip()))
        return out

    def add_pair(
        self,
        image: str | Path,
        mask: str | Path,
        name: str | None = None,
        axes: str | None = None,
    ) -> None:
        image, mask = Path(image), Path(mask)
        r = self.table.rowCount()
        self.table.insertRow(r)
        for col, p in ((0, image), (1, mask)):
            item = QTableWidgetItem(p.name)
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setToolTip(str(p))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(r, col, item)
        self.table.setItem(r, 2, QTableWidgetItem(name or default_image_name(image)))
        self.table.setItem(r, AXES_COLUMN, QTableWidgetItem(axes or ""))
        if axes:
            self.table.setColumnHidden(AXES_COLUMN, False)

    def set_folder(self, folder: str | Path) -> int:
        """Fill the table with the pairs found in a folder; returns how many."""
        from svetlana.core.io.folders import find_pairs

        pairs = find_pairs(folder)
        self.table.setRowCount(0)
        for image, mask in pairs:
            self.add_pair(image, mask)
        if not pairs:
            raise InputError("no image with a matching mask found in this folder", folder)
        if not self.dest_edit.text():
            self.dest_edit.setText(str(Path(folder).parent / (Path(folder).name + SUFFIX)))
        return len(pairs)

    def set_destination(self, path: str | Path) -> None:
        self.dest_edit.setText(str(path))

    def destination(self) -> Path | None:
        text = self.dest_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)

    # ---- actions -----------------------------------------------------------------------
    def _mode_changed(self) -> None:
        self.pick_button.setText(
            "Add image and mask…" if self.files_radio.isChecked() else "Choose folder…"
        )

    def _pick(self) -> None:
        try:
            if self.files_radio.isChecked():
                image, _ = QFileDialog.getOpenFileName(
                    self, "Choose an image", self.start_dir, IMAGE_FILTER
                )
                if not image:
                    return
                mask, _ = QFileDialog.getOpenFileName(
                    self,
                    f"Choose the mask of {Path(image).name}",
                    str(Path(image).parent),
                    IMAGE_FILTER,
                )
                if not mask:
                    return
                self.add_pair(image, mask)
                if not self.dest_edit.text():
                    self.dest_edit.setText(
                        str(Path(image).parent / (default_image_name(Path(image)) + SUFFIX))
                    )
            else:
                folder = QFileDialog.getExistingDirectory(
                    self, "Choose a folder of images and masks", self.start_dir
                )
                if folder:
                    self.set_folder(folder)
        except SvetlanaError as exc:
            show_error(self, exc)

    def _remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.table.removeRow(r)

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

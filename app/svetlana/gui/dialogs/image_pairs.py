"""The images a new project (or Add images) reads: image and mask files, or a folder of pairs
matched by name, each row with its name in the project and, when needed, its axes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import InputError, SvetlanaError
from svetlana.core.project.bundle import SUFFIX
from svetlana.core.project.images import default_image_name
from svetlana.gui.errors import show_error

AXES_COLUMN = 3
IMAGE_FILTER = "Images (*.tif *.tiff *.png *.npy *.jpg *.jpeg *.bmp);;All files (*)"


class ImagePairsBox(QGroupBox):
    """The table of (image, mask, name, axes) rows and the buttons that fill it."""

    destinationSuggested = Signal(str)  # a project path beside the first images chosen

    def __init__(self, start_dir: str = "", parent: QWidget | None = None):
        super().__init__("1. Images and their segmentation masks", parent)
        self.start_dir = start_dir
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
        lay = QVBoxLayout(self)
        lay.addWidget(self.files_radio)
        lay.addWidget(self.folder_radio)
        row = QHBoxLayout()
        row.addWidget(self.pick_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.table)
        lay.addWidget(hint)
        self.force_mask = QCheckBox("Use the masks as they are")
        self.force_mask.setToolTip(
            "Svetlana refuses a mask that looks like an intensity image (most values scattered in\n"
            "many pieces, almost no background: usually the image and the mask were swapped).\n"
            "Tick this only if such a file really is your label mask."
        )
        lay.addWidget(self.force_mask)

    def pairs(self) -> list[tuple[Path, Path, str]]:
        out = []
        for r in range(self.table.rowCount()):
            image = Path(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole))
            mask = Path(self.table.item(r, 1).data(Qt.ItemDataRole.UserRole))
            out.append((image, mask, self.table.item(r, 2).text().strip()))
        return out

    def to_read(self) -> list[tuple[Path, Path, str, str | None]]:
        """The pairs with the axes typed for them (None: inferred) and whether to skip the mask
        check, as ``prepare_images`` takes."""
        force = self.force_mask.isChecked()
        return [(*p, self.axes_of(r), force) for r, p in enumerate(self.pairs())]

    def axes_of(self, row: int) -> str | None:
        item = self.table.item(row, AXES_COLUMN)
        text = item.text().strip().upper() if item is not None else ""
        return text or None

    def set_axes(self, row: int, text: str) -> None:
        item = self.table.item(row, AXES_COLUMN) if row >= 0 else None
        if item is not None:
            item.setText(text.strip().upper())

    def show_axes_of(self, path: Path) -> int | None:
        """Show the Axes column with the cursor in the row of the image ``path``; its row."""
        rows = [
            r
            for r in range(self.table.rowCount())
            if Path(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)) == path
        ]
        if not rows:
            return None
        self.table.setColumnHidden(AXES_COLUMN, False)
        self.table.setCurrentCell(rows[0], AXES_COLUMN)
        return rows[0]

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
        self.destinationSuggested.emit(str(Path(folder).parent / (Path(folder).name + SUFFIX)))
        return len(pairs)

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
                self.destinationSuggested.emit(
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

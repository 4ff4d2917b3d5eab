"""Small widgets shared across the window: the folder picker that creates a typed folder, the
wheel guard (the wheel changes a field only once it has the focus) and the Grad-CAM view."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QVBoxLayout,
    QWidget,
)

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

"""The bar above the image: which image is shown (a list to choose from) and its size."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from svetlana.core.wording import plural
from svetlana.gui.errors import reporting


class ImageBar(QWidget):
    """The image chooser and the shown image's dimensions, channels and objects."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.image_box = QComboBox()
        self.image_box.setMinimumWidth(200)
        self.image_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.image_box.currentIndexChanged.connect(self._on_image_box)
        self.image_info = QLabel("")
        top = QHBoxLayout(self)
        top.setContentsMargins(6, 4, 6, 4)
        top.addWidget(QLabel("Image"))
        top.addWidget(self.image_box)
        top.addWidget(self.image_info, 1)
        session.imagesChanged.connect(self.fill)
        session.currentImageChanged.connect(self._on_current_image)

    def fill(self) -> None:
        """The project's images, the current one chosen."""
        project = self.session.project
        self.image_box.blockSignals(True)
        self.image_box.clear()
        if project is not None:
            for e in project.images:
                self.image_box.addItem(e.name)
            if self.session.current_image:
                self.image_box.setCurrentText(self.session.current_image)
        self.image_box.blockSignals(False)

    def _on_image_box(self, index: int) -> None:
        if index >= 0:
            with reporting(self.window()):
                self.session.set_current_image(self.image_box.itemText(index))

    def _on_current_image(self, name: str) -> None:
        self.image_box.blockSignals(True)
        self.image_box.setCurrentText(name)
        self.image_box.blockSignals(False)
        project = self.session.project
        if project is not None:
            e = project.image(name)
            dims = " × ".join(str(s) for s in e.shape)
            self.image_info.setText(
                f"  {dims} px, {plural(e.channels, 'channel')}, {plural(e.n_objects, 'object')}"
                f"   ({project.image_names.index(name) + 1} of {len(project.images)}; Page Up/Down)"
            )

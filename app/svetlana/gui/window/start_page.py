"""What the window shows without a project: new, open, demo and the recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.project.bundle import MANIFEST, SUFFIX


def project_path_of(path: str | Path) -> Path | None:
    """The bundle a dropped/opened path refers to (the folder or its project.json), else None."""
    p = Path(path)
    if p.is_file() and p.name == MANIFEST:
        return p.parent
    if p.is_dir() and (p / MANIFEST).is_file():
        return p
    return None


def dropped_project(event) -> Path | None:
    """The first project among the files of a drag-and-drop event, else None."""
    if not event.mimeData().hasUrls():
        return None
    for url in event.mimeData().urls():
        if url.isLocalFile():
            p = project_path_of(url.toLocalFile())
            if p is not None:
                return p
    return None


class StartPage(QWidget):
    """What the window shows without a project (``projects``: window/projects.py)."""

    def __init__(self, parent: QWidget, projects):
        super().__init__(parent)
        title = QLabel("<h1>Svetlana</h1>")
        sub = QLabel(
            "Classify segmented objects in microscopy images: label a few objects, train a model "
            "on them (a forest on size, shape and texture measurements, or a small network on "
            "the pixels: Automatic keeps the one that cross-validates better), and let it "
            "classify all the others."
        )
        sub.setWordWrap(True)
        self.new_button = QPushButton("New project…")
        self.open_button = QPushButton("Open project…")
        self.demo_button = QPushButton("Try the demo")
        self.demo_button.setToolTip(
            "A small project of two textures, with some objects already labelled"
        )
        for b in (self.new_button, self.open_button, self.demo_button):
            b.setMinimumHeight(36)
        self.new_button.clicked.connect(projects.new_project)
        self.open_button.clicked.connect(projects.open_project_dialog)
        self.demo_button.clicked.connect(lambda: projects.open_demo())
        self.recent = QListWidget()
        self.recent.itemActivated.connect(
            lambda item: projects.open_project(item.data(Qt.ItemDataRole.UserRole))
        )
        self.recent.setToolTip("Double-click (or Enter) to open")
        buttons = QVBoxLayout()
        for b in (self.new_button, self.open_button, self.demo_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        recent_col = QVBoxLayout()
        recent_col.addWidget(QLabel("<b>Recent projects</b>"))
        recent_col.addWidget(self.recent)
        row = QHBoxLayout()
        row.addLayout(buttons)
        row.addSpacing(24)
        row.addLayout(recent_col, 1)
        inner = QWidget()
        inner.setMaximumWidth(820)
        lay = QVBoxLayout(inner)
        lay.addWidget(title)
        lay.addWidget(sub)
        lay.addSpacing(16)
        lay.addLayout(row, 1)
        lay.addWidget(QLabel("Tip: drop a .svetlana project folder on this window to open it."))
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(inner, 4)
        outer.addStretch(1)

    def set_recent(self, paths: list[Path]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{p.name.removesuffix(SUFFIX)}    —    {p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setToolTip(str(p))
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("(none yet)")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)

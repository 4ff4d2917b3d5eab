"""Gallery: a grid of object thumbnails to triage fast; keys 1–9 label the highlighted one."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.errors import SvetlanaError
from svetlana.gui import keymap
from svetlana.gui.errors import show_error

log = logging.getLogger(__name__)

COLUMNS, ROWS = 6, 4
TILE = 112
RANDOM, SUGGEST, SUSPICIOUS = "Random", "Suggest", "Suspicious labels"
PREDICTED = "Predicted: "


class GalleryDialog(QDialog):
    """Thumbnails of the current image's objects from one source. Arrows move the highlight,
    1–9 label the highlighted object and move on, Page Down shows the next page; the main view
    follows the highlighted object."""

    highlighted = Signal(int)  # object id

    def __init__(
        self,
        session,
        live,
        review,
        thumbnail: Callable[[int], QPixmap],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Gallery")
        self.session = session
        self.live = live
        self.review = review
        self.thumbnail = thumbnail
        self.ids: list[int] = []
        self.page = 0
        self.index = 0
        self.source = QComboBox()
        self.source.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.source.currentTextChanged.connect(lambda _t: self.fill())
        self.help = QLabel(
            "1–9 label the highlighted object and move on · arrows move · Page Down: next page"
        )
        self.help.setStyleSheet("color: #555;")
        self.count = QLabel("")
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.source, 1)
        top.addWidget(self.count)
        grid = QGridLayout()
        grid.setSpacing(4)
        self.tiles: list[QLabel] = []
        self.captions: list[QLabel] = []
        for k in range(COLUMNS * ROWS):
            cell = QVBoxLayout()
            tile = QLabel()
            tile.setFixedSize(TILE, TILE)
            tile.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption = QLabel("")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setStyleSheet("font-size: 10px;")
            cell.addWidget(tile)
            cell.addWidget(caption)
            grid.addLayout(cell, k // COLUMNS, k % COLUMNS)
            self.tiles.append(tile)
            self.captions.append(caption)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(grid)
        lay.addWidget(self.help)
        self.refresh_sources()
        live.updated.connect(self._on_live)
        session.labelsChanged.connect(lambda _k: self._draw())

    # ---- sources ------------------------------------------------------------------------
    def refresh_sources(self) -> None:
        current = self.source.currentText()
        names = [RANDOM, SUGGEST]
        project = self.session.project
        if project is not None:
            names += [PREDICTED + c for c in project.annotations.class_names]
        names.append(SUSPICIOUS)
        self.source.blockSignals(True)
        self.source.clear()
        self.source.addItems(names)
        if current in names:
            self.source.setCurrentText(current)
        self.source.blockSignals(False)

    def set_source(self, name: str) -> None:
        self.source.setCurrentText(name)
        self.fill()

    def _on_live(self) -> None:
        if self.source.currentText() != RANDOM and self.isVisible():
            self._draw()

    def _objects(self, name: str) -> list[int]:
        from svetlana.core.objects.sampling import random_order

        s = self.session
        if s.project is None or s.current_image is None:
            return []
        labelled = set(s.project.annotations.for_image(s.current_image))
        r = self.live.result
        mine = r is not None and r.image == s.current_image
        if name == RANDOM:
            ids = s.loaded().table.ids
            order = random_order(s.project.sampling_seed, s.current_image, ids)
            return [int(o) for o in order if int(o) not in labelled]
        if name == SUGGEST:
            return [int(o) for o in r.suggested if int(o) not in labelled] if mine else []
        if name == SUSPICIOUS:
            t = self.review.tree
            return [
                int(t.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole))
                for i in range(t.topLevelItemCount())
            ]
        if name.startswith(PREDICTED) and mine and r.fast is not None:
            c = r.table.class_names.index(name[len(PREDICTED) :])
            rows = np.flatnonzero((r.fast.predicted == c) & (r.table.labels < 0))
            rows = rows[np.argsort(r.fast.confidence[rows], kind="stable")]  # least sure first
            return [int(i) for i in r.table.ids[rows]]
        return []

    def fill(self) -> None:
        self.ids = self._objects(self.source.currentText())
        self.page = 0
        self.index = 0
        self._draw()
        self._follow()

    # ---- drawing ------------------------------------------------------------------------
    def _page_ids(self) -> list[int]:
        n = COLUMNS * ROWS
        return self.ids[self.page * n : (self.page + 1) * n]

    def _draw(self) -> None:
        project = self.session.project
        labels = project.annotations.for_image(self.session.current_image) if project else {}
        colours = {c.name: c.colour for c in project.annotations.classes} if project else {}
        page = self._page_ids()
        for k, (tile, caption) in enumerate(zip(self.tiles, self.captions, strict=True)):
            if k >= len(page):
                tile.clear()
                tile.setStyleSheet("background: #202020;")
                caption.setText("")
                continue
            obj = page[k]
            try:
                tile.setPixmap(self.thumbnail(obj))
            except SvetlanaError:
                tile.clear()
            lab = labels.get(obj)
            border = (
                "#ffe600" if k == self.index else colours.get(lab.class_name) if lab else "#444"
            )
            width = 3 if k == self.index or lab else 1
            tile.setStyleSheet(f"background: #101010; border: {width}px solid {border};")
            caption.setText(f"{obj}" + (f" · {lab.class_name}" if lab else ""))
        total = len(self.ids)
        pages = max(1, -(-total // (COLUMNS * ROWS)))
        self.count.setText(f"{total} objects · page {self.page + 1}/{pages}")

    def current_object(self) -> int | None:
        page = self._page_ids()
        return page[self.index] if 0 <= self.index < len(page) else None

    def _follow(self) -> None:
        obj = self.current_object()
        if obj is not None:
            self.highlighted.emit(obj)

    def move(self, step: int) -> None:
        page = self._page_ids()
        if not page:
            return
        i = self.index + step
        n = COLUMNS * ROWS
        if i >= len(page) and (self.page + 1) * n < len(self.ids):
            self.page, i = self.page + 1, 0
        elif i < 0 and self.page > 0:
            self.page, i = self.page - 1, n - 1
        self.index = max(0, min(i, len(self._page_ids()) - 1))
        self._draw()
        self._follow()

    def label_current(self, class_name: str) -> None:
        obj = self.current_object()
        if obj is None:
            return
        try:
            self.session.label((obj,), class_name)
        except SvetlanaError as exc:
            show_error(self, exc)
            return
        self.move(1)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = keymap.action_for(event, keymap.GALLERY)
        project = self.session.project
        if action == "label" and project is not None:
            cls = project.annotations.class_for_key(event.text())
            if cls is not None:
                self.label_current(cls)
            return
        moves = {
            "next": 1, "previous": -1, "down": COLUMNS, "up": -COLUMNS,
            "next_page": COLUMNS * ROWS, "previous_page": -COLUMNS * ROWS,
        }  # fmt: skip
        if action in moves:
            self.move(moves[action])
            return
        super().keyPressEvent(event)

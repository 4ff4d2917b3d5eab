"""Gallery: a grid of object thumbnails to triage fast; keys 1–9 label the highlighted one.

The highlighted thumbnail is the session's current object: moving the highlight makes its object
current, and when another view makes an object current the highlight follows (or leaves the
page, when the object is not in the gallery) — a key never labels an object not shown.
"""

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
from svetlana.gui.labelling import label_current, label_with_key

log = logging.getLogger(__name__)

COLUMNS, ROWS = 6, 4
TILE = 112
RANDOM, SUGGEST, SUSPICIOUS = "Random", "Suggest", "Suspicious labels"
PREDICTED = "Predicted: "


class GalleryDialog(QDialog):
    """Thumbnails of the current image's objects from one source. Arrows move the highlight,
    1–9 label the highlighted object and move on, Page Down shows the next page; the main view
    follows the highlighted object. (Over 20 methods: eight are the one-line ``key_*`` handlers
    the key map dispatches to.)"""

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
        session.selectionChanged.connect(self._on_selection)
        session.currentLabelled.connect(self._on_current_labelled)

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
    def redraw(self) -> None:
        """Draw the thumbnails again (e.g. with another contrast)."""
        self._draw()

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

    def _on_selection(self, ids) -> None:
        """Follow the current object chosen elsewhere: highlight it, or nothing."""
        if self.session.selection_source == "gallery":
            return
        obj = ids[0] if len(ids) == 1 else None
        if obj in self.ids:
            k = self.ids.index(obj)
            self.page, self.index = divmod(k, COLUMNS * ROWS)
        else:
            self.index = -1
        if self.isVisible():
            self._draw()

    def _on_current_labelled(self, source: str, _ids, class_name) -> None:
        if source == "gallery" and class_name is not None:
            self.move(1)

    def _shown_current(self) -> bool:
        """Whether the highlighted thumbnail is the session's current object (keys label it)."""
        obj = self.current_object()
        if obj is None:
            self._say("No thumbnail is highlighted: move to one (arrows) to label it")
        elif self.session.selection != (obj,):
            self._follow()
        return obj is not None

    # ---- keys (gui/keymap.py calls the key_* handlers) ------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not keymap.dispatch(event, keymap.GALLERY, self):
            super().keyPressEvent(event)

    def key_label(self, key: str) -> None:
        if self._shown_current():
            self._say(label_with_key(self, self.session, key))

    def key_clear(self) -> None:
        if self._shown_current():
            self._say(label_current(self, self.session, None))

    def _say(self, text: str) -> None:
        if text:
            self.help.setText(text)

    def key_next(self) -> None:
        self.move(1)

    def key_previous(self) -> None:
        self.move(-1)

    def key_down(self) -> None:
        self.move(COLUMNS)

    def key_up(self) -> None:
        self.move(-COLUMNS)

    def key_next_page(self) -> None:
        self.move(COLUMNS * ROWS)

    def key_previous_page(self) -> None:
        self.move(-COLUMNS * ROWS)

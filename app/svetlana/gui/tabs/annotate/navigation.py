"""The Choose objects box: which object is current next — Random, Suggest, Click or Uncertain
order, Back and Skip, clicks and rectangles in the image. It only chooses; the session holds
the current object and labelling goes through gui/labelling.py."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.objects.sampling import next_unlabelled, random_order, uncertain_order
from svetlana.core.wording import plural

RANDOM, CLICK, UNCERTAIN, SUGGEST = "random", "click", "uncertain", "suggest"
MODE_HELP = {
    RANDOM: "Objects come one at a time in a random order, which keeps your labels representative "
    "of the image. Press a class key (1–9) to label and go on; Space skips, ← goes back.",
    SUGGEST: "The most useful objects first: those the live predictions are least sure of, spread "
    "over the kinds of objects and every predicted class (rare ones too), with one in five at "
    "random, more while the predictions are often wrong. Random order until two classes are "
    "labelled.",
    CLICK: "Click an object to select it (Ctrl+click adds more). Drag a rectangle to select several, "
    "then press a class key to label them all at once. Middle-drag pans.",
    UNCERTAIN: "Objects the current predictions are least sure about come first: labelling them helps "
    "the next model most.",
}
_ADD = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier


class ObjectChooser(QGroupBox):
    """Chooses the current object in one of four orders and keeps the way back. (~300 lines, 22
    methods: the four orders share the position, the history and the labelled set.)"""

    currentChanged = Signal(object)  # the object this box made current, or None
    message = Signal(str)

    def __init__(self, session, view, live, parent: QWidget | None = None):
        super().__init__("Choose objects", parent)
        self.session = session
        self.view = view
        self.live = live
        self.mode = RANDOM
        self.labelled: set[int] = set()  # labelled objects of the current image
        self._order: np.ndarray | None = None
        self._order_key: tuple | None = None
        self._pos = -1
        self._history: list[int] = []
        # Go on to the next object after a label (Random/Uncertain). The window turns it off
        # outside the Annotate tab: a correction in the Predict tab keeps its object selected.
        self.auto_advance = True

        self.mode_buttons: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        row = QHBoxLayout()
        for mode, text in (
            (RANDOM, "Random"), (SUGGEST, "Suggest"), (CLICK, "Click"), (UNCERTAIN, "Uncertain")
        ):  # fmt: skip
            b = QRadioButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            group.addButton(b)
            self.mode_buttons[mode] = b
            row.addWidget(b)
        self.mode_buttons[RANDOM].setChecked(True)
        for mode, b in self.mode_buttons.items():
            b.toggled.connect(lambda on, m=mode: on and self.set_mode(m))
        self.mode_help = QLabel(MODE_HELP[RANDOM])
        self.mode_help.setWordWrap(True)
        self.mode_help.setStyleSheet("color: #555;")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #d08000; font-weight: bold;")
        self.hint.hide()
        self.back_button = QPushButton("← Back")
        self.back_button.clicked.connect(self.back)
        self.skip_button = QPushButton("Skip →")
        self.skip_button.clicked.connect(self.skip)
        nav = QHBoxLayout()
        for b in (self.back_button, self.skip_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            nav.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.mode_help)
        lay.addWidget(self.hint)
        lay.addLayout(nav)

        session.projectChanged.connect(self._on_project)
        session.currentImageChanged.connect(self._on_image)
        session.labelsChanged.connect(self._on_labels)
        session.predictionsChanged.connect(self._on_predictions)
        session.currentLabelled.connect(self._on_current_labelled)
        live.updated.connect(self._on_live)
        view.objectClicked.connect(self._on_object_clicked)
        view.rectangleSelected.connect(self._on_rectangle)

    @property
    def current(self) -> int | None:
        """The current object (the session's), when there is exactly one."""
        sel = self.session.selection
        return sel[0] if len(sel) == 1 else None

    # ---- project, image, labels -----------------------------------------------------------
    def _forget_order(self) -> None:
        self._order = None
        self._order_key = None
        self._pos = -1

    def _on_project(self) -> None:
        self._forget_order()
        if self.session.project is None:
            self.labelled = set()

    def _on_image(self, _name: str) -> None:
        self._forget_order()
        self._history = []
        self._rebuild_labelled()
        if self.mode != CLICK:
            self.advance()

    def _rebuild_labelled(self) -> None:
        s, name = self.session, self.session.current_image
        self.labelled = set(s.project.annotations.for_image(name)) if s.project and name else set()

    def _on_labels(self, keys) -> None:
        s = self.session
        if s.project is None or s.current_image is None:
            return
        if keys is None:
            self._rebuild_labelled()
            return
        for im, o in keys:
            if im == s.current_image:
                if s.project.annotations.get(im, o) is None:
                    self.labelled.discard(o)
                else:
                    self.labelled.add(o)

    def _on_live(self) -> None:
        if self.mode == SUGGEST:
            self._order = None  # the new suggestions apply from the next object on
            self._order_key = None
            if self.current is None:
                self.advance()

    def _on_predictions(self) -> None:
        if self.mode == UNCERTAIN:
            self._forget_order()
            self.advance()

    def _on_current_labelled(self, source: str, ids, class_name) -> None:
        """The current object(s) were labelled: move on if this box chose them."""
        if source != "annotate" or class_name is None:
            return
        if self.mode == CLICK or not self.auto_advance:
            if len(ids) > 1 and self.mode == CLICK:
                self.session.select(())
        else:
            self.advance()

    # ---- the order --------------------------------------------------------------------------
    def _ensure_order(self) -> np.ndarray | None:
        s = self.session
        if s.project is None or s.current_image is None:
            return None
        pred = s.predictions.get(s.current_image)
        live = self.live.result
        version = id(pred) if self.mode == UNCERTAIN else id(live) if self.mode == SUGGEST else None
        key = (self.mode, s.current_image, version)
        if self._order is not None and self._order_key == key:
            return self._order
        self._order_key = key
        self._pos = -1
        self._order = None
        if self.mode in (RANDOM, SUGGEST):
            ids = s.loaded().table.ids
            self._order = random_order(s.project.sampling_seed, s.current_image, ids)
            if self.mode == SUGGEST and live is not None and live.image == s.current_image:
                first = np.asarray(live.suggested, np.int64)
                rest = self._order[~np.isin(self._order, first)]
                self._order = np.concatenate([first, rest])
        elif self.mode == UNCERTAIN and getattr(pred, "uncertainty", None) is not None:
            self._order = uncertain_order(pred.ids, pred.uncertainty)
        return self._order

    def _seek(self, obj: int) -> None:
        order = self._ensure_order()
        if order is not None:
            hits = np.flatnonzero(order == obj)
            if hits.size:
                self._pos = int(hits[0])

    def advance(self) -> None:
        """Go to the next unlabelled object of the order (not in Click mode)."""
        if self.mode == CLICK:
            return
        order = self._ensure_order()
        if order is None:
            self._set_current(None)
            if self.mode == UNCERTAIN and self.session.project is not None:
                newest = self.session.project.models.latest()
                self._show_hint(
                    f"Predict this image with {newest} first (Predict tab): the Uncertain mode "
                    "needs predictions of this image."
                    if newest
                    else "Train a model and predict first: the Uncertain mode needs predictions "
                    "of this image."
                )
            return
        self._show_hint("")
        pos = next_unlabelled(order, self.labelled, self._pos + 1)
        if pos is None:
            pos = next_unlabelled(order, self.labelled, 0)  # wrap round to objects skipped before
        if pos is None:
            self._set_current(None)
            self._show_hint(
                "Every object of this image is labelled. Page Down goes to the next image."
            )
            return
        if self.current is not None:
            self._history.append(self.current)
        self._pos = pos
        self._set_current(int(order[pos]))

    def back(self) -> None:
        if self.mode == CLICK or not self._history:
            return
        obj = self._history.pop()
        self._seek(obj)
        self._set_current(obj)

    def skip(self) -> None:
        self.advance()

    def go_to(self, obj: int, source: str = "annotate") -> None:
        """Make ``obj`` (of the current image) the current object, e.g. the one Undo changed
        or a row of the Review list (``source`` says which view chose it)."""
        if self.mode != CLICK:
            if self.current is not None and self.current != obj:
                self._history.append(self.current)
            self._seek(obj)
        self._set_current(obj, source)

    def _set_current(self, obj: int | None, source: str = "annotate") -> None:
        self.session.select(() if obj is None else (obj,), source)
        if obj is not None:
            self.view.focus_object(obj)
        self.currentChanged.emit(obj)

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    # ---- modes --------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODE_HELP:
            raise ValueError(mode)
        if not self.mode_buttons[mode].isChecked():
            self.mode_buttons[mode].setChecked(True)  # re-enters through toggled
            return
        if mode == self.mode and self._order_key is not None:
            return
        self.mode = mode
        self.mode_help.setText(MODE_HELP[mode])
        self.view.viewbox.rect_mode = mode == CLICK
        self._forget_order()
        self._history = []
        self._show_hint("")
        self.session.select(())  # Click: nothing until clicked; else the new order's first
        self.advance()

    # ---- the mouse in the image --------------------------------------------------------------
    def _on_object_clicked(self, obj: int, modifiers) -> None:
        if self.session.project is None:
            return
        add = bool(modifiers & _ADD)
        if obj == 0:
            if not add:
                self.session.select(())
        elif add:
            sel = list(self.session.selection)
            if obj in sel:
                sel.remove(obj)
            else:
                sel.append(obj)
            self.session.select(sel)
        else:
            if self.mode != CLICK and self.current is not None and self.current != obj:
                self._history.append(self.current)
            self.session.select((obj,))

    def _on_rectangle(self, ids: tuple, modifiers) -> None:
        if self.session.project is None:
            return
        if modifiers & _ADD:
            ids = tuple(dict.fromkeys(self.session.selection + tuple(ids)))
        self.session.select(ids)
        if ids:
            n = sum(1 for o in ids if o in self.labelled)
            self.message.emit(
                f"{plural(len(ids), 'object')} selected"
                + (f" ({n} already labelled)" if n else "")
                + ": press a class key to label them"
            )

"""Labelling: the class list, the ways of choosing objects (Random, Suggest, Click, Uncertain), keys, progress.

~700 lines: the modes (Click, Random, Uncertain, Suggest), their visiting orders, the class
buttons and the key handling share the current-object state of this tab.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.annotations.commands import AddClass, MergeClasses, RemoveClass, UpdateClass
from svetlana.core.errors import SvetlanaError
from svetlana.core.objects.sampling import next_unlabelled, random_order, uncertain_order
from svetlana.core.wording import plural
from svetlana.gui import keymap
from svetlana.gui.errors import show_error
from svetlana.gui.labelling import label_current, label_with_key
from svetlana.gui.session import Session
from svetlana.gui.widgets.image_view import ImageView
from svetlana.gui.widgets.live import LiveBox, LivePredictions
from svetlana.gui.widgets.review import ReviewPanel

log = logging.getLogger(__name__)

RANDOM, CLICK, UNCERTAIN, SUGGEST = "random", "click", "uncertain", "suggest"
MODE_HELP = {
    RANDOM: "Objects come one at a time in a random order, which keeps your labels representative "
    "of the image. Press a class key (1–9) to label and go on; Space skips, ← goes back.",
    SUGGEST: "The most useful objects first: those the live predictions are least sure of, spread "
    "over the kinds of objects and every predicted class (rare ones too), with one in five at "
    "random. Random order until two classes are labelled.",
    CLICK: "Click an object to select it (Ctrl+click adds more). Drag a rectangle to select several, "
    "then press a class key to label them all at once. Middle-drag pans.",
    UNCERTAIN: "Objects the current predictions are least sure about come first: labelling them helps "
    "the next model most.",
}


def _swatch(colour: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(colour))
    return QIcon(pix)


class AnnotationTab(QWidget):
    """Chooses the object(s) to label and labels them with the class keys."""

    currentChanged = Signal(object)  # current object id or None
    message = Signal(str)  # short status text for the window

    def __init__(self, session: Session, view: ImageView, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.view = view
        self.mode = RANDOM
        self._order: np.ndarray | None = None
        self._order_key: tuple | None = None
        self._pos = -1
        self._history: list[int] = []
        self._labelled: set[int] = set()
        self._patch_size: int | None = None
        # Go on to the next object after a label (Random/Uncertain). The window turns it off
        # outside this tab: a correction in the Predict tab keeps its object selected.
        self.auto_advance = True

        # classes
        self.classes = QTreeWidget()
        self.classes.setColumnCount(3)
        self.classes.setHeaderLabels(["Key", "Class", "Labelled"])
        self.classes.setRootIsDecorated(False)
        self.classes.setColumnWidth(0, 40)
        self.classes.setColumnWidth(1, 150)
        self.classes.itemDoubleClicked.connect(
            lambda _item, col: self.ask_rename_class() if col == 1 else self.ask_class_colour()
        )
        self.classes.setToolTip("Double-click a name to rename it, the key to change its colour")
        self.classes.setMaximumHeight(130)
        # Slots without parameters: `clicked` passes checked=False to a slot's first one.
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
        box_classes = QGroupBox("Classes")
        lc = QVBoxLayout(box_classes)
        lc.addWidget(self.classes)
        lc.addLayout(buttons)

        # modes
        self.mode_buttons: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        box_mode = QGroupBox("Choose objects")
        lm = QVBoxLayout(box_mode)
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
        lm.addLayout(row)
        self.mode_help = QLabel(MODE_HELP[RANDOM])
        self.mode_help.setWordWrap(True)
        self.mode_help.setStyleSheet("color: #555;")
        lm.addWidget(self.mode_help)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #d08000; font-weight: bold;")
        self.hint.hide()
        lm.addWidget(self.hint)
        nav = QHBoxLayout()
        self.back_button = QPushButton("← Back")
        self.back_button.clicked.connect(self.back)
        self.skip_button = QPushButton("Skip →")
        self.skip_button.clicked.connect(self.skip)
        for b in (self.back_button, self.skip_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            nav.addWidget(b)
        lm.addLayout(nav)

        # current object + patch preview
        # Short lines (object, size, class, prediction): no word wrap, whose height estimate
        # beside the fixed-size preview would let the caption overlap the lines.
        self.current_label = QLabel("No object")
        self.preview = QLabel()
        self.preview.setFixedSize(128, 128)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #101010; border: 1px solid #444;")
        self.preview_caption = QLabel("What the network sees")
        self.preview_caption.setWordWrap(True)
        self.fixed_zoom = QCheckBox("Same zoom for all objects (compare sizes)")
        self.fixed_zoom.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fixed_zoom.setToolTip(
            "One zoom per image, from the typical object size, instead of zooming to each\n"
            "object: a large object looks large, so sizes can be judged by eye."
        )
        self.fixed_zoom.toggled.connect(self._on_fixed_zoom)
        self.stretch = QCheckBox("Stretch each object's contrast")
        self.stretch.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stretch.setToolTip(
            "Off: the patch and the gallery use the image's contrast, so a dim object looks\n"
            "dim. On: each object's own range fills black to white (faint texture shows)."
        )
        self.stretch.toggled.connect(self._on_stretch)
        box_cur = QGroupBox("Current object")
        vcur = QVBoxLayout(box_cur)
        lcur = QHBoxLayout()
        lcur.addWidget(self.preview)
        col = QVBoxLayout()
        col.addWidget(self.current_label)
        col.addWidget(self.preview_caption)
        col.addStretch(1)
        lcur.addLayout(col, 1)
        vcur.addLayout(lcur)
        vcur.addWidget(self.fixed_zoom)
        vcur.addWidget(self.stretch)

        # progress
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(8)
        box_prog = QGroupBox("Progress")
        lp = QVBoxLayout(box_prog)
        lp.addWidget(self.progress_label)
        lp.addWidget(self.progress_bar)

        # live predictions, review of suspicious labels, gallery
        self.live = LivePredictions(session, self)
        self.live_box = LiveBox(self.live)
        self.live.updated.connect(self._on_live)
        self.review = ReviewPanel(session, self.live)
        self.review.jump.connect(lambda obj: self.go_to(obj, "review"))
        self.gallery_button = QPushButton("Gallery…")
        self.gallery_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gallery_button.setToolTip("A grid of object thumbnails to label fast (keys 1–9)")
        self.gallery_button.clicked.connect(self.open_gallery)
        self.gallery = None

        layout = QVBoxLayout(self)
        layout.addWidget(box_classes)
        layout.addWidget(box_mode)
        layout.addWidget(box_cur)
        layout.addWidget(box_prog)
        layout.addWidget(self.live_box)
        layout.addWidget(self.review)
        layout.addWidget(self.gallery_button)
        layout.addStretch(1)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(40)
        self._preview_timer.timeout.connect(self._update_preview)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(30)
        self._progress_timer.timeout.connect(self._update_progress)

        session.projectChanged.connect(self._on_project)
        session.currentImageChanged.connect(self._on_image)
        session.labelsChanged.connect(self._on_labels)
        session.classesChanged.connect(self._refresh_classes)
        session.predictionsChanged.connect(self._on_predictions)
        session.selectionChanged.connect(lambda _ids: self._show_current())
        session.currentLabelled.connect(self._on_current_labelled)
        view.objectClicked.connect(self._on_object_clicked)
        view.rectangleSelected.connect(self._on_rectangle)

    # ---- project / image -------------------------------------------------------------------
    def _on_project(self) -> None:
        self._patch_size = None
        self._order = None
        self._order_key = None
        self._refresh_classes()
        if self.session.project is None:
            self._labelled = set()

    def _on_image(self, _name: str) -> None:
        self._order = None
        self._order_key = None
        self._history = []
        self._pos = -1
        self._rebuild_labelled()
        self._refresh_classes()
        if self.mode in (RANDOM, UNCERTAIN, SUGGEST):
            self.advance()
        else:
            self._show_current()

    def _rebuild_labelled(self) -> None:
        s, name = self.session, self.session.current_image
        self._labelled = set(s.project.annotations.for_image(name)) if s.project and name else set()

    def _on_labels(self, keys) -> None:
        s = self.session
        if s.project is None or s.current_image is None:
            return
        if keys is None:
            self._rebuild_labelled()
        else:
            for im, o in keys:
                if im == s.current_image:
                    if s.project.annotations.get(im, o) is None:
                        self._labelled.discard(o)
                    else:
                        self._labelled.add(o)
        if keys is None or any(o in s.selection for im, o in keys if im == s.current_image):
            self._show_current()  # its class, whoever changed it (the Review list, Undo)
        self._progress_timer.start()

    def _on_live(self) -> None:
        if self.mode == SUGGEST:
            self._order = None  # the new suggestions apply from the next object on
            self._order_key = None
            if self.current is None:
                self.advance()

    def _on_predictions(self) -> None:
        if self.mode == UNCERTAIN:
            self._order = None
            self._pos = -1
            self.advance()

    # ---- order ------------------------------------------------------------------------------
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
        if self.mode in (RANDOM, SUGGEST):
            loaded = s.loaded()
            self._order = random_order(s.project.sampling_seed, s.current_image, loaded.table.ids)
            if self.mode == SUGGEST and live is not None and live.image == s.current_image:
                first = np.asarray(live.suggested, np.int64)
                rest = self._order[~np.isin(self._order, first)]
                self._order = np.concatenate([first, rest])
        elif self.mode == UNCERTAIN:
            if pred is None or getattr(pred, "uncertainty", None) is None:
                self._order = None
            else:
                self._order = uncertain_order(pred.ids, pred.uncertainty)
        else:
            self._order = None
        return self._order

    def advance(self) -> None:
        """Go to the next unlabelled object of the order (Random / Uncertain)."""
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
        pos = next_unlabelled(order, self._labelled, self._pos + 1)
        if pos is None:
            pos = next_unlabelled(order, self._labelled, 0)  # wrap round to objects skipped before
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
        order = self._ensure_order()
        if order is not None:
            hits = np.flatnonzero(order == obj)
            if hits.size:
                self._pos = int(hits[0])
        self._set_current(obj)

    def skip(self) -> None:
        self.advance()

    @property
    def current(self) -> int | None:
        """The current object (the session's), when there is exactly one."""
        sel = self.session.selection
        return sel[0] if len(sel) == 1 else None

    def go_to(self, obj: int, source: str = "annotate") -> None:
        """Make ``obj`` (of the current image) the current object, e.g. the one Undo changed
        or a row of the Review list (``source`` says which view chose it)."""
        if self.mode == CLICK:
            self.session.select((obj,), source)
            self.view.focus_object(obj)
            return
        if self.current is not None and self.current != obj:
            self._history.append(self.current)
        order = self._ensure_order()
        if order is not None:
            hits = np.flatnonzero(order == obj)
            if hits.size:
                self._pos = int(hits[0])
        self._set_current(obj, source)

    def _on_stretch(self, _on: bool) -> None:
        self._preview_timer.start()
        if self.gallery is not None and self.gallery.isVisible():
            self.gallery.redraw()

    def _on_fixed_zoom(self, on: bool) -> None:
        self.view.set_fixed_zoom(on)
        if len(self.session.selection) == 1:
            self.view.focus_object(self.session.selection[0])

    def _set_current(self, obj: int | None, source: str = "annotate") -> None:
        self.session.select(() if obj is None else (obj,), source)
        if obj is not None:
            self.view.focus_object(obj)
        self.currentChanged.emit(obj)

    def _show_current(self) -> None:
        sel = self.session.selection
        if not sel:
            self.current_label.setText("No object selected" if self.mode == CLICK else "No object")
            self.preview.clear()
        elif len(sel) == 1:
            self.current_label.setText(self.view.describe(sel[0]).replace("  ·  ", "\n"))
            self._preview_timer.start()
        else:
            self.current_label.setText(f"{plural(len(sel), 'object')} selected")
            self.preview.clear()

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    # ---- modes ----------------------------------------------------------------------------------
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
        self._order = None
        self._order_key = None
        self._history = []
        self._pos = -1
        self._show_hint("")
        if mode == CLICK:
            self.session.select(())
        else:
            self.session.select(())  # the next object of the new order follows
            self.advance()

    def _on_object_clicked(self, obj: int, modifiers) -> None:
        if self.session.project is None:
            return
        add = bool(
            modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier)
        )
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
        if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier):
            ids = tuple(dict.fromkeys(self.session.selection + tuple(ids)))
        self.session.select(ids)
        if ids:
            labelled = self.session.project.annotations.for_image(self.session.current_image)
            n = sum(1 for o in ids if o in labelled)
            self.message.emit(
                f"{plural(len(ids), 'object')} selected"
                + (f" ({n} already labelled)" if n else "")
                + ": press a class key to label them"
            )

    # ---- keys (gui/keymap.py calls the key_* handlers) -------------------------------------------
    def handle_key(self, event: QKeyEvent) -> bool:
        """The labelling keys; returns whether the key was used."""
        if self.session.project is None or self.session.current_image is None:
            return False
        return keymap.dispatch(event, keymap.REVIEW, self.review) or keymap.dispatch(
            event, keymap.ANNOTATE, self
        )

    def key_label(self, key: str) -> None:
        self._say(label_with_key(self, self.session, key))

    def key_clear(self) -> None:
        self._say(label_current(self, self.session, None))

    def key_skip(self) -> None:
        self.skip()

    def key_back(self) -> None:
        self.back()

    def _say(self, text: str) -> None:
        if text:
            self.message.emit(text)

    def _on_current_labelled(self, source: str, ids, class_name) -> None:
        """The current object(s) were labelled: move on if this tab chose them."""
        if source != "annotate" or class_name is None:
            return
        if self.mode == CLICK or not self.auto_advance:
            if len(ids) > 1 and self.mode == CLICK:
                self.session.select(())
        else:
            self.advance()

    # ---- gallery, shutdown -------------------------------------------------------------------------
    def open_gallery(self):
        from svetlana.gui.dialogs.gallery import TILE, GalleryDialog

        if self.session.project is None or self.session.current_image is None:
            return None
        if self.gallery is None:
            self.gallery = GalleryDialog(
                self.session, self.live, self.review,
                lambda obj: _patch_pixmap(self.patch_for(obj)[0], TILE, self.stretch.isChecked()),
                self,
            )  # fmt: skip
            self.gallery.highlighted.connect(self._follow_gallery)
        self.gallery.refresh_sources()
        self.gallery.fill()
        self.gallery.show()
        self.gallery.raise_()
        return self.gallery

    def _follow_gallery(self, obj: int) -> None:
        self.session.select((obj,), "gallery")
        self.view.focus_object(obj)

    def shutdown(self) -> bool:
        """Stop the live refit and the label check (window closing, project switching)."""
        ok = self.live.stop()
        return self.review.shutdown() and ok

    # ---- classes --------------------------------------------------------------------------------
    def _refresh_classes(self) -> None:
        self.classes.clear()
        project = self.session.project
        if project is None:
            self._update_progress()
            return
        counts = project.annotations.counts(self.session.current_image)
        totals = project.annotations.counts()
        for c in project.annotations.classes:
            item = QTreeWidgetItem(
                [c.key or "–", c.name, f"{counts.get(c.name, 0)}  ({totals.get(c.name, 0)} in all)"]
            )
            item.setIcon(0, _swatch(c.colour))
            item.setData(1, Qt.ItemDataRole.UserRole, c.name)
            self.classes.addTopLevelItem(item)
        self._update_progress()
        self._show_current()

    def _update_progress(self) -> None:
        project, name = self.session.project, self.session.current_image
        if project is None or name is None:
            self.progress_label.setText("")
            self.progress_bar.setValue(0)
            return
        total = project.image(name).n_objects
        done = len(self._labelled)
        n_all = sum(e.n_objects for e in project.images)
        self.progress_label.setText(
            f"{name}: {done} of {plural(total, 'object')} labelled\n"
            f"all images: {len(project.annotations)} of {n_all}"
        )
        self.progress_bar.setMaximum(max(total, 1))
        self.progress_bar.setValue(done)
        counts = project.annotations.counts(name)
        totals = project.annotations.counts()
        for i in range(self.classes.topLevelItemCount()):
            item = self.classes.topLevelItem(i)
            cname = item.data(1, Qt.ItemDataRole.UserRole)
            item.setText(2, f"{counts.get(cname, 0)}  ({totals.get(cname, 0)} in all)")

    def selected_class(self) -> str | None:
        item = self.classes.currentItem()
        return None if item is None else item.data(1, Qt.ItemDataRole.UserRole)

    def _push(self, cmd) -> bool:
        try:
            self.session.push(cmd)
        except SvetlanaError as exc:
            show_error(self, exc)
            return False
        return True

    def ask_new_class(self) -> None:
        """The Add button: ask for a name, add the class (undoable)."""
        if self.session.project is None:
            return
        n = len(self.session.project.annotations.classes) + 1
        name, ok = QInputDialog.getText(
            self, "Add class", "Name of the new class:", text=f"class {n}"
        )
        if ok:
            self._push(AddClass(name))

    def ask_rename_class(self) -> None:
        """The Rename button: a new name for the selected class; another class's name merges."""
        old = self.selected_class()
        if old is None or self.session.project is None:
            self._say("select a class in the list first")
            return
        new_name, ok = QInputDialog.getText(self, "Rename class", f"New name for {old}:", text=old)
        if not ok or new_name == old:
            return
        if new_name.strip() in self.session.project.annotations.class_names:
            self._ask_merge(old, new_name.strip())  # e.g. a typo 'smal' renamed to 'small'
            return
        self._push(UpdateClass(old, new_name=new_name))

    def ask_class_colour(self) -> None:
        """The Colour button: a colour picker for the selected class."""
        name = self.selected_class()
        if name is None or self.session.project is None:
            self._say("select a class in the list first")
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
        """The Remove button: a class with labels goes only after a question naming how many."""
        name = self.selected_class()
        if name is None or self.session.project is None:
            self._say("select a class in the list first")
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

    # ---- patch preview ------------------------------------------------------------------------------
    def _update_preview(self) -> None:
        sel = self.session.selection
        if len(sel) != 1 or self.session.project is None:
            self.preview.clear()
            return
        try:
            patch, size = self.patch_for(sel[0])
        except SvetlanaError as exc:
            self.preview_caption.setText(f"No preview: {exc.message}")
            return
        self.preview.setPixmap(_patch_pixmap(patch, self.preview.width(), self.stretch.isChecked()))
        self.preview_caption.setText(
            f"What the network sees: a {size}×{size} pixel patch around the object, "
            "with the object's own pixels marked (outlined)."
        )

    def patch_for(self, obj: int) -> tuple[np.ndarray, int]:
        """The training patch of an object, (C+1, *patch), cut from a crop (not the whole image)."""
        from svetlana.core.usecases.train import resolve_patch_size

        s = self.session
        if self._patch_size is None:
            self._patch_size = resolve_patch_size(s.project, "auto")
        size = self._patch_size
        return s.loaded().object_patch(obj, size), size


def _patch_pixmap(patch: np.ndarray, side: int, stretch: bool = False) -> QPixmap:
    """First channel in grey (middle slice in 3D) with the object's mask outlined in yellow.

    The patch is normalised with the whole image's range (0 and 1 are its low and high
    percentiles), shown as is so that brightness compares between objects; ``stretch`` maps
    the patch's own range to black..white instead.
    """
    img = patch[0]
    mask = patch[-1]
    if img.ndim == 3:
        img, mask = img[img.shape[0] // 2], mask[mask.shape[0] // 2]
    lo, hi = (0.0, 1.0)
    if stretch and img.size:
        lo, hi = np.percentile(img, [1, 99.5])
    grey = np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    m = mask > 0
    edge = m & ~(
        np.pad(m, 1)[2:, 1:-1]
        & np.pad(m, 1)[:-2, 1:-1]
        & np.pad(m, 1)[1:-1, 2:]
        & np.pad(m, 1)[1:-1, :-2]
    )
    rgb[edge] = (255, 230, 0)
    rgb = np.ascontiguousarray(rgb)
    h, w = grey.shape
    qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pix = QPixmap.fromImage(qimg).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )
    return pix

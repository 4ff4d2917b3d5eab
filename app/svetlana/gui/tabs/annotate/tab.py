"""The Annotate tab: its panels (classes, choosing objects, the current object, progress, live
predictions, review, gallery) and the labelling keys. The session holds the current object;
every class key goes through gui/labelling.py."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.wording import plural
from svetlana.gui import keymap
from svetlana.gui.labelling import label_current, label_with_key
from svetlana.gui.session import Session
from svetlana.gui.tabs.annotate.classes import ClassesPanel
from svetlana.gui.tabs.annotate.current import CurrentObjectPanel
from svetlana.gui.tabs.annotate.navigation import CLICK, ObjectChooser
from svetlana.gui.widgets.image_view import ImageView
from svetlana.gui.widgets.live import LiveBox, LivePredictions
from svetlana.gui.widgets.review import ReviewPanel


class ProgressBox(QGroupBox):
    """How many objects of this image, and of all images, are labelled."""

    def __init__(self, session, labelled, parent: QWidget | None = None):
        super().__init__("Progress", parent)
        self.session = session
        self._labelled = labelled  # () -> set of labelled ids of the current image
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(8)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)

    def update_counts(self) -> None:
        project, name = self.session.project, self.session.current_image
        if project is None or name is None:
            self.label.setText("")
            self.bar.setValue(0)
            return
        total = project.image(name).n_objects
        done = len(self._labelled())
        n_all = sum(e.n_objects for e in project.images)
        self.label.setText(
            f"{name}: {done} of {plural(total, 'object')} labelled\n"
            f"all images: {len(project.annotations)} of {n_all}"
        )
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(done)


class AnnotationTab(QWidget):
    """Chooses the object(s) to label and labels them with the class keys. (23 methods in ~170
    lines: four are the one-line ``key_*`` handlers the key map dispatches to, the rest small
    delegations to the panels it composes.)"""

    message = Signal(str)  # short status text for the window

    def __init__(self, session: Session, view: ImageView, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.view = view
        self.live = LivePredictions(session, self)
        # A big image's live preview measures what is in view (and follows pans and zooms).
        self.live.region = self._visible_region
        view.viewbox.sigRangeChanged.connect(lambda *_: self.live.view_moved())
        self.classes_panel = ClassesPanel(session)
        self.chooser = ObjectChooser(session, view, self.live)
        self.current_panel = CurrentObjectPanel(session, view)
        self.progress = ProgressBox(session, lambda: self.chooser.labelled)
        self.live_box = LiveBox(self.live)
        self.review = ReviewPanel(session, self.live)
        self.review.jump.connect(lambda obj: self.chooser.go_to(obj, "review"))
        self.gallery_button = QPushButton("Gallery…")
        self.gallery_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gallery_button.setToolTip("A grid of object thumbnails to label fast (keys 1–9)")
        self.gallery_button.clicked.connect(self.open_gallery)
        self.gallery = None
        for panel in (self.classes_panel, self.chooser):
            panel.message.connect(self.message)
        self.current_panel.stretch.toggled.connect(self._redraw_gallery)

        # The panels scroll rather than make the window taller than a laptop's screen; the
        # Review list takes the room left.
        inner = QWidget()
        layout = QVBoxLayout(inner)
        for w in (self.classes_panel, self.chooser, self.current_panel, self.progress,
                  self.live_box, self.review, self.gallery_button):  # fmt: skip
            layout.addWidget(w, 1 if w is self.review else 0)
        layout.addStretch(0)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.review.checked.connect(lambda: scroll.ensureWidgetVisible(self.review, 0, 0))

        # Counts follow a quick run of keys once, not at every key.
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(30)
        self._counts_timer.timeout.connect(self._update_counts)
        session.projectChanged.connect(self._on_classes)
        session.classesChanged.connect(self._on_classes)
        session.currentImageChanged.connect(lambda _n: self._on_classes())
        session.labelsChanged.connect(self._on_labels)
        session.selectionChanged.connect(lambda _ids: self._show_current())

    # ---- what the panels show -----------------------------------------------------------------

    def _visible_region(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The image pixels in view: ((y0, y1), (x0, x1))."""
        (x0, x1), (y0, y1) = self.view.viewbox.viewRange()
        return (y0, y1), (x0, x1)

    def _on_classes(self) -> None:
        self.classes_panel.refresh()
        self._update_counts()
        self._show_current()

    def _update_counts(self) -> None:
        self.classes_panel.update_counts()
        self.progress.update_counts()

    def _on_labels(self, keys) -> None:
        s = self.session
        if keys is None or any(o in s.selection for im, o in keys if im == s.current_image):
            self._show_current()  # its class, whoever changed it (the Review list, Undo)
        self._counts_timer.start()

    def _show_current(self) -> None:
        self.current_panel.empty_text = (
            "No object selected" if self.chooser.mode == CLICK else "No object"
        )
        self.current_panel.show_current()

    # ---- keys (gui/keymap.py calls the key_* handlers) ------------------------------------------
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
        self.chooser.skip()

    def key_back(self) -> None:
        self.chooser.back()

    def _say(self, text: str) -> None:
        if text:
            self.message.emit(text)

    # ---- what the window and the tests reach ------------------------------------------------------
    @property
    def current(self) -> int | None:
        return self.chooser.current

    @property
    def mode(self) -> str:
        return self.chooser.mode

    def set_mode(self, mode: str) -> None:
        self.chooser.set_mode(mode)

    def go_to(self, obj: int, source: str = "annotate") -> None:
        self.chooser.go_to(obj, source)

    @property
    def auto_advance(self) -> bool:
        return self.chooser.auto_advance

    @auto_advance.setter
    def auto_advance(self, on: bool) -> None:
        self.chooser.auto_advance = on

    @property
    def fixed_zoom(self):
        return self.current_panel.fixed_zoom

    # ---- gallery, shutdown ------------------------------------------------------------------------
    def open_gallery(self):
        from svetlana.gui.dialogs.gallery import TILE, GalleryDialog

        if self.session.project is None or self.session.current_image is None:
            return None
        if self.gallery is None:
            self.gallery = GalleryDialog(
                self.session, self.live, self.review,
                lambda obj: self.current_panel.thumbnail(obj, TILE), self,
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

    def _redraw_gallery(self) -> None:
        if self.gallery is not None and self.gallery.isVisible():
            self.gallery.redraw()

    def shutdown(self) -> bool:
        """Stop the live refit and the label check (window closing, project switching)."""
        ok = self.live.stop()
        return self.review.shutdown() and ok

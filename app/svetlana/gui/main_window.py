"""The main window: the start page or the image with its tabs, composed from gui/window/
(menus and actions, the project's lifecycle, image actions, image bar, status line, keys, Help)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.project.bundle import Project
from svetlana.gui.errors import reporting
from svetlana.gui.session import Session
from svetlana.gui.settings import Settings
from svetlana.gui.tabs.annotate import AnnotationTab
from svetlana.gui.widgets.common import WheelGuard
from svetlana.gui.widgets.image_view import ImageView
from svetlana.gui.window import menus
from svetlana.gui.window.help import HelpMenu
from svetlana.gui.window.image_actions import ImageActions
from svetlana.gui.window.image_bar import ImageBar
from svetlana.gui.window.keys import WindowKeys
from svetlana.gui.window.projects import ProjectLifecycle
from svetlana.gui.window.start_page import StartPage, dropped_project
from svetlana.gui.window.status import StatusLine

log = logging.getLogger(__name__)


def _placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    return label


def _make_training_tab(session: Session) -> QWidget:
    try:
        from svetlana.gui.tabs.train import TrainingTab
    except ImportError:
        return _placeholder("Training is not available in this build.")
    return TrainingTab(session)


def _make_prediction_tab(session: Session) -> QWidget:
    try:
        from svetlana.gui.tabs.predict import PredictionTab
    except ImportError:
        return _placeholder("Prediction is not available in this build.")
    return PredictionTab(session)


class MainWindow(QMainWindow):
    """The Svetlana window. ``settings`` is injectable so tests never touch the user's settings."""

    def __init__(self, settings: QSettings | None = None, session: Session | None = None):
        # Worker threads (training, live refits, measuring) hand the interpreter back to the
        # window every millisecond instead of every 5: keys stay quick while they run
        # (measured with a live refit running: max 135 -> 51 ms per key).
        sys.setswitchinterval(0.001)
        super().__init__()
        self.settings = Settings(settings)
        self.session = session if session is not None else Session(self)
        self.setAcceptDrops(True)
        self.setWindowTitle("Svetlana")
        self.resize(1400, 900)

        self.projects = ProjectLifecycle(self)
        self.image_actions = ImageActions(self)
        self.help = HelpMenu(self)
        self.keys = WindowKeys(self)
        self.start_page = StartPage(self, self.projects)
        self.view = ImageView(self.session)
        self.annotation_tab = AnnotationTab(self.session, self.view)
        self.training_tab = _make_training_tab(self.session)
        self.prediction_tab = _make_prediction_tab(self.session)
        self._build_layout()
        self.status = StatusLine(self.statusBar(), self.session, self.view)
        self.hover_label = self.status.hover_label
        self.selection_label = self.status.selection_label

        retrain = getattr(self.prediction_tab, "retrainRequested", None)
        if retrain is not None and hasattr(self.training_tab, "start_training"):
            retrain.connect(self._retrain)
        self.session.labelsRevisited.connect(self._go_to_objects)
        self.tabs.currentChanged.connect(self._on_tab)
        fixed = self.settings.value("view/fixed_zoom", False)
        self.annotation_tab.fixed_zoom.setChecked(fixed in (True, "true", "1", 1))
        self.annotation_tab.fixed_zoom.toggled.connect(
            lambda on: self.settings.set_value("view/fixed_zoom", bool(on))
        )
        self.annotation_tab.message.connect(lambda text: self.statusBar().showMessage(text, 4000))

        menus.make_actions(self)
        menus.make_menus(self)
        self.session.projectChanged.connect(self._on_project)
        self.session.busyChanged.connect(lambda busy: menus.enable_for_busy(self, busy))

        self.start_page.set_recent(self.settings.recent_projects())
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        app = QApplication.instance()
        # Wheel events change a spin box or combo box only when it has the focus.
        self._wheel_guard = WheelGuard(self)
        self._wheel_guard.adopt(self)
        if app is not None:
            app.installEventFilter(self.keys)
            app.installEventFilter(self._wheel_guard)
        self._on_project()

    def _build_layout(self) -> None:
        """Start page | (tabs beside the image bar over the image), as a stack."""
        self.tabs = QTabWidget()
        self.tabs.addTab(self.annotation_tab, "Annotate")
        self.tabs.addTab(self.training_tab, "Train")
        self.tabs.addTab(self.prediction_tab, "Predict")
        self.tabs.setMinimumWidth(400)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.image_bar = ImageBar(self.session)
        self.image_box = self.image_bar.image_box
        image_area = QWidget()
        ia = QVBoxLayout(image_area)
        ia.setContentsMargins(0, 0, 0, 0)
        ia.setSpacing(0)
        ia.addWidget(self.image_bar)
        ia.addWidget(self.view, 1)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(image_area)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([430, 970])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)

    # ---- the project (window/projects.py, window/image_actions.py) ---------------------------
    def open_project(self, path: str | Path) -> bool:
        return self.projects.open_project(path)

    def set_project(self, project: Project) -> None:
        """Show a project opened elsewhere (new project dialog, demo)."""
        self.projects.set_project(project)

    def close_project(self) -> None:
        self.projects.close_project()

    def add_pairs_in_background(self, pairs):
        """Add (image, mask, name[, axes]) pairs, read and measured in a worker; the job."""
        return self.image_actions.add_pairs_in_background(pairs)

    def _on_project(self) -> None:
        project = self.session.project
        has = project is not None
        self.stack.setCurrentIndex(1 if has else 0)
        menus.enable_for_project(self, has)
        # No "modified" mark: every label is saved as it is made, so nothing is ever unsaved.
        self.setWindowTitle(f"{project.name} — Svetlana" if has else "Svetlana")
        self.image_bar.fill()
        if has and project.readonly:
            self.statusBar().showMessage("opened read-only", 6000)

    # ---- between the tabs --------------------------------------------------------------------
    def _retrain(self) -> None:
        """Retrain with the training tab's current settings (after corrections)."""
        self.tabs.setCurrentWidget(self.training_tab)
        self.training_tab.start_training()

    def _on_tab(self, _index: int) -> None:
        # Only the Annotate tab moves on after a label; elsewhere (a correction in the Predict
        # tab) the labelled object stays selected.
        self.annotation_tab.auto_advance = self.tabs.currentWidget() is self.annotation_tab

    def _go_to_objects(self, image: str, ids) -> None:
        """Show the object(s) whose label Undo/Redo just changed."""
        if self.session.project is None or not ids:
            return
        if image != self.session.current_image:
            with reporting(self):
                self.session.set_current_image(image)
        if len(ids) == 1:
            self.annotation_tab.go_to(int(ids[0]))
        else:
            self.session.select(ids)
            self.view.focus_object(int(ids[0]))

    # ---- Qt events: keys, drag and drop, closing ---------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.keys.handle_key(event):
            super().keyPressEvent(event)

    def dragEnterEvent(self, event) -> None:
        if dropped_project(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = dropped_project(event)
        if path is not None:
            event.acceptProposedAction()
            self.projects.open_project(path)

    def closeEvent(self, event) -> None:
        # Labels are journalled as they are made, so closing never asks about them;
        # only running work (training, prediction) does.
        if not self.projects.confirm_stop_jobs("quit"):
            event.ignore()
            return
        self.projects.stop_jobs()
        try:
            self.settings.save_window(self.saveGeometry(), self.saveState())
        except Exception:  # settings are a convenience; never block closing
            log.exception("cannot save the window settings")
        self.session.close_project()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.keys)
            app.removeEventFilter(self._wheel_guard)
        super().closeEvent(event)

"""The main window: start page, menus, the image with its tabs, keys, title, drag-and-drop.

~770 lines, not yet split (issue 20, item F): menus and actions, the project lifecycle (new,
open, demo, add images, close) and the window-level key filter; the tabs, panels and dialogs
(dialogs/images.py for Remove image / Set voxel size, guide.py) live in their own modules.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from svetlana import __version__
from svetlana.core.errors import ShapeMismatchError, SvetlanaError
from svetlana.core.project.bundle import MANIFEST, SUFFIX, Project
from svetlana.core.wording import plural
from svetlana.gui import keymap
from svetlana.gui.errors import reporting, show_error
from svetlana.gui.session import Session
from svetlana.gui.settings import Settings
from svetlana.gui.tabs.annotate import AnnotationTab
from svetlana.gui.widgets.common import WheelGuard
from svetlana.gui.widgets.image_view import ImageView

log = logging.getLogger(__name__)

_TEXT_WIDGETS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


def demo_path() -> Path:
    from svetlana.core.usecases.demo import demo_path as core_demo_path

    return core_demo_path()  # the same project as `svetlana demo` without a window


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


def project_path_of(path: str | Path) -> Path | None:
    """The bundle a dropped/opened path refers to (the folder or its project.json), else None."""
    p = Path(path)
    if p.is_file() and p.name == MANIFEST:
        return p.parent
    if p.is_dir() and (p / MANIFEST).is_file():
        return p
    return None


class StartPage(QWidget):
    """What the window shows without a project."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
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
        self.new_button.clicked.connect(window.new_project)
        self.open_button.clicked.connect(window.open_project_dialog)
        self.demo_button.clicked.connect(lambda: window.open_demo())
        self.recent = QListWidget()
        self.recent.itemActivated.connect(
            lambda item: window.open_project(item.data(Qt.ItemDataRole.UserRole))
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

        self.start_page = StartPage(self)
        self.view = ImageView(self.session)
        self.annotation_tab = AnnotationTab(self.session, self.view)
        self.training_tab = _make_training_tab(self.session)
        self.prediction_tab = _make_prediction_tab(self.session)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.annotation_tab, "Annotate")
        self.tabs.addTab(self.training_tab, "Train")
        self.tabs.addTab(self.prediction_tab, "Predict")
        self.tabs.setMinimumWidth(400)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        retrain = getattr(self.prediction_tab, "retrainRequested", None)
        if retrain is not None and hasattr(self.training_tab, "start_training"):
            retrain.connect(self._retrain)

        self.image_box = QComboBox()
        self.image_box.setMinimumWidth(200)
        self.image_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.image_box.currentIndexChanged.connect(self._on_image_box)
        self.image_info = QLabel("")
        top = QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 4)
        top.addWidget(QLabel("Image"))
        top.addWidget(self.image_box)
        top.addWidget(self.image_info, 1)
        image_area = QWidget()
        ia = QVBoxLayout(image_area)
        ia.setContentsMargins(0, 0, 0, 0)
        ia.setSpacing(0)
        ia.addLayout(top)
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

        self.hover_label = QLabel("")
        self.statusBar().addWidget(self.hover_label, 1)
        self.view.hoverText.connect(self.hover_label.setText)
        self.selection_label = QLabel("")
        self.selection_label.setToolTip("The selected object and its size")
        self.statusBar().addPermanentWidget(self.selection_label)
        self.session.selectionChanged.connect(self._on_selection)
        self.session.labelsRevisited.connect(self._go_to_objects)
        self.tabs.currentChanged.connect(self._on_tab)
        fixed = self.settings.value("view/fixed_zoom", False)
        self.annotation_tab.fixed_zoom.setChecked(fixed in (True, "true", "1", 1))
        self.annotation_tab.fixed_zoom.toggled.connect(
            lambda on: self.settings.set_value("view/fixed_zoom", bool(on))
        )
        self.annotation_tab.message.connect(lambda text: self.statusBar().showMessage(text, 4000))

        self._make_actions()
        self._make_menus()
        self.session.projectChanged.connect(self._on_project)
        self.session.imagesChanged.connect(self._fill_images)
        self.session.currentImageChanged.connect(self._on_current_image)
        self.session.busyChanged.connect(self._on_busy)

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
            app.installEventFilter(self)
            app.installEventFilter(self._wheel_guard)
        self._on_project()

    # ---- actions and menus -------------------------------------------------------------------
    def _action(
        self, text: str, slot, shortcut=None, checkable: bool = False, checked: bool = False
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        return action

    def _make_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.new_action = self._action("&New project…", self.new_project, K.New)
        self.open_action = self._action("&Open project…", self.open_project_dialog, K.Open)
        self.demo_action = self._action("Try the &demo", lambda: self.open_demo())
        self.add_images_action = self._action("&Add images…", self.add_images)
        self.remove_image_action = self._action("&Remove image…", self.remove_image)
        self.spacing_action = self._action("Set &voxel size…", self.set_spacing)
        self.export_action = self._action("&Export labels…", self.export_labels)
        self.close_action = self._action("&Close project", self.close_project, K.Close)
        self.quit_action = self._action("&Quit", self.close, K.Quit)
        self.undo_action = self.session.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts(keymap.shortcuts("undo"))
        self.redo_action = self.session.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts(keymap.shortcuts("redo", K.Redo))
        opts = self.session.view_options
        self.outlines_action = self._action(
            "Object &outlines",
            lambda on: self.session.set_view_option("outlines", on),
            None,
            True,
            opts["outlines"],
        )
        self.labels_action = self._action(
            "&Labels (class colours)",
            lambda on: self.session.set_view_option("labels", on),
            None,
            True,
            opts["labels"],
        )
        self.predictions_action = self._action(
            "&Predictions",
            lambda on: self.session.set_view_option("predictions", on),
            None,
            True,
            opts["predictions"],
        )
        self.auto_contrast_action = self._action("&Auto contrast", self.view.auto_contrast)
        self.fit_action = self._action("&Whole image", self.view.fit, keymap.sequences("fit")[0])
        self.prev_image_action = self._action("Previous image", lambda: self.session.step_image(-1))
        self.next_image_action = self._action("Next image", lambda: self.session.step_image(1))
        self.guide_action = self._action("&Guide", self.show_guide, K.HelpContents)
        self.shortcuts_action = self._action("&Keyboard shortcuts", self.show_shortcuts)
        self.about_action = self._action("&About Svetlana", self.show_about)

    def _make_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addAction(self.new_action)
        m.addAction(self.open_action)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addAction(self.demo_action)
        m.addSeparator()
        m.addAction(self.add_images_action)
        m.addAction(self.remove_image_action)
        m.addAction(self.spacing_action)
        m.addAction(self.export_action)
        m.addSeparator()
        m.addAction(self.close_action)
        m.addAction(self.quit_action)
        m = bar.addMenu("&Edit")
        m.addAction(self.undo_action)
        m.addAction(self.redo_action)
        m = bar.addMenu("&View")
        m.addAction(self.outlines_action)
        m.addAction(self.labels_action)
        m.addAction(self.predictions_action)
        m.addSeparator()
        self.channels_menu = m.addMenu("&Channels")
        self.channels_menu.aboutToShow.connect(self._fill_channels_menu)
        m.addAction(self.auto_contrast_action)
        m.addAction(self.fit_action)
        m.addSeparator()
        m.addAction(self.prev_image_action)
        m.addAction(self.next_image_action)
        m.addSeparator()
        tab_keys = keymap.sequences("tab")
        for i, name in enumerate(("&Annotate", "&Train", "&Predict")):
            action = QAction(name, self)
            action.setShortcut(QKeySequence(tab_keys[i]))
            action.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            m.addAction(action)
        m = bar.addMenu("&Help")
        m.addAction(self.guide_action)
        m.addAction(self.shortcuts_action)
        m.addAction(self.about_action)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.settings.recent_projects()
        for p in paths:
            self.recent_menu.addAction(str(p), lambda p=p: self.open_project(p))
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _fill_channels_menu(self) -> None:
        self.channels_menu.clear()
        for c in range(len(self.view.channel_items)):
            action = self.channels_menu.addAction(f"Channel {c + 1}")
            action.setCheckable(True)
            action.setChecked(self.view.channel_visible(c))
            action.toggled.connect(lambda on, c=c: self.view.set_channel_visible(c, on))

    # ---- project ----------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> bool:
        path = Path(path)
        bundle = project_path_of(path) or path
        if not self._confirm_stop_jobs("open another project"):
            return False
        self._stop_jobs()
        try:
            self.session.open_project(bundle)
        except SvetlanaError as exc:
            show_error(self, exc, "Cannot open the project")
            if not bundle.exists():
                self.settings.remove_recent(bundle)
                self.start_page.set_recent(self.settings.recent_projects())
            return False
        self._remember(bundle)
        return True

    def set_project(self, project: Project) -> None:
        """Show a project opened elsewhere (new project dialog, demo)."""
        if not self._confirm_stop_jobs("switch project"):
            project.close()
            return
        self._stop_jobs()
        self.session.set_project(project)
        self._remember(project.path)

    def _remember(self, path: Path) -> None:
        self.settings.add_recent(path)
        self.start_page.set_recent(self.settings.recent_projects())

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a Svetlana project (the .svetlana folder)"
        )
        if path:
            self.open_project(path)

    def new_project(self) -> None:
        from svetlana.gui.dialogs.new_project import NewProjectDialog

        dialog = NewProjectDialog(self)
        if dialog.exec() and dialog.project is not None:
            self.set_project(dialog.project)

    def add_images(self, pairs=None, error: SvetlanaError | None = None) -> None:
        """The Add images dialog; ``pairs`` and ``error`` reopen it after a shape mismatch,
        with the Axes field where the user types the image's axes and retries."""
        from svetlana.gui.dialogs.new_project import NewProjectDialog

        project = self.session.project
        if project is None:
            return
        dialog = NewProjectDialog(self, adding=True)
        for image, mask, name, *axes in pairs or ():
            dialog.add_pair(image, mask, name, axes[0] if axes else None)
        if error is not None:
            dialog.ask_for_axes(error)
        if not dialog.exec():
            return
        self.add_pairs_in_background(dialog.to_read())

    def _add_failed(self, exc: BaseException, pairs) -> None:
        from svetlana.gui.jobs import report_error

        report_error(self, exc)
        if isinstance(exc, ShapeMismatchError):
            # the error suggests an axes string: let the user type it and retry
            QTimer.singleShot(0, lambda: self.add_images(pairs, exc))

    def add_pairs_in_background(self, pairs):
        """Read and measure the images in a worker (the window stays usable), then add them
        (gui/ops.py: run_op). Returns the job (None when there is nothing to do)."""
        from svetlana.core.project.images import prepare_images
        from svetlana.gui.ops import run_op

        pairs = [(Path(p[0]), Path(p[1]), *p[2:]) for p in pairs]  # (image, mask, name[, axes])
        if self.session.project is None or not pairs:
            return None

        def commit(_plan, prepared) -> None:
            names: list[str] = []
            with reporting(self, "Cannot add the image"):
                self.session.add_prepared(self.session.project, prepared, names)
            if names:
                self.session.set_current_image(names[0])
                self.statusBar().showMessage(f"added {plural(len(names), 'image')}", 5000)

        self._add_job = run_op(
            self, self.session, "add images", lambda _project: pairs,
            lambda p, _view, progress, cancel: prepare_images(p, progress, cancel), commit,
            on_failure=lambda exc: self._add_failed(exc, pairs),
            on_progress=lambda events: self.statusBar().showMessage(events[-1].message),
            view=False,  # reads the user's files, not the bundle
        )  # fmt: skip
        return self._add_job

    def remove_image(self) -> None:
        from svetlana.gui.dialogs.images import remove_current_image

        if remove_current_image(self, self.session):
            self.statusBar().showMessage("image removed", 5000)

    def set_spacing(self) -> None:
        from svetlana.gui.dialogs.images import set_current_spacing

        if set_current_spacing(self, self.session):
            self.statusBar().showMessage("voxel size set", 5000)

    def export_labels(self) -> None:
        from svetlana.core.usecases.labels import export_labels

        project = self.session.project
        if project is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export labels",
            str(project.path.parent / f"{project.name}_labels.csv"),
            "CSV (*.csv)",
        )
        if not path:
            return
        with reporting(self, "Cannot export the labels"):
            n = export_labels(project, path)
            self.statusBar().showMessage(f"{plural(n, 'label')} written to {path}", 6000)

    def open_demo(self, path: Path | None = None) -> None:
        """Open the demo project (at ``path``, default the data folder's), building it first
        in a worker (a few seconds)."""
        from svetlana.core.usecases.demo import build_demo
        from svetlana.gui.ops import run_op

        path = Path(path) if path else demo_path()
        if project_path_of(path) is not None:
            self.open_project(path)
            return

        def build(p, _view, _progress, _cancel) -> None:
            p.parent.mkdir(parents=True, exist_ok=True)
            build_demo(p).close()

        def commit(p, _result) -> None:  # opened once the job has ended (the window is not busy)
            QTimer.singleShot(0, lambda: self.open_project(p))

        self._demo_job = run_op(
            self, self.session, "demo", lambda _project: path, build, commit,
            view=False, needs_project=False,
        )  # fmt: skip
        if self._demo_job is not None:
            self.statusBar().showMessage("Building the demo project…")

    def _retrain(self) -> None:
        """Retrain with the training tab's current settings (after corrections)."""
        self.tabs.setCurrentWidget(self.training_tab)
        self.training_tab.start_training()

    def _stop_jobs(self) -> bool:
        """Cancel background work and wait for its threads; True when none is left running."""
        from svetlana.gui.jobs import stop_jobs

        ok = stop_jobs(getattr(self, "_add_job", None), getattr(self, "_demo_job", None))
        for tab in (self.training_tab, self.prediction_tab, self.annotation_tab):
            stop = getattr(tab, "shutdown", None)
            if stop is not None:
                ok = stop() and ok
        return ok

    def _confirm_stop_jobs(self, action: str) -> bool:
        """Ask before stopping running work; returns False if the user wants to keep it."""
        if not self.session.busy:
            return True
        answer = QMessageBox.question(
            self,
            "Work in progress",
            f"Training or prediction is still running. Stop it and {action}?\n\n"
            "A stopped run changes nothing in the project; your labels are saved.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        return self._stop_jobs()

    def close_project(self) -> None:
        if not self._confirm_stop_jobs("close the project"):
            return
        self._stop_jobs()
        self.session.set_project(None)

    def _on_project(self) -> None:
        project = self.session.project
        has = project is not None
        self.stack.setCurrentIndex(1 if has else 0)
        for a in (
            self.add_images_action,
            self.remove_image_action,
            self.spacing_action,
            self.export_action,
            self.close_action,
            self.prev_image_action,
            self.next_image_action,
        ):
            a.setEnabled(has)
        # No "modified" mark: every label is saved as it is made, so nothing is ever unsaved.
        self.setWindowTitle(f"{project.name} — Svetlana" if has else "Svetlana")
        self._fill_images()
        if has and project.readonly:
            self.statusBar().showMessage("opened read-only", 6000)

    def _fill_images(self) -> None:
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
            with reporting(self):
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

    def _on_selection(self, ids) -> None:
        if len(ids) == 1:
            size = self.view.object_size(ids[0])
            self.selection_label.setText(
                f"selected: object {ids[0]}" + (f"  ·  {size}" if size else "")
            )
        elif ids:
            self.selection_label.setText(f"selected: {plural(len(ids), 'object')}")
        else:
            self.selection_label.setText("")

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

    def _on_busy(self, busy: bool) -> None:
        for a in (
            self.new_action,
            self.open_action,
            self.demo_action,
            self.add_images_action,
            self.remove_image_action,
            self.spacing_action,
            self.close_action,
        ):
            a.setEnabled(
                not busy
                and (
                    a in (self.new_action, self.open_action, self.demo_action)
                    or self.session.project is not None
                )
            )

    # ---- keys -------------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        # Labelling keys work whatever widget has focus, except where text is typed.
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(obj, QWidget)
            and obj.window() is self
        ):
            if isinstance(obj, _TEXT_WIDGETS) or isinstance(
                QApplication.focusWidget(), _TEXT_WIDGETS
            ):
                return False
            if (
                QApplication.activePopupWidget() is not None
                or QApplication.activeModalWidget() is not None
            ):
                return False
            return self.handle_key(event)
        return False

    def handle_key(self, event: QKeyEvent) -> bool:
        """The window's keys, then the labelling keys (both in gui/keymap.py); whether used.

        A class key labels the session's current object(s), whatever tab is shown (a
        correction in the Predict tab); without a project there is nothing to label.
        """
        if keymap.dispatch(event, keymap.WINDOW, self, is_3d=self.view.ndim == 3):
            return True
        return self.annotation_tab.handle_key(event)

    def key_help(self) -> None:
        self.show_shortcuts()

    def key_next_image(self) -> bool:
        self.session.step_image(1)
        return self.session.project is not None

    def key_previous_image(self) -> bool:
        self.session.step_image(-1)
        return self.session.project is not None

    def key_next_slice(self) -> None:
        self.view.step_z(1)

    def key_previous_slice(self) -> None:
        self.view.step_z(-1)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.handle_key(event):
            super().keyPressEvent(event)

    # ---- help -------------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        keymap.ShortcutsDialog(self).exec()

    def show_guide(self) -> None:
        """The README's "Using it", offline, in a window beside the main one."""
        from svetlana.gui.guide import GuideDialog

        if getattr(self, "guide", None) is None:
            self.guide = GuideDialog(self)
        self.guide.show()
        self.guide.raise_()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Svetlana",
            f"<h3>Svetlana {__version__}</h3><p>Classify segmented objects in microscopy images: "
            "label objects, train a model on them (a forest on measurements or a small network on "
            "the pixels, chosen by cross-validation), predict the class of every object.</p><p>After Svetlana (Cazorla et al.): a deep-learning tool for classifying "
            "segmented objects.</p>",
        )

    # ---- drag and drop ------------------------------------------------------------------------------
    def _dropped_project(self, event) -> Path | None:
        if not event.mimeData().hasUrls():
            return None
        for url in event.mimeData().urls():
            if url.isLocalFile():
                p = project_path_of(url.toLocalFile())
                if p is not None:
                    return p
        return None

    def dragEnterEvent(self, event) -> None:
        if self._dropped_project(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = self._dropped_project(event)
        if path is not None:
            event.acceptProposedAction()
            self.open_project(path)

    # ---- closing --------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        # Labels are journalled as they are made, so closing never asks about them;
        # only running work (training, prediction) does.
        if not self._confirm_stop_jobs("quit"):
            event.ignore()
            return
        self._stop_jobs()
        try:
            self.settings.save_window(self.saveGeometry(), self.saveState())
        except Exception:  # settings are a convenience; never block closing
            log.exception("cannot save the window settings")
        self.session.close_project()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
            app.removeEventFilter(self._wheel_guard)
        super().closeEvent(event)

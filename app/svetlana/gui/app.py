"""Start the desktop application: logging, the Qt application, the error hook, the main window."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def log_dir() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("Svetlana", appauthor=False))


def setup_logging() -> Path | None:
    """A rotating log file in the user's log folder (never fatal when it cannot be written)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "svetlana.log"
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


def run(bundle: Path | None = None, demo: bool = False) -> int:
    """Open the window (with ``bundle``, or the demo project) and run until it is closed."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from svetlana import __version__

    path = setup_logging()
    log.info("Svetlana %s starting (log: %s)", __version__, path)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Svetlana")
    app.setDesktopFileName("svetlana")  # lets Wayland docks match the window to the launcher
    _set_icon(app)
    app.setOrganizationName("Svetlana")
    app.setApplicationVersion(__version__)

    from svetlana.gui.errors import install_excepthook
    from svetlana.gui.main_window import MainWindow

    window = MainWindow()
    install_excepthook(lambda: window)
    opener = FileOpenFilter(window)
    app.installEventFilter(opener)
    window.show()
    if demo and bundle is None:
        QTimer.singleShot(0, window.open_demo)
    elif bundle is not None:
        target = Path(bundle)
        if demo and not target.exists():
            QTimer.singleShot(0, lambda: window.open_demo(target))  # built in a worker
        else:
            QTimer.singleShot(0, lambda: window.open_project(target))
    return int(app.exec())


def _file_open_filter_class():
    from PySide6.QtCore import QEvent, QObject

    class _FileOpenFilter(QObject):
        """macOS sends a double-clicked project to the running app as a FileOpen event."""

        def __init__(self, window):
            super().__init__(window)
            self.window = window

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.FileOpen:
                path = event.file() or event.url().toLocalFile()
                if path:
                    self.window.open_project(path)
                return True
            return False

    return _FileOpenFilter


def FileOpenFilter(window):  # noqa: N802 - reads like the class it makes
    return _file_open_filter_class()(window)


def _set_icon(app) -> None:
    from importlib import resources

    from PySide6.QtGui import QIcon

    try:
        icon = resources.files("svetlana") / "resources" / "svetlana.svg"
        if icon.is_file():
            app.setWindowIcon(QIcon(str(icon)))
    except (OSError, ModuleNotFoundError):  # an icon is cosmetic; never block start-up
        pass

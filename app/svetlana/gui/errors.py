"""The one place the GUI turns an exception into a message: a plain sentence plus details."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from svetlana.core.errors import SvetlanaError

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> tuple[str, str]:
    """(message for the user, technical details) of an exception. A SvetlanaError is the user's
    situation said in full (a file, an argument): no traceback under "Show Details…" for it."""
    if isinstance(exc, SvetlanaError):
        return str(exc), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, MemoryError):
        return (
            "Not enough memory for this operation. Close other programs or use smaller images.",
            details,
        )
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or exc}", details
    return (
        "Something went wrong inside Svetlana. Your labels are safe (they are saved as you make them). "
        "Please report this with the details below.",
        details,
    )


class ErrorDialog(QMessageBox):
    """A warning box: the message, and the traceback under "Show Details…"."""

    def __init__(
        self,
        message: str,
        details: str = "",
        title: str = "Svetlana",
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle(title)
        self.setText(message)
        if details:
            self.setDetailedText(details)
        self.setStandardButtons(QMessageBox.StandardButton.Ok)


def show_error(parent: QWidget | None, exc: BaseException, title: str = "Svetlana") -> None:
    """Log an exception and show it in an ErrorDialog."""
    message, details = describe(exc)
    if isinstance(exc, SvetlanaError):
        log.warning("%s", message)
    else:
        log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    ErrorDialog(message, details, title, parent).exec()


@contextmanager
def reporting(parent: QWidget | None, title: str = "Svetlana") -> Iterator[None]:
    """Run a user action; any error becomes a dialog instead of propagating."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the GUI border: every failure becomes one clear message
        show_error(parent, exc, title)


def install_excepthook(parent: Callable[[], QWidget | None] = lambda: None) -> None:
    """Unexpected exceptions (e.g. in a slot) become an error dialog, never a crash to desktop."""

    def hook(etype, value, tb):
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        if value.__traceback__ is None:
            value = value.with_traceback(tb)
        if QApplication.instance() is None:
            sys.__excepthook__(etype, value, tb)
            return
        try:
            show_error(parent(), value)
        except Exception:  # never let the hook itself crash the app
            log.exception("error while reporting an error")

    sys.excepthook = hook

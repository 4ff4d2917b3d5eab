"""The window's keys: an application-wide filter that gives key presses in the window to the
window's bindings, then to the labelling keys (both tables in gui/keymap.py)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from svetlana.gui import keymap

_TEXT_WIDGETS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class WindowKeys(QObject):
    """Labelling keys work whatever widget of ``window`` has focus, except where text is typed."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(obj, QWidget)
            and obj.window() is self._window
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
        w = self._window
        if keymap.dispatch(event, keymap.WINDOW, self, is_3d=w.view.ndim == 3):
            return True
        return w.annotation_tab.handle_key(event)

    def key_help(self) -> None:
        self._window.help.show_shortcuts()

    def key_next_image(self) -> bool:
        self._window.session.step_image(1)
        return self._window.session.project is not None

    def key_previous_image(self) -> bool:
        self._window.session.step_image(-1)
        return self._window.session.project is not None

    def key_next_slice(self) -> None:
        self._window.view.step_z(1)

    def key_previous_slice(self) -> None:
        self._window.view.step_z(-1)

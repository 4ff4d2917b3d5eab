"""Answering a modal dialog the way a user does: wait for it to open, then click or type on it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

_timers: list[QTimer] = []  # alive until they fire


class Opened(list):
    """The dialogs seen, and their texts (a message box is deleted once answered)."""

    texts: list[str]


def _when_opens(
    find: Callable[[], QWidget | None], act: Callable[[QWidget, Opened], None], timeout_ms: int
) -> Opened:
    """Poll every 10 ms (from the event loop, which a modal dialog or menu runs) until ``find``
    returns a visible widget, then record it and call ``act(widget, seen)`` once; give up after
    ``timeout_ms``. Returns ``seen``: the widget once found, ``.texts`` what ``act`` added."""
    seen = Opened()
    seen.texts = []
    timer = QTimer()
    timer.setInterval(10)
    waited = [0]

    def poll() -> None:
        waited[0] += 10
        w = find()
        if w is not None and w.isVisible():
            timer.stop()
            seen.append(w)
            act(w, seen)
        elif waited[0] > timeout_ms:
            timer.stop()

    timer.timeout.connect(poll)
    timer.start()
    _timers.append(timer)
    return seen


def when_modal_opens(act: Callable[[QWidget], None], timeout_ms: int = 5000) -> Opened:
    """Call ``act(dialog)`` on the next modal dialog once it is shown; the returned list then
    holds the dialog and ``.texts`` its text (both stay empty when none opened)."""

    def answer(w: QWidget, seen: Opened) -> None:
        seen.texts.append(w.text() if hasattr(w, "text") else w.windowTitle())
        act(w)

    return _when_opens(QApplication.activeModalWidget, answer, timeout_ms)


def click_button(dialog: QWidget, text: str) -> None:
    """Click the dialog's button whose text (without '&') is ``text``."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QAbstractButton

    for b in dialog.findChildren(QAbstractButton):
        if b.text().replace("&", "") == text and b.isVisible():
            QTest.mouseClick(b, Qt.MouseButton.LeftButton)
            return
    names = [b.text() for b in dialog.findChildren(QAbstractButton)]
    raise AssertionError(f"no button {text!r} on the dialog (buttons: {names})")


def when_menu_opens(text: str, timeout_ms: int = 5000) -> Opened:
    """Click the entry whose text starts with ``text`` (without '&') of the next popup menu once
    it is shown, where the user's mouse would (the entry's place in the menu); the returned list
    then holds the menu and ``.texts`` the entry's full text (both empty when none opened)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMenu

    def popup_menu() -> QMenu | None:
        menu = QApplication.activePopupWidget()
        return menu if isinstance(menu, QMenu) else None

    def click(menu: QMenu, seen: Opened) -> None:
        for action in menu.actions():
            if action.text().replace("&", "").startswith(text):
                seen.texts.append(action.text())
                pos = menu.actionGeometry(action).center()
                QTest.mouseClick(menu, Qt.MouseButton.LeftButton, Qt.KeyboardModifier(0), pos)
                return
        menu.close()  # no such entry: the test sees seen.texts empty

    return _when_opens(popup_menu, click, timeout_ms)


def choose_from_menu_bar(qtbot, window, menu_title: str, entry: str) -> Opened:
    """Click a menu's title in the window's menu bar, then its entry (e.g. File ▸ Add images)."""
    from PySide6.QtCore import Qt

    bar = window.menuBar()
    titles = [a for a in bar.actions() if a.text().replace("&", "") == menu_title]
    assert titles, f"no menu {menu_title!r} in the menu bar"
    seen = when_menu_opens(entry)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(titles[0]).center())
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    return seen

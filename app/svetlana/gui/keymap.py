"""Every key binding, listed once: ``dispatch`` calls the handler named by a binding's action,
the menus take their shortcuts from here, and the help dialog (the ? key) shows this table."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

K = Qt.Key
CLASS_KEYS = "123456789"

# Where a binding acts: the whole window, the Annotate tab, the Review list, the gallery;
# "menu" bindings are the shortcuts of menu actions (Qt dispatches them); "mouse" rows are shown only.
WINDOW, ANNOTATE, REVIEW, GALLERY, MENU, MOUSE = (
    "window", "annotate", "review", "gallery", "menu", "mouse",
)  # fmt: skip


@dataclass(frozen=True)
class Binding:
    scope: str
    action: str  # the handler's name for it ("" for rows that are shown only)
    shown: str  # the keys as the help lists them
    help: str
    keys: tuple[int, ...] = ()  # Qt keys, pressed without Ctrl/Alt/Meta
    texts: str = ""  # typed characters that trigger it (whatever key makes them)
    sequences: tuple[str, ...] = ()  # menu shortcuts (QKeySequence strings)
    only_3d: bool = False


KEYMAP: tuple[Binding, ...] = (
    Binding(ANNOTATE, "label", "1 … 9",
            "Label the current object(s) with the class of that key, then go to the next",
            texts=CLASS_KEYS),
    Binding(ANNOTATE, "clear", "0 or Backspace", "Clear the label of the current object(s)",
            keys=(K.Key_0, K.Key_Backspace, K.Key_Delete)),
    Binding(ANNOTATE, "skip", "Space or →", "Skip: go to the next object",
            keys=(K.Key_Space, K.Key_Right)),
    Binding(ANNOTATE, "back", "←", "Go back to the previous object", keys=(K.Key_Left,)),
    Binding(REVIEW, "keep", "K (Review list)",
            "Keep the current object's label as it is (dismiss its row)", texts="kK"),
    Binding(GALLERY, "label", "1 … 9 (gallery)", "Label the highlighted object, go to the next",
            texts=CLASS_KEYS),
    Binding(GALLERY, "clear", "0 or Backspace (gallery)", "Clear the highlighted object's label",
            keys=(K.Key_0, K.Key_Backspace, K.Key_Delete)),
    Binding(GALLERY, "next", "Space or → (gallery)", "Next object", keys=(K.Key_Space, K.Key_Right)),
    Binding(GALLERY, "previous", "← (gallery)", "Previous object", keys=(K.Key_Left,)),
    Binding(GALLERY, "down", "↑ / ↓ (gallery)", "Row above / below", keys=(K.Key_Down,)),
    Binding(GALLERY, "up", "", "", keys=(K.Key_Up,)),
    Binding(GALLERY, "next_page", "Page Up / Page Down (gallery)", "Previous / next page",
            keys=(K.Key_PageDown,)),
    Binding(GALLERY, "previous_page", "", "", keys=(K.Key_PageUp,)),
    Binding(MOUSE, "", "Click", "Select an object (Ctrl+click adds to the selection)"),
    Binding(MOUSE, "", "Shift+drag", "Select the objects in a rectangle (plain drag in Click mode)"),
    Binding(MOUSE, "", "Middle-drag / wheel", "Pan / zoom the image"),
    Binding(MENU, "fit", "Ctrl+0", "Show the whole image", sequences=("Ctrl+0",)),
    Binding(WINDOW, "next_image", "Page Up / Page Down", "Previous / next image",
            keys=(K.Key_PageDown,)),
    Binding(WINDOW, "previous_image", "", "", keys=(K.Key_PageUp,)),
    Binding(WINDOW, "next_slice", ", and .  or ↑ and ↓", "Previous / next Z slice (3D images)",
            keys=(K.Key_Period, K.Key_Up), only_3d=True),
    Binding(WINDOW, "previous_slice", "", "", keys=(K.Key_Comma, K.Key_Down), only_3d=True),
    Binding(MENU, "undo", "Ctrl+Z / Ctrl+Shift+Z", "Undo / redo", sequences=("Ctrl+Z",)),
    Binding(MENU, "redo", "", "", sequences=("Ctrl+Shift+Z",)),
    Binding(MENU, "tab", "Ctrl+1 / Ctrl+2 / Ctrl+3", "Annotate / Train / Predict tab",
            sequences=("Ctrl+1", "Ctrl+2", "Ctrl+3")),
    Binding(MENU, "", "Ctrl+N / Ctrl+O", "New project / open project"),
    Binding(WINDOW, "help", "?", "Show this list", texts="?"),
)  # fmt: skip

_BLOCKING = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)


def action_for(event: QKeyEvent, scope: str, *, is_3d: bool = False) -> str | None:
    """The action a key press means in ``scope`` (None: not ours, let it through)."""
    text = event.text()
    if scope == WINDOW and (text == "?" or (event.key() == K.Key_Slash and _shift(event))):
        return "help"  # "?" is Shift+/ on many layouts: whatever the layout, never blocked
    if event.modifiers() & _BLOCKING:
        return None
    for b in KEYMAP:
        if b.scope != scope or not b.action or (b.only_3d and not is_3d):
            continue
        if (text and text in b.texts) or event.key() in b.keys:
            return b.action
    return None


def dispatch(event: QKeyEvent, scope: str, target, *, is_3d: bool = False) -> bool:
    """Call ``target.key_<action>`` for the action the key means in ``scope``; whether it was used.

    The class keys pass the typed character ("label"); a handler returning False declines.
    """
    action = action_for(event, scope, is_3d=is_3d)
    handler = getattr(target, f"key_{action}", None) if action else None
    if handler is None:
        return False
    used = handler(event.text()) if action == "label" else handler()
    return used is not False


def _shift(event: QKeyEvent) -> bool:
    return bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)


def sequences(action: str) -> tuple[str, ...]:
    """The menu shortcuts of ``action``."""
    for b in KEYMAP:
        if b.scope == MENU and b.action == action:
            return b.sequences
    raise KeyError(action)


def shortcuts(action: str, standard: QKeySequence.StandardKey | None = None) -> list[QKeySequence]:
    """The menu shortcuts of ``action`` and the platform's keys for ``standard``, each once.

    A sequence bound twice to one action (X11's Redo is Ctrl+Shift+Z) is an "ambiguous
    shortcut overload" that Qt answers by doing nothing.
    """
    seqs = [QKeySequence(k) for k in sequences(action)]
    if standard is not None:
        seqs += QKeySequence.keyBindings(standard)
    unique = {k.toString(): k for k in seqs if not k.isEmpty()}
    return list(unique.values())


def help_rows() -> list[tuple[str, str]]:
    """What the help dialog lists: (keys, action), in the table's order."""
    return [(b.shown, b.help) for b in KEYMAP if b.shown]


class ShortcutsDialog(QDialog):
    """The ? dialog: the key map as a table."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — Svetlana")
        rows = help_rows()
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for row, (keys, what) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(680, 560)

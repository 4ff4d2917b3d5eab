"""The Help menu: the guide (the README's "Using it", offline), the keys, About."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from svetlana import __version__
from svetlana.gui import keymap


class HelpMenu:
    """What Help's actions show, over ``window``."""

    def __init__(self, window: QWidget):
        self._window = window
        self.guide = None  # the guide window, made on first use and kept

    def show_shortcuts(self) -> None:
        keymap.ShortcutsDialog(self._window).exec()

    def show_guide(self) -> None:
        """The README's "Using it", offline, in a window beside the main one."""
        from svetlana.gui.guide import GuideDialog

        if self.guide is None:
            self.guide = GuideDialog(self._window)
        self.guide.show()
        self.guide.raise_()

    def show_about(self) -> None:
        QMessageBox.about(
            self._window,
            "About Svetlana",
            f"<h3>Svetlana {__version__}</h3><p>Classify segmented objects in microscopy images: "
            "label objects, train a model on them (a forest on measurements or a small network on "
            "the pixels, chosen by cross-validation), predict the class of every object.</p><p>After Svetlana (Cazorla et al.): a deep-learning tool for classifying "
            "segmented objects.</p>",
        )

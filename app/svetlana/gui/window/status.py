"""The window's status line: what is under the mouse, and the selected object(s) and size."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from svetlana.core.wording import plural


class StatusLine:
    """Fills the status bar's two permanent labels from the view and the session."""

    def __init__(self, bar: QStatusBar, session, view):
        self.view = view
        self.hover_label = QLabel("")
        bar.addWidget(self.hover_label, 1)
        view.hoverText.connect(self.hover_label.setText)
        self.selection_label = QLabel("")
        self.selection_label.setToolTip("The selected object and its size")
        bar.addPermanentWidget(self.selection_label)
        session.selectionChanged.connect(self._on_selection)

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

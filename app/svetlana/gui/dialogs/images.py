"""The File menu's image management: *Remove image…* (asks first when labels go with it) and
*Set voxel size…* (a spin box per axis)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.usecases.images import plan_removal
from svetlana.gui.errors import reporting
from svetlana.gui.session import Session


def remove_current_image(parent: QWidget, session: Session) -> bool:
    """Remove the image shown, after a question naming what goes with it; True when removed."""
    project, name = session.project, session.current_image
    if project is None or name is None:
        return False
    with reporting(parent, "Cannot remove the image"):
        removal = plan_removal(project, name)
        if removal.n_labels:
            text = (
                f"Remove the image {name!r} from the project?\n\nIts "
                f"{removal.labels_text()} are removed with it. Export the "
                "labels first (File ▸ Export labels…) to keep a copy. This cannot be undone."
            )
        else:
            text = (
                f"Remove the image {name!r} and its mask from the project?\n\n"
                "It has no labels. Your own files are not touched."
            )
        answer = QMessageBox.question(
            parent,
            "Remove image",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        session.remove_image(name)
        return True
    return False


class SpacingDialog(QDialog):
    """The voxel size of one image: Z, Y, X (or Y, X) in the image's units (e.g. µm)."""

    def __init__(self, name: str, ndim: int, spacing, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Set voxel size — Svetlana")
        axes = "ZYX" if ndim == 3 else "YX"
        current = tuple(spacing) if spacing else (1.0,) * ndim
        intro = QLabel(
            f"The size of one pixel of {name!r} along each axis (e.g. in µm). Measurements are "
            "recomputed with it; train again for a model to use it."
            + ("" if spacing else "\nThe image's file gave none: 1 is assumed for each axis.")
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        self.boxes: list[QDoubleSpinBox] = []
        for axis, value in zip(axes, current, strict=True):
            box = QDoubleSpinBox()
            box.setDecimals(4)
            box.setRange(0.0001, 10000.0)
            box.setValue(float(value))
            box.setObjectName(f"spacing_{axis}")
            form.addRow(f"{axis}", box)
            self.boxes.append(box)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def spacing(self) -> tuple[float, ...]:
        return tuple(b.value() for b in self.boxes)


def set_current_spacing(parent: QWidget, session: Session) -> bool:
    project, name = session.project, session.current_image
    if project is None or name is None:
        return False
    entry = project.image(name)
    dialog = SpacingDialog(name, entry.ndim, entry.spacing, parent)
    if not dialog.exec():
        return False
    with reporting(parent, "Cannot set the voxel size"):
        session.set_spacing(name, dialog.spacing())
        return True
    return False

"""The Current object box: what the session's current object is (id, size, class, prediction)
and the patch the network sees around it, in the image's contrast or stretched."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from svetlana.core.errors import SvetlanaError
from svetlana.core.wording import plural


class CurrentObjectPanel(QGroupBox):
    """Shows the session's current object(s); repaints on every change of it or its label."""

    def __init__(self, session, view, parent: QWidget | None = None):
        super().__init__("Current object", parent)
        self.session = session
        self.view = view
        self._patch_size: int | None = None
        self.empty_text = "No object"
        # Short lines (object, size, class, prediction): no word wrap, whose height estimate
        # beside the fixed-size preview would let the caption overlap the lines.
        self.label = QLabel("No object")
        self.preview = QLabel()
        self.preview.setFixedSize(128, 128)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #101010; border: 1px solid #444;")
        self.caption = QLabel("What the network sees")
        self.caption.setWordWrap(True)
        self.fixed_zoom = QCheckBox("Same zoom for all objects (compare sizes)")
        self.fixed_zoom.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fixed_zoom.setToolTip(
            "One zoom per image, from the typical object size, instead of zooming to each\n"
            "object: a large object looks large, so sizes can be judged by eye."
        )
        self.fixed_zoom.toggled.connect(self._on_fixed_zoom)
        self.stretch = QCheckBox("Stretch each object's contrast")
        self.stretch.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stretch.setToolTip(
            "Off: the patch and the gallery use the image's contrast, so a dim object looks\n"
            "dim. On: each object's own range fills black to white (faint texture shows)."
        )
        self.stretch.toggled.connect(lambda _on: self.timer.start())
        row = QHBoxLayout()
        row.addWidget(self.preview)
        col = QVBoxLayout()
        col.addWidget(self.label)
        col.addWidget(self.caption)
        col.addStretch(1)
        row.addLayout(col, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.fixed_zoom)
        lay.addWidget(self.stretch)
        self.timer = QTimer(self)  # the patch is cut after a quick run of keys, not at each
        self.timer.setSingleShot(True)
        self.timer.setInterval(40)
        self.timer.timeout.connect(self.update_preview)
        session.projectChanged.connect(self._forget_patch_size)

    def _forget_patch_size(self) -> None:
        self._patch_size = None

    def _on_fixed_zoom(self, on: bool) -> None:
        self.view.set_fixed_zoom(on)
        if len(self.session.selection) == 1:
            self.view.focus_object(self.session.selection[0])

    def show_current(self) -> None:
        sel = self.session.selection
        if not sel:
            self.label.setText(self.empty_text)
            self.preview.clear()
        elif len(sel) == 1:
            self.label.setText(self.view.describe(sel[0]).replace("  ·  ", "\n"))
            self.timer.start()
        else:
            self.label.setText(f"{plural(len(sel), 'object')} selected")
            self.preview.clear()

    def update_preview(self) -> None:
        sel = self.session.selection
        if len(sel) != 1 or self.session.project is None:
            self.preview.clear()
            return
        try:
            patch, size = self.patch_for(sel[0])
        except SvetlanaError as exc:
            self.caption.setText(f"No preview: {exc.message}")
            return
        self.preview.setPixmap(self.pixmap(patch, self.preview.width()))
        self.caption.setText(
            f"What the network sees: a {size}×{size} pixel patch around the object, "
            "with the object's own pixels marked (outlined)."
        )

    def pixmap(self, patch: np.ndarray, side: int) -> QPixmap:
        return patch_pixmap(patch, side, self.stretch.isChecked())

    def thumbnail(self, obj: int, side: int) -> QPixmap:
        """An object's patch as the preview shows it (the gallery's thumbnails)."""
        return self.pixmap(self.patch_for(obj)[0], side)

    def patch_for(self, obj: int) -> tuple[np.ndarray, int]:
        """The training patch of an object, (C+1, *patch), cut from a crop (not the whole image)."""
        from svetlana.core.usecases.train import resolve_patch_size

        s = self.session
        if self._patch_size is None:
            self._patch_size = resolve_patch_size(s.project, "auto")
        size = self._patch_size
        return s.loaded().object_patch(obj, size), size


def patch_pixmap(patch: np.ndarray, side: int, stretch: bool = False) -> QPixmap:
    """First channel in grey (middle slice in 3D) with the object's mask outlined in yellow.

    The patch is normalised with the whole image's range (0 and 1 are its low and high
    percentiles), shown as is so that brightness compares between objects; ``stretch`` maps
    the patch's own range to black..white instead.
    """
    img = patch[0]
    mask = patch[-1]
    if img.ndim == 3:
        img, mask = img[img.shape[0] // 2], mask[mask.shape[0] // 2]
    lo, hi = (0.0, 1.0)
    if stretch and img.size:
        lo, hi = np.percentile(img, [1, 99.5])
    grey = np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    m = mask > 0
    edge = m & ~(
        np.pad(m, 1)[2:, 1:-1]
        & np.pad(m, 1)[:-2, 1:-1]
        & np.pad(m, 1)[1:-1, 2:]
        & np.pad(m, 1)[1:-1, :-2]
    )
    rgb[edge] = (255, 230, 0)
    rgb = np.ascontiguousarray(rgb)
    h, w = grey.shape
    qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )

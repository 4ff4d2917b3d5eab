"""The view's pyqtgraph pieces and helpers: colour ramps, outlines, percentile contrast, the
ViewBox that reports clicks and rectangles, and the scale bar."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor

from svetlana.core.wording import nice_length

CHANNEL_COLOURS = ("#00ff00", "#ff00ff", "#00ffff", "#ffff00", "#ff4040", "#4080ff")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    c = QColor(colour)
    return c.red(), c.green(), c.blue()


def channel_colours(n: int) -> list[str]:
    return ["#ffffff"] if n == 1 else [CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)] for i in range(n)]


def ramp(colour: str) -> np.ndarray:
    """A 256-entry lookup table from black to ``colour``."""
    r, g, b = hex_rgb(colour)
    t = np.linspace(0.0, 1.0, 256)[:, None]
    return np.round(t * np.array([r, g, b], float)).astype(np.uint8)


def boundary_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object that touch a pixel of another label (4-neighbourhood), vectorised."""
    edge = np.zeros(labels.shape, bool)
    dy = labels[1:, :] != labels[:-1, :]
    dx = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge &= labels != 0
    return edge


def auto_levels(data: np.ndarray, low: float = 0.5, high: float = 99.8) -> tuple[float, float]:
    """Percentile contrast from a subsample (fast on large images)."""
    flat = np.asarray(data).reshape(-1)
    step = max(1, flat.size // 200_000)
    sample = flat[::step].astype(np.float64)
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


class _ViewBox(pg.ViewBox):
    """A ViewBox that reports left clicks and rectangle drags (Shift+drag, or any drag in rect mode)."""

    clicked = Signal(float, float, object)  # x, y (image coordinates), keyboard modifiers
    rectDragged = Signal(
        QRectF, bool, object
    )  # rectangle in image coordinates, finished, modifiers

    def __init__(self):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.rect_mode = False

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.clicked.emit(p.x(), p.y(), ev.modifiers())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() == Qt.MouseButton.LeftButton and (self.rect_mode or shift):
            ev.accept()
            a = self.mapSceneToView(ev.buttonDownScenePos())
            b = self.mapSceneToView(ev.scenePos())
            self.rectDragged.emit(QRectF(a, b).normalized(), ev.isFinish(), ev.modifiers())
        else:
            super().mouseDragEvent(ev, axis)


class _ScaleBar(pg.ScaleBar):
    """A scale bar whose length is a round number of µm (or px) at any zoom, labelled with it."""

    FRACTION = 0.18  # of the visible width, roughly

    def __init__(self):
        super().__init__(size=10, width=6, brush="#ffffff", pen="#000000", offset=(-20, -20))
        self.pixel_size: float | None = None  # µm per pixel along x; None: unknown (px)
        self.length = 10.0  # in µm, or px when the pixel size is unknown
        self.text.setColor("#ffffff")
        self.text.fill = pg.mkBrush(0, 0, 0, 150)  # readable over bright objects

    def label(self) -> str:
        unit = "µm" if self.pixel_size else "px"
        return f"{self.length:g} {unit}"

    def updateBar(self):
        view = self.parentItem()
        if view is None:
            return
        (x0, x1), _ = view.viewRange()
        per_px = self.pixel_size or 1.0
        self.length = nice_length(max(x1 - x0, 1e-9) * self.FRACTION * per_px)
        self.size = self.length / per_px
        self.text.setText(self.label())
        super().updateBar()

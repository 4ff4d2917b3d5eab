"""The image view: the session's current image with channel layers (layers.py), the object
overlay (colours.py, tiles.py) and picking (objects.py), composed in one pyqtgraph widget."""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from svetlana.gui.session import Session
from svetlana.gui.widgets.image_view.colours import OverlayMixin
from svetlana.gui.widgets.image_view.graphics import (
    _ScaleBar,
    _ViewBox,
    auto_levels,
    channel_colours,
    ramp,
)
from svetlana.gui.widgets.image_view.layers import LayersMixin
from svetlana.gui.widgets.image_view.objects import ObjectsMixin
from svetlana.gui.widgets.image_view.tiles import _DIRECT_LUT_MAX, _Overlay

log = logging.getLogger(__name__)


class _LevelsHistogram(pg.HistogramLUTItem):
    """The contrast histogram without its colour bar: pyqtgraph draws lines from the levels to
    the (hidden) bar, which ran past the window's right edge."""

    def paint(self, p, *args) -> None:
        return None


class ImageView(LayersMixin, OverlayMixin, ObjectsMixin, QWidget):
    """Shows the session's current image with channels, contrast, Z slider and object overlays.

    Signals carry object ids of the current image (0 = background). About 45 methods in all,
    kept in one class on purpose: the layers (layers.py), the overlay (colours.py) and the
    picking (objects.py) draw on and read the same pyqtgraph items and arrays, so each concept
    is a mixin of its own module (~100–240 lines) rather than an object holding a back-reference.
    """

    objectClicked = Signal(int, object)  # id, Qt.KeyboardModifiers
    rectangleSelected = Signal(tuple, object)  # ids whose centre lies in the rectangle, modifiers
    hovered = Signal(int)
    hoverText = Signal(str)
    sliceChanged = Signal(int)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._image: np.ndarray | None = None  # (C, [Z], Y, X)
        self._labels: np.ndarray | None = None  # ([Z], Y, X), possibly dense-remapped
        self._ids_map: np.ndarray | None = None  # dense index -> real id, when remapped
        self._k = 1  # image pixels per shown pixel: >1 for a preview of a larger-than-memory image
        self._full_shape: tuple[int, ...] = ()
        self._table = None
        self._spacing: tuple[float, ...] | None = None
        self._name: str | None = None
        self._z = 0
        self._levels: list[tuple[float, float]] = []
        self._visible: list[bool] = []
        self._active = 0
        self._hover_id = 0
        self._highlight: tuple[int, ...] = ()

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#101010")
        self.viewbox = _ViewBox()
        self.graphics.addItem(self.viewbox, row=0, col=0)
        self.hist = _LevelsHistogram(orientation="vertical")
        self.hist.gradient.hide()
        self.hist.vb.setMenuEnabled(False)  # pyqtgraph's right-click menu, as on the image
        self.hist.setMaximumWidth(110)
        self.graphics.addItem(self.hist, row=0, col=1)
        self.hist.sigLevelsChanged.connect(self._on_hist_levels)
        self._channel_items: list[pg.ImageItem] = []
        self.overlay = _Overlay(self.viewbox)
        self._rubber = QGraphicsRectItem()
        pen = QPen(QColor("#ffe600"))
        pen.setCosmetic(True)
        pen.setWidth(1)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._rubber.setPen(pen)
        self._rubber.setZValue(20)
        self._rubber.hide()
        self.viewbox.addItem(self._rubber, ignoreBounds=True)
        self.scale_bar = _ScaleBar()
        self.scale_bar.setParentItem(self.viewbox)
        self.scale_bar.setZValue(30)
        self.scale_bar.hide()
        self.fixed_zoom = False  # annotation: one zoom per image (sizes compare by eye)
        self._typical_extent = 0.0

        self.viewbox.clicked.connect(self._on_click)
        self.viewbox.rectDragged.connect(self._on_rect)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

        # controls: active channel + auto contrast, Z slider
        self.channel_box = QComboBox()
        self.channel_box.setToolTip("Channel whose contrast the histogram on the right controls")
        self.channel_box.currentIndexChanged.connect(self._set_active_channel)
        self.auto_button = QPushButton("Auto contrast")
        self.auto_button.setToolTip("Contrast from the 0.5–99.8 percentiles of every channel")
        self.auto_button.clicked.connect(self.auto_contrast)
        self.z_label = QLabel("Z")
        self.z_slider = QSlider(Qt.Orientation.Horizontal)
        self.z_slider.setToolTip("Z slice (keys , and . or Up and Down)")
        self.z_slider.valueChanged.connect(self.set_z)
        self.z_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.z_value = QLabel("")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(QLabel("Contrast of"))
        bar.addWidget(self.channel_box)
        bar.addWidget(self.auto_button)
        bar.addStretch(1)
        self.legend = QLabel()
        self.legend.hide()  # shown while predictions are drawn (show_legend)
        bar.addWidget(self.legend)
        bar.addSpacing(16)
        bar.addWidget(self.z_label)
        bar.addWidget(self.z_slider, 4)
        bar.addWidget(self.z_value)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(bar)
        self._set_z_controls_visible(False)

        # Tiles are coalesced so that several changes in one event cost one recomputation each.
        self._dirty_regions: list[tuple[int, int, int, int]] | None = []
        self._pending_tiles: set[tuple[int, int]] = set()
        self._overlay_timer = QTimer(self)
        self._overlay_timer.setSingleShot(True)
        self._overlay_timer.setInterval(0)
        self._overlay_timer.timeout.connect(self._flush_overlay)

        session.projectChanged.connect(self._on_project)
        session.currentImageChanged.connect(lambda _name: self.reload())
        session.labelsChanged.connect(self._on_labels_changed)
        session.classesChanged.connect(self.refresh_overlay)
        session.selectionChanged.connect(self._on_selection)
        session.predictionsChanged.connect(self.refresh_overlay)
        session.viewOptionsChanged.connect(self.refresh_overlay)

    def _on_project(self) -> None:
        if self.session.project is None:
            self.clear()

    def clear(self) -> None:
        for item in self._channel_items:
            self.viewbox.removeItem(item)
        self._channel_items = []
        self.overlay.clear()
        self._image = self._labels = self._table = self._ids_map = None
        self._name = None
        self._spacing = None
        self.scale_bar.hide()
        self.channel_box.blockSignals(True)
        self.channel_box.clear()
        self.channel_box.blockSignals(False)
        self._set_z_controls_visible(False)
        self.legend.hide()

    def reload(self) -> None:
        """Show the session's current image (called when the image changes)."""
        loaded = self.session.loaded()
        if loaded is None:
            self.clear()
            return
        self._name = loaded.name
        self._k, self._image, labels = loaded.display()  # a large one: every k-th pixel
        self._full_shape = tuple(int(s) for s in loaded.labels.shape)
        self.overlay.k = self._k
        top = int(labels.max()) if labels.size else 0
        if top > _DIRECT_LUT_MAX:
            ids, dense = np.unique(labels, return_inverse=True)
            self._labels = dense.reshape(labels.shape).astype(np.int32)
            self._ids_map = ids.astype(np.int64)
        else:
            self._labels = labels
            self._ids_map = None
        self._table = loaded.table
        self._spacing = loaded.spacing
        self._typical_extent = self._median_extent()
        self.scale_bar.pixel_size = float(loaded.spacing[-1]) if loaded.spacing else None
        self.scale_bar.show()
        self.scale_bar.updateBar()
        n = self._image.shape[0]
        for item in self._channel_items:
            self.viewbox.removeItem(item)
        self._channel_items = []
        colours = channel_colours(n)
        for c in range(n):
            item = pg.ImageItem(axisOrder="row-major")
            item.setScale(self._k)
            item.setLookupTable(ramp(colours[c]))
            if c > 0:
                item.setCompositionMode(QPainter.CompositionMode.CompositionMode_Plus)
            item.setZValue(c)
            self.viewbox.addItem(item)
            self._channel_items.append(item)
        self._levels = [auto_levels(self._image[c]) for c in range(n)]
        self._visible = [True] * n
        self.channel_box.blockSignals(True)
        self.channel_box.clear()
        for c in range(n):
            self.channel_box.addItem(f"channel {c + 1}")
        self.channel_box.setCurrentIndex(0)
        self.channel_box.blockSignals(False)
        self._active = 0
        self.channel_box.setVisible(True)
        if self.ndim == 3:
            nz = self._labels.shape[0]
            self.z_slider.blockSignals(True)
            self.z_slider.setRange(0, nz - 1)
            self._z = nz // 2
            self.z_slider.setValue(self._z)
            self.z_slider.blockSignals(False)
            self._set_z_controls_visible(True)
        else:
            self._z = 0
            self._set_z_controls_visible(False)
        self._highlight = tuple(self.session.selection)
        self._show_slice()
        self._update_hist()
        self.fit()

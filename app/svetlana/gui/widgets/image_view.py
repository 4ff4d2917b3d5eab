"""The image with its object overlays: channels, contrast, Z, outlines, class colours, hover and picking.

~800 lines: one pyqtgraph view (image layers, outlines, class colours, prediction overlay,
selection, rectangle select, Z slices, contrast); its parts draw on the same items.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
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

from svetlana.core.annotations.final_class import final_classes, result_classes
from svetlana.core.wording import nice_length, object_size, size_word
from svetlana.gui.session import Session

log = logging.getLogger(__name__)

CHANNEL_COLOURS = ("#00ff00", "#ff00ff", "#00ffff", "#ffff00", "#ff4040", "#4080ff")
TILE = 256  # overlay tile edge: a label change recomputes only the tiles its object touches
# Tiles recoloured per turn of the event loop (the objects just changed first, then the visible
# ones): a whole 4096x4096 overlay (256 tiles of ~1.5 ms) is spread over turns, so a key
# pressed meanwhile waits a few ms, not the whole recolour.
TILES_PER_TURN = 4
# Above this many recoloured objects the whole overlay is redrawn (spread over turns): cheaper
# than finding the tiles of each object.
FEW_CHANGED = 256
# Largest label value indexed directly by the colour tables; beyond it labels are made dense once.
_DIRECT_LUT_MAX = 1 << 22

OUTLINE_RGBA = (80, 200, 255, 170)
SELECTED_RGBA = (255, 230, 0, 255)
SELECTED_FILL_ALPHA = 30
LABEL_FILL_ALPHA = 110
PRED_FILL_ALPHA = 45  # a model's prediction: lighter than a person's label, dashed outline
PRED_LINE_ALPHA = 190
LIVE_FILL_ALPHA = 45  # live predictions while labelling: lighter than a model's


# Every other pair of pixels along a diagonal: the gaps of a dashed outline.
_DASH = ((np.add.outer(np.arange(TILE), np.arange(TILE)) // 2) % 2).astype(bool)


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


class _Overlay:
    """Object overlay as a grid of RGBA tiles; colours come from per-label lookup tables."""

    def __init__(self, view: pg.ViewBox):
        self.view = view
        self.items: dict[tuple[int, int], pg.ImageItem] = {}
        self.labels: np.ndarray | None = None  # current 2D slice, dense ids when remapped
        self.edge: np.ndarray | None = None
        self.fill = np.zeros((1, 4), np.uint8)
        self.line = np.zeros((1, 4), np.uint8)
        self.dashed = np.zeros(1, bool)  # per label: outline drawn dashed (a model's class)
        self.k = 1  # image pixels per label pixel (a preview of a larger-than-memory image)
        self._built_k = 1

    def clear(self) -> None:
        for item in self.items.values():
            self.view.removeItem(item)
        self.items = {}
        self.labels = None
        self.edge = None

    def set_slice(self, labels2d: np.ndarray) -> None:
        shape_changed = (
            self.labels is None or self.labels.shape != labels2d.shape or self._built_k != self.k
        )
        self._built_k = self.k
        self.labels = labels2d
        self.edge = boundary_mask(labels2d)
        if shape_changed:
            for item in self.items.values():
                self.view.removeItem(item)
            self.items = {}
            h, w = labels2d.shape
            for ty in range(0, h, TILE):
                for tx in range(0, w, TILE):
                    item = pg.ImageItem(axisOrder="row-major")
                    item.setZValue(10)
                    item.setPos(tx * self.k, ty * self.k)
                    item.setScale(self.k)
                    self.view.addItem(item)
                    self.items[(ty, tx)] = item
        self.refresh()

    def tiles_of(self, region: tuple[int, int, int, int]) -> set[tuple[int, int]]:
        """Keys of the tiles that intersect ``region`` (y0, y1, x0, x1)."""
        if self.labels is None:
            return set()
        h, w = self.labels.shape
        k = self.k  # region in image pixels, tiles in (preview) label pixels
        y0, y1, x0, x1 = region[0] // k, -(-region[1] // k), region[2] // k, -(-region[3] // k)
        y0, x0 = max(0, y0), max(0, x0)
        y1, x1 = min(h, y1), min(w, x1)
        if y1 <= y0 or x1 <= x0:
            return set()
        return {
            (ty, tx)
            for ty in range((y0 // TILE) * TILE, y1, TILE)
            for tx in range((x0 // TILE) * TILE, x1, TILE)
        }

    def refresh(self, keys=None) -> None:
        """Recompute the given tiles (all when None) from the colour tables."""
        if self.labels is None:
            return
        for ty, tx in self.items if keys is None else keys:
            lab = self.labels[ty : ty + TILE, tx : tx + TILE]
            edge = self.edge[ty : ty + TILE, tx : tx + TILE]
            rgba = self.fill[lab]
            on_edge = lab[edge]
            rgba[edge] = self.line[on_edge]
            if len(self.dashed) == len(self.line) and self.dashed.any():
                gap = np.zeros_like(edge)
                gap[edge] = self.dashed[on_edge]
                gap &= _DASH[: lab.shape[0], : lab.shape[1]]
                rgba[gap] = self.fill[lab[gap]]
            self.items[(ty, tx)].setImage(rgba, autoLevels=False, levels=(0, 255))

    def set_visible(self, visible: bool) -> None:
        for item in self.items.values():
            item.setVisible(visible)


class ImageView(QWidget):
    """Shows the session's current image with channels, contrast, Z slider and object overlays.

    Signals carry object ids of the current image (0 = background).
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
        self.hist = pg.HistogramLUTItem(orientation="vertical")
        self.hist.gradient.hide()
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
        self.legend = QLabel(
            "<span style='font-weight:bold'>━━</span> your label &nbsp;·&nbsp; "
            "<span style='color:#888'>╍╍</span> predicted (lighter, dashed)"
        )
        self.legend.setToolTip(
            "In the overlay, a class you gave is filled and outlined solid in its colour; a\n"
            "class a model predicted is a lighter fill with a dashed outline."
        )
        self.legend.hide()  # shown while predictions are drawn
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

    # ---- state -------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return 0 if self._labels is None else self._labels.ndim

    @property
    def z(self) -> int:
        return self._z

    @property
    def n_slices(self) -> int:
        return self._labels.shape[0] if self.ndim == 3 else 1

    @property
    def channel_items(self) -> list[pg.ImageItem]:
        return list(self._channel_items)

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
        if loaded.extra.get("lazy"):  # larger than memory: every k-th pixel (stored preview)
            from svetlana.core.objects.lazy import preview_pair

            self._k, self._image, labels = preview_pair(loaded)
        else:
            self._k, self._image, labels = 1, loaded.image, loaded.labels
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

    def fit(self) -> None:
        """Show the whole image."""
        if self._labels is None:
            return
        h, w = self._full_shape[-2:]
        self.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def _set_z_controls_visible(self, on: bool) -> None:
        for w in (self.z_label, self.z_slider, self.z_value):
            w.setVisible(on)

    def _slice(self, array: np.ndarray) -> np.ndarray:
        return array[self._z] if array.ndim == 3 else array

    def _show_slice(self) -> None:
        if self._image is None:
            return
        for c, item in enumerate(self._channel_items):
            item.setImage(self._slice(self._image[c]), autoLevels=False, levels=self._levels[c])
            item.setVisible(self._visible[c])
        self.overlay.fill, self.overlay.line = self._colour_tables()
        self.overlay.set_slice(self._slice(self._labels))  # every tile, now
        self._pending_tiles.clear()
        self._apply_overlay_visibility()
        if self.ndim == 3:
            self.z_value.setText(f"{self._z + 1} / {self.n_slices}")

    # ---- channels and contrast ------------------------------------------------------------
    def set_channel_visible(self, channel: int, visible: bool) -> None:
        if 0 <= channel < len(self._channel_items):
            self._visible[channel] = visible
            self._channel_items[channel].setVisible(visible)

    def channel_visible(self, channel: int) -> bool:
        return self._visible[channel]

    def levels(self, channel: int) -> tuple[float, float]:
        return self._levels[channel]

    def set_levels(self, channel: int, lo: float, hi: float) -> None:
        self._levels[channel] = (float(lo), float(hi))
        self._channel_items[channel].setLevels((lo, hi))
        if channel == self._active:
            self._update_hist()

    def auto_contrast(self) -> None:
        if self._image is None:
            return
        for c in range(self._image.shape[0]):
            self.set_levels(c, *auto_levels(self._image[c]))

    def _set_active_channel(self, index: int) -> None:
        if 0 <= index < len(self._channel_items):
            self._active = index
            self._update_hist()

    def _update_hist(self) -> None:
        if not self._channel_items:
            return
        item = self._channel_items[self._active]
        hx, hy = item.getHistogram()
        self.hist.blockSignals(True)
        if hx is not None:
            self.hist.plot.setData(hx, hy)
            colour = channel_colours(len(self._channel_items))[self._active]
            self.hist.plot.setPen(colour)
        self.hist.setLevels(*self._levels[self._active])
        self.hist.blockSignals(False)

    def _on_hist_levels(self) -> None:
        if not self._channel_items:
            return
        lo, hi = self.hist.getLevels()
        self._levels[self._active] = (float(lo), float(hi))
        self._channel_items[self._active].setLevels((lo, hi))

    # ---- Z ----------------------------------------------------------------------------------
    def set_z(self, z: int) -> None:
        if self.ndim != 3:
            return
        z = int(np.clip(z, 0, self.n_slices - 1))
        if z == self._z and self.z_slider.value() == z:
            return
        self._z = z
        if self.z_slider.value() != z:
            self.z_slider.blockSignals(True)
            self.z_slider.setValue(z)
            self.z_slider.blockSignals(False)
        self._show_slice()
        self.sliceChanged.emit(z)

    def step_z(self, step: int) -> None:
        self.set_z(self._z + step)

    # ---- overlay colours ------------------------------------------------------------------------
    def _lut_size(self) -> int:
        if self._labels is None:
            return 1
        if self._ids_map is not None:
            return len(self._ids_map)
        return int(self._table.ids.max()) + 1 if len(self._table) else 1

    def _index_of(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self._ids_map is None:
            return ids
        pos = np.clip(np.searchsorted(self._ids_map, ids), 0, len(self._ids_map) - 1)
        return pos[self._ids_map[pos] == ids]

    def _colour_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Fill and outline colour per label value (row 0 = background, transparent); which
        outlines are dashed goes to the overlay (a model's class: light fill, dashed outline;
        a person's label: stronger fill, solid outline)."""
        n = self._lut_size()
        fill = np.zeros((n, 4), np.uint8)
        line = np.zeros((n, 4), np.uint8)
        dashed = np.zeros(n, bool)
        self.overlay.dashed = dashed
        project, name = self.session.project, self._name
        if project is None or name is None:
            return fill, line
        opts = self.session.view_options
        if opts.get("outlines", True):
            line[1:] = OUTLINE_RGBA
        colours = {c.name: hex_rgb(c.colour) for c in project.annotations.classes}
        model_drawn = False
        pred = self.session.predictions.get(name)
        live = opts.get("live")  # gui.live.LivePreview: drawn unless a model's predictions are
        if (
            live is not None
            and live.image == name
            and (pred is None or not opts.get("predictions", True))
        ):
            rgb = np.array([colours.get(c, (200, 200, 200)) for c in live.class_names], np.uint8)
            ok = live.ids < n if self._ids_map is None else np.isin(live.ids, self._ids_map)
            rows = self._index_of(live.ids[ok])
            fill[rows, :3] = rgb[live.predicted[ok]]
            fill[rows, 3] = LIVE_FILL_ALPHA
            model_drawn = True
        if pred is not None and opts.get("predictions", True) and len(pred.ids):
            # The overlay shows what an export writes: the final class (a label wins).
            final = final_classes(
                pred,
                project.annotations.for_image(name),
                result_classes(pred.class_names, project.annotations.class_names),
            )
            conf = pred.confidence
            keep = conf <= float(opts.get("max_confidence", 1.0)) + 1e-9
            idx = final.index
            rgb = np.array([colours.get(c, (200, 200, 200)) for c in final.class_names], np.uint8)
            sel = np.flatnonzero(keep)
            rows = self._index_of(pred.ids[sel])
            if len(rows) == len(sel):
                fill[rows, :3] = rgb[idx[sel] - 1]
                fill[rows, 3] = PRED_FILL_ALPHA
                line[rows, :3] = rgb[idx[sel] - 1]
                line[rows, 3] = PRED_LINE_ALPHA
                dashed[rows] = True
                model_drawn = True
        self.legend.setVisible(model_drawn)
        if opts.get("labels", True):
            labels = project.annotations.for_image(name)
            if labels:
                ids = np.fromiter(labels.keys(), np.int64, len(labels))
                rgb = np.array(
                    [colours.get(lab.class_name, (200, 200, 200)) for lab in labels.values()],
                    np.uint8,
                )
                ok = ids < n if self._ids_map is None else np.isin(ids, self._ids_map)
                rows = self._index_of(ids[ok])
                fill[rows, :3] = rgb[ok]
                fill[rows, 3] = LABEL_FILL_ALPHA
                line[rows, :3] = rgb[ok]
                line[rows, 3] = 255
                dashed[rows] = False
        hidden = opts.get("hidden_ids") or ()
        if hidden:
            rows = self._index_of(np.fromiter(hidden, np.int64))
            rows = rows[rows < n]
            # "removed" objects (keep-classes preview) are darkened, not made invisible:
            # the user sees what the filtered mask will lose.
            fill[rows] = (0, 0, 0, 190)
            line[rows] = (110, 110, 110, 255)
            dashed[rows] = False
        if self._highlight:
            rows = self._index_of(self._highlight)
            rows = rows[(rows > 0) & (rows < n)]
            line[rows] = SELECTED_RGBA
            dashed[rows] = False
            fill[rows, 3] = np.maximum(fill[rows, 3], SELECTED_FILL_ALPHA)
            blank = fill[rows, 3] == 0
            fill[rows[blank], :3] = SELECTED_RGBA[:3]
        return fill, line

    def _regions_of(self, ids) -> list[tuple[int, int, int, int]]:
        """Bounding box (y0, y1, x0, x1) of each of these objects."""
        if self._table is None or not len(ids):
            return []
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[self._table.contains(ids)]
        if not len(ids):
            return []
        b = self._table.bbox[self._table.rows(ids)]
        nd = self._table.ndim
        cols = [nd - 2, 2 * nd - 2, nd - 1, 2 * nd - 1]
        return [tuple(int(v) for v in row) for row in b[:, cols]]

    def _update_objects(self, ids) -> None:
        """Recolour a few objects: only their rows of the colour tables and the tiles they touch."""
        regions = self._regions_of(ids)
        if not regions:
            return
        fill, line = self._colour_tables()
        self.overlay.fill, self.overlay.line = fill, line
        if self._dirty_regions is not None:
            self._dirty_regions.extend(regions)
        self._overlay_timer.start()

    def refresh_overlay(self, *_args) -> None:
        """Recolour after a change of classes, predictions or view options: only the tiles of
        the objects whose colours changed (a live preview changes a few objects per refit),
        everything when most changed."""
        if self._labels is None:
            return
        fill, line = self._colour_tables()
        old_fill, old_line = self.overlay.fill, self.overlay.line
        if self._dirty_regions is not None and old_fill.shape == fill.shape:
            changed = np.flatnonzero((old_fill != fill).any(1) | (old_line != line).any(1))
            changed = changed[changed > 0]
            if len(changed) <= min(len(fill) // 4, FEW_CHANGED):
                self.overlay.fill, self.overlay.line = fill, line
                if len(changed):
                    ids = changed if self._ids_map is None else self._ids_map[changed]
                    self._dirty_regions.extend(self._regions_of(ids))
                    self._overlay_timer.start()
                self._apply_overlay_visibility()
                return
        self.overlay.fill, self.overlay.line = fill, line
        self._dirty_regions = None  # everything
        self._overlay_timer.start()
        self._apply_overlay_visibility()

    def _flush_overlay(self, everything: bool = False) -> None:
        """Recolour the tiles changed so far: at most TILES_PER_TURN of them (the visible ones
        first) in this turn of the event loop, the rest in the next turns."""
        regions, self._dirty_regions = self._dirty_regions, []
        fresh: set[tuple[int, int]] = set()  # the objects just changed (a key's): first
        if regions is None:
            self._pending_tiles = set(self.overlay.items)
        else:
            for r in regions:
                fresh |= self.overlay.tiles_of(r)
            self._pending_tiles |= fresh
        self._pending_tiles &= set(self.overlay.items)  # tiles of a slice shown since are gone
        if not self._pending_tiles:
            return
        if everything:
            now = sorted(self._pending_tiles)
        else:
            x0, y0, w, h = self.viewbox.viewRect().getRect()
            seen = self.overlay.tiles_of((int(y0), int(y0 + h) + 1, int(x0), int(x0 + w) + 1))
            order = sorted(self._pending_tiles, key=lambda t: (t not in fresh, t not in seen, t))
            now = order[: max(TILES_PER_TURN, len(fresh))]
        self.overlay.refresh(now)
        self._pending_tiles.difference_update(now)
        if self._pending_tiles:
            self._overlay_timer.start()

    def flush(self) -> None:
        """Apply every pending overlay change now (tests and benchmarks)."""
        if self._overlay_timer.isActive() or self._pending_tiles:
            self._overlay_timer.stop()
            self._flush_overlay(everything=True)

    def _apply_overlay_visibility(self) -> None:
        opts = self.session.view_options
        on = (
            opts.get("outlines", True)
            or opts.get("labels", True)
            or opts.get("predictions", True)
            or bool(self._highlight)
        )
        self.overlay.set_visible(on)

    def _on_labels_changed(self, keys) -> None:
        if self._labels is None:
            return
        if keys is None:
            self.refresh_overlay()
            return
        ids = [o for (im, o) in keys if im == self._name]
        if ids:
            self._update_objects(ids)

    def _on_selection(self, ids) -> None:
        old = self._highlight
        self._highlight = tuple(int(i) for i in ids)
        changed = set(old) ^ set(self._highlight)
        if changed and self._labels is not None:
            self._update_objects(sorted(changed))
        self._apply_overlay_visibility()

    # ---- sizes -------------------------------------------------------------------------------------
    def _median_extent(self) -> float:
        """The typical (median) object's larger side in the YX plane, in pixels."""
        table = self._table
        if table is None or not len(table):
            return 0.0
        nd = table.ndim
        b = table.bbox
        extent = np.maximum(b[:, 2 * nd - 2] - b[:, nd - 2], b[:, 2 * nd - 1] - b[:, nd - 1])
        return float(np.median(extent))

    def object_size(self, obj: int) -> str | None:
        """``"area 123 µm²"`` (``"volume …"`` in 3D) of an object of the current image, or None."""
        table = self._table
        if table is None or obj <= 0 or not table.contains(obj)[0]:
            return None
        pixels = float(table.area[int(table.rows(obj)[0])])
        return f"{size_word(table.ndim)} {object_size(pixels, table.ndim, self._spacing)}"

    def set_fixed_zoom(self, on: bool) -> None:
        """Annotation zoom: one per image from the median object size (True) or per object."""
        self.fixed_zoom = bool(on)

    # ---- navigation -----------------------------------------------------------------------------
    def focus_object(self, obj: int, context: float = 4.0, min_size: float = 64.0) -> None:
        """Centre the view on an object with its neighbourhood (``context`` times its size).

        With ``fixed_zoom`` the size is the image's median object size, the same for every
        object, so that a large object looks large (an object too big for it still fits).
        """
        if self._table is None or not self._table.contains(obj)[0]:
            return
        row = int(self._table.rows(obj)[0])
        nd = self._table.ndim
        b = self._table.bbox[row]
        y0, x0, y1, x1 = b[nd - 2], b[nd - 1], b[2 * nd - 2], b[2 * nd - 1]
        cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
        extent = float(max(y1 - y0, x1 - x0))
        if self.fixed_zoom and self._typical_extent > 0:
            half = max(min_size, context * self._typical_extent, 1.2 * extent) / 2.0
        else:
            half = max(min_size, context * extent) / 2.0
        if nd == 3:
            self.set_z(int(round(self._table.centroid[row, 0])))
        self.viewbox.setRange(
            xRange=(cx - half, cx + half), yRange=(cy - half, cy + half), padding=0
        )

    def object_at(self, x: float, y: float) -> int:
        """Object id under image coordinates (x, y) on the current slice; 0 for background."""
        if self._labels is None:
            return 0
        lab = self._slice(self._labels)
        yi, xi = int(np.floor(y / self._k)), int(np.floor(x / self._k))
        if not (0 <= yi < lab.shape[0] and 0 <= xi < lab.shape[1]):
            return 0
        v = int(lab[yi, xi])
        return int(self._ids_map[v]) if self._ids_map is not None else v

    def ids_in_rect(self, rect: QRectF) -> tuple[int, ...]:
        """Objects of the current slice whose centre lies inside the rectangle."""
        if self._labels is None or self._table is None:
            return ()
        lab = self._slice(self._labels)
        h, w = lab.shape
        k = self._k
        y0, y1 = max(0, int(np.floor(rect.top() / k))), min(h, int(np.ceil(rect.bottom() / k)))
        x0, x1 = max(0, int(np.floor(rect.left() / k))), min(w, int(np.ceil(rect.right() / k)))
        if y1 <= y0 or x1 <= x0:
            return ()
        vals = np.unique(lab[y0:y1, x0:x1])
        vals = vals[vals != 0]
        ids = self._ids_map[vals] if self._ids_map is not None else vals.astype(np.int64)
        if not len(ids):
            return ()
        c = self._table.centroid[self._table.rows(ids)]
        cy, cx = c[:, -2], c[:, -1]
        inside = (
            (cy >= rect.top()) & (cy <= rect.bottom()) & (cx >= rect.left()) & (cx <= rect.right())
        )
        return tuple(int(i) for i in ids[inside])

    def map_image_to_widget(self, x: float, y: float):
        """Widget (self.graphics) coordinates of an image point — for tests and tooltips."""
        from PySide6.QtCore import QPointF

        scene = self.viewbox.mapViewToScene(QPointF(x, y))
        return self.graphics.mapFromScene(scene)

    # ---- mouse -----------------------------------------------------------------------------------
    def _on_click(self, x: float, y: float, modifiers) -> None:
        self.objectClicked.emit(self.object_at(x, y), modifiers)

    def _on_rect(self, rect: QRectF, finished: bool, modifiers) -> None:
        if finished:
            self._rubber.hide()
            self.rectangleSelected.emit(self.ids_in_rect(rect), modifiers)
        else:
            self._rubber.setRect(rect)
            self._rubber.show()

    def _on_mouse_moved(self, scene_pos) -> None:
        if self._labels is None or not self.viewbox.sceneBoundingRect().contains(scene_pos):
            return
        p = self.viewbox.mapSceneToView(scene_pos)
        obj = self.object_at(p.x(), p.y())
        if obj != self._hover_id:
            self._hover_id = obj
            self.hovered.emit(obj)
        self.hoverText.emit(self.describe(obj, p.x(), p.y()))

    def describe(self, obj: int, x: float | None = None, y: float | None = None) -> str:
        """Status-bar text for an object: id, class, prediction and confidence."""
        where = ""
        if x is not None and y is not None:
            where = (
                f"x {int(x)}, y {int(y)}" + (f", z {self._z}" if self.ndim == 3 else "") + "  ·  "
            )
        if obj == 0:
            return where + "background"
        text = f"{where}object {obj}"
        size = self.object_size(obj)
        if size:
            text += f"  ·  {size}"
        project = self.session.project
        if project is not None and self._name is not None:
            lab = project.annotations.get(self._name, obj)
            text += f"  ·  class: {lab.class_name}" if lab else "  ·  not labelled"
            if lab is not None and lab.source != "manual":
                text += f" ({lab.source})"
            pred = self.session.predictions.get(self._name)
            if pred is not None and pred.table.contains(obj)[0]:
                r = int(pred.table.rows(obj)[0])
                k = int(pred.class_index[r]) - 1
                text += f"  ·  predicted: {pred.class_names[k]} ({pred.confidence[r]:.2f})"
                if self.session.prediction_model:  # predictions are shown with their model
                    text += f" by {self.session.prediction_model}"
        return text

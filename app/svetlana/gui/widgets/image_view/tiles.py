"""The object overlay as a grid of RGBA tiles coloured from per-label lookup tables: a label
change recomputes only the tiles its object touches."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from svetlana.gui.widgets.image_view.graphics import boundary_mask

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

    def rects_of(self, region: tuple[int, int, int, int]) -> dict[tuple[int, int], tuple]:
        """The part of ``region`` (y0, y1, x0, x1, image pixels) in each tile it touches, in
        that tile's own (label) pixels."""
        out = {}
        k = self.k
        y0, y1 = region[0] // k, -(-region[1] // k)
        x0, x1 = region[2] // k, -(-region[3] // k)
        for ty, tx in self.tiles_of(region):
            out[(ty, tx)] = (
                max(y0, ty) - ty,
                min(y1, ty + TILE) - ty,
                max(x0, tx) - tx,
                min(x1, tx + TILE) - tx,
            )
        return out

    def _colours(self, lab: np.ndarray, edge: np.ndarray, dash: np.ndarray) -> np.ndarray:
        """RGBA of these label pixels: the fill, the outline on edges (dashed where asked)."""
        rgba = self.fill[lab]
        on_edge = lab[edge]
        rgba[edge] = self.line[on_edge]
        if len(self.dashed) == len(self.line) and self.dashed.any():
            gap = np.zeros_like(edge)
            gap[edge] = self.dashed[on_edge]
            gap &= dash
            rgba[gap] = self.fill[lab[gap]]
        return rgba

    def refresh(self, keys=None) -> None:
        """Recompute the given tiles (all when None) from the colour tables."""
        if self.labels is None:
            return
        for ty, tx in self.items if keys is None else keys:
            lab = self.labels[ty : ty + TILE, tx : tx + TILE]
            edge = self.edge[ty : ty + TILE, tx : tx + TILE]
            rgba = self._colours(lab, edge, _DASH[: lab.shape[0], : lab.shape[1]])
            self.items[(ty, tx)].setImage(rgba, autoLevels=False, levels=(0, 255))

    def refresh_rects(self, rects) -> None:
        """Recompute only these parts of tiles ((tile, rect) pairs, as ``rects_of`` gives), in
        place: a few objects' boxes cost a few thousand pixels instead of whole tiles (a class
        key: ~1.5 ms a tile)."""
        if self.labels is None:
            return
        for (ty, tx), (y0, y1, x0, x1) in rects:
            item = self.items.get((ty, tx))
            if item is None or item.image is None or y1 <= y0 or x1 <= x0:
                continue
            lab = self.labels[ty + y0 : ty + y1, tx + x0 : tx + x1]
            edge = self.edge[ty + y0 : ty + y1, tx + x0 : tx + x1]
            item.image[y0:y1, x0:x1] = self._colours(lab, edge, _DASH[y0:y1, x0:x1])
            item.setImage(item.image, autoLevels=False, levels=(0, 255))

    def set_visible(self, visible: bool) -> None:
        for item in self.items.values():
            item.setVisible(visible)

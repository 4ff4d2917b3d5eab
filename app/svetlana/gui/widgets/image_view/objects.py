"""Objects in the view: which one is under the mouse or in a rectangle, the hover text, their
sizes, and centring the view on one."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from svetlana.core.wording import object_size, size_word


class ObjectsMixin:
    """Picking, hover, sizes and focus of ImageView (shares its state: ``_table``, ...)."""

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

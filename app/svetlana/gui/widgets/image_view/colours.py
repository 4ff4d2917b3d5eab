"""The overlay's colours: outlines, a person's labels (solid), a model's predictions (lighter,
dashed), the live preview, hidden objects and the current object's highlight; which tiles to
recolour after a change, a few per turn of the event loop."""

from __future__ import annotations

import numpy as np

from svetlana.core.annotations.final_class import final_classes, result_classes
from svetlana.gui.widgets.image_view.graphics import hex_rgb
from svetlana.gui.widgets.image_view.tiles import (
    FEW_CHANGED,
    LABEL_FILL_ALPHA,
    LIVE_FILL_ALPHA,
    OUTLINE_RGBA,
    PRED_FILL_ALPHA,
    PRED_LINE_ALPHA,
    SELECTED_FILL_ALPHA,
    SELECTED_RGBA,
    TILES_PER_TURN,
)


class OverlayMixin:
    """Colour tables and tile scheduling of ImageView (shares its state: ``_labels``, ...)."""

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

    def show_legend(self, model: bool, live: bool) -> None:
        """The legend under the image, while predictions are drawn: what each look means."""
        self.legend.setVisible(model or live)
        parts = ["<span style='font-weight:bold'>━━</span> your label"]
        tips = ["In the overlay, a class you gave is filled and outlined solid in its colour;"]
        if model:
            parts.append("<span style='color:#888'>╍╍</span> predicted (lighter, dashed)")
            tips.append("a class a model predicted is a lighter fill with a dashed outline;")
        if live:
            parts.append("live prediction (light fill)")
            tips.append("the live prediction while you label is a light fill of its class;")
        if self.session.view_options.get("outlines", True):
            blue = "rgb({},{},{})".format(*OUTLINE_RGBA[:3])
            parts.append(f"<span style='color:{blue}'>━━</span> not labelled")
            tips.append("an object without a label (nor a model's class) is outlined in blue.")
        self.legend.setText(" &nbsp;·&nbsp; ".join(parts))
        self.legend.setToolTip("\n".join(tips))

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
        model_drawn = live_drawn = False
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
            live_drawn = True
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
        self.show_legend(model=model_drawn, live=live_drawn)
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
        if regions is None:
            self._pending_tiles = set(self.overlay.items)
        elif regions:  # the objects just changed (a key's): their boxes now, in place
            self.overlay.refresh_rects(
                {(tile, rect) for r in regions for tile, rect in self.overlay.rects_of(r).items()}
            )
        self._pending_tiles &= set(self.overlay.items)  # tiles of a slice shown since are gone
        if not self._pending_tiles:
            return
        if everything:
            now = sorted(self._pending_tiles)
        else:
            x0, y0, w, h = self.viewbox.viewRect().getRect()
            seen = self.overlay.tiles_of((int(y0), int(y0 + h) + 1, int(x0), int(x0 + w) + 1))
            order = sorted(self._pending_tiles, key=lambda t: (t not in seen, t))
            now = order[:TILES_PER_TURN]
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

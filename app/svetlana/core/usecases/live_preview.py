"""What the live preview measures on a big image: the objects in view, the labelled ones and a
fixed sample spread over the image (for the counts), never the whole slide.

Up to ``FULL_MAX_OBJECTS`` objects an image is measured whole once (cached in the bundle), as
before. Above, each refit measures only the objects it has not measured yet among: the objects
whose box meets the visible region (at most ``VIEW_MAX_OBJECTS``, a random subset beyond), the
labelled objects, and the objects of ``SAMPLE_TILES`` tiles of ``SAMPLE_TILE`` pixels at fixed
random places (the counts are estimated from them). Each group is measured on a crop around its
objects, with the whole image's channel ranges, so the cost grows with the objects in view, not
with the image: a first tint after measuring ~1,000 objects (~0.3 s on 2 cores), then only
the objects a pan brings into view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from svetlana.core.jobs import CancelToken
from svetlana.core.objects.measurements import Measurements, measure_objects

FULL_MAX_OBJECTS = 20_000  # up to this many objects: the whole image, measured once
VIEW_MAX_OBJECTS = 4_000  # objects in view measured per refit at most
SAMPLE_TILES = 4
SAMPLE_TILE = 256  # pixels (last two axes) of each sample tile
_MARGIN = 24  # pixels of context around a crop (ring and texture filters)


def bounded(n_objects: int) -> bool:
    """Whether the preview of an image with this many objects is bounded to the view."""
    return n_objects > FULL_MAX_OBJECTS


def in_view(table, region, limit: int = VIEW_MAX_OBJECTS, seed: int = 0) -> np.ndarray:
    """Ids of the objects whose box meets ``region`` ((y0, y1), (x0, x1)) in the last two
    axes, at most ``limit`` (a seeded random subset beyond)."""
    (y0, y1), (x0, x1) = region
    nd = table.ndim
    box = table.bbox
    lo_y, lo_x, hi_y, hi_x = box[:, nd - 2], box[:, nd - 1], box[:, 2 * nd - 2], box[:, 2 * nd - 1]
    hit = (hi_y > y0) & (lo_y < y1) & (hi_x > x0) & (lo_x < x1)
    ids = table.ids[hit]
    if ids.size > limit:
        pick = np.random.default_rng(seed).choice(ids.size, limit, replace=False)
        ids = np.sort(ids[pick])
    return ids


def sample_ids(table, seed: int = 0) -> np.ndarray:
    """The objects inside ``SAMPLE_TILES`` tiles at fixed (seeded) random places: a sample for
    the counts, the same at every refit (so measured once)."""
    nd = table.ndim
    if len(table.ids) == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    centres = table.centroid[rng.choice(len(table.ids), SAMPLE_TILES, replace=False)]
    half = SAMPLE_TILE // 2
    picked = []
    box = table.bbox
    for c in centres:
        y, x = float(c[nd - 2]), float(c[nd - 1])
        inside = (
            (box[:, nd - 2] >= y - half) & (box[:, 2 * nd - 2] <= y + half)
            & (box[:, nd - 1] >= x - half) & (box[:, 2 * nd - 1] <= x + half)
        )  # fmt: skip
        picked.append(table.ids[inside])
    return np.unique(np.concatenate(picked))


@dataclass
class PreviewStore:
    """The measurements made so far of one image's objects (rows added, never recomputed)."""

    ranges: list | None = None  # the channels' ranges (measurements.channel_ranges)
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    values: np.ndarray | None = None

    def missing(self, ids: np.ndarray) -> np.ndarray:
        return ids[~np.isin(ids, self.ids)]

    def add(self, m: Measurements) -> None:
        if len(m) == 0:
            return
        if self.values is None:
            self.names, self.units, self.values = m.names, m.units, m.values
            self.ids = m.ids
            return
        ids = np.concatenate([self.ids, m.ids])
        values = np.concatenate([self.values, m.values])
        order = np.argsort(ids, kind="stable")
        self.ids, self.values = ids[order], values[order]

    def rows(self, ids: np.ndarray) -> Measurements:
        """The stored measurements of ``ids`` (all stored), ids ascending."""
        ids = np.unique(ids)
        pos = np.searchsorted(self.ids, ids)
        values = self.values[pos] if self.values is not None else np.zeros((0, 0), np.float32)
        return Measurements(ids, self.names, self.units, values)


def measure_groups(
    image, labels, table, groups: list[np.ndarray], store: PreviewStore, spacing=None,
    cancel: CancelToken | None = None,
) -> int:  # fmt: skip
    """Measure the objects of each group not in ``store`` yet, on a crop around them (last two
    axes), and add them; returns how many were measured."""
    done = 0
    for group in groups:
        todo = store.missing(np.unique(np.asarray(group, np.int64)))
        for part in _clusters(table, todo):
            if cancel is not None:
                cancel.raise_if_cancelled()
            store.add(_measure_crop(image, labels, table, part, store.ranges, spacing))
            done += part.size
    return done


def _clusters(table, ids: np.ndarray, span: int = 512) -> list[np.ndarray]:
    """``ids`` cut into groups whose boxes fit in ``span`` pixels (a crop each): scattered
    labelled objects are not measured on one crop the size of the slide."""
    if ids.size == 0:
        return []
    nd = table.ndim
    rows = np.searchsorted(table.ids, ids)
    cy = table.centroid[rows, nd - 2] // span
    cx = table.centroid[rows, nd - 1] // span
    key = cy * 1e6 + cx
    return [ids[key == k] for k in np.unique(key)]


def _measure_crop(image, labels, table, ids, ranges, spacing) -> Measurements:
    from svetlana.core.objects.lazy import _read

    nd = table.ndim
    rows = np.searchsorted(table.ids, ids)
    box = table.bbox[rows]
    shape = labels.shape
    y0 = max(0, int(box[:, nd - 2].min()) - _MARGIN)
    x0 = max(0, int(box[:, nd - 1].min()) - _MARGIN)
    y1 = min(shape[-2], int(box[:, 2 * nd - 2].max()) + _MARGIN)
    x1 = min(shape[-1], int(box[:, 2 * nd - 1].max()) + _MARGIN)
    region = (slice(None),) * (nd - 2) + (slice(y0, y1), slice(x0, x1))
    lab = np.asarray(_read(labels, region))
    img = np.asarray(_read(image, (slice(None), *region)))
    return measure_objects(img, lab, ids=ids, spacing=spacing, ranges=ranges)


def preview_measurements(
    image, labels, table, region, labelled: np.ndarray, store: PreviewStore, seed: int = 0,
    spacing=None, cancel: CancelToken | None = None,
) -> tuple[Measurements, np.ndarray]:  # fmt: skip
    """The measurements one refit of a bounded preview uses: the objects in ``region`` (None:
    none), the ``labelled`` ones and the counting sample (measuring only those not in ``store``
    yet); and the sample's ids."""
    if store.ranges is None:  # the whole image's scale, from a subsample (once per image)
        from svetlana.core.objects.measurements import channel_ranges

        store.ranges = channel_ranges(image)
    view = in_view(table, region, seed=seed) if region is not None else np.zeros(0, np.int64)
    labelled = np.intersect1d(np.asarray(labelled, np.int64), table.ids)
    sample = sample_ids(table, seed)
    measure_groups(image, labels, table, [view, labelled, sample], store, spacing, cancel)
    return store.rows(np.concatenate([view, labelled, sample])), sample

"""Per-object table (ids, bounding boxes, centroids, areas, mean intensities) from a label mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svetlana.core.errors import InputError


@dataclass(frozen=True, eq=False)
class ObjectTable:
    """One row per object, rows sorted by id."""

    ids: np.ndarray  # (N,) int64, ascending
    bbox: np.ndarray  # (N, 2*nd) int64: mins then exclusive maxes, like regionprops
    centroid: np.ndarray  # (N, nd) float64, (y, x) or (z, y, x)
    area: np.ndarray  # (N,) int64 pixel/voxel count
    mean_intensity: np.ndarray  # (N, C) float64; C = 0 without an image

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def ndim(self) -> int:
        return int(self.centroid.shape[1])

    def contains(self, ids: np.ndarray | list[int] | int) -> np.ndarray:
        """Boolean per id: is it an object of this mask?"""
        query = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(self) == 0:
            return np.zeros(query.shape, dtype=bool)
        pos = np.clip(np.searchsorted(self.ids, query), 0, len(self) - 1)
        return self.ids[pos] == query

    def rows(self, ids: np.ndarray | list[int] | int) -> np.ndarray:
        """Row index for each id; unknown ids raise InputError listing them."""
        query = np.asarray(ids, dtype=np.int64).reshape(-1)
        known = self.contains(query)
        if not known.all():
            missing = query[~known]
            shown = ", ".join(str(int(i)) for i in missing[:10])
            more = f" and {missing.size - 10} more" if missing.size > 10 else ""
            raise InputError(f"unknown object id(s): {shown}{more}")
        return np.searchsorted(self.ids, query).astype(np.intp)


def compute_objects(labels: np.ndarray, image: np.ndarray | None = None) -> ObjectTable:
    """Vectorised per-object measurements; ``image`` is channel-first ``(C, *labels.shape)``."""
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"mask must be 2D or 3D, found shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise InputError(f"mask must contain integer labels, found {labels.dtype}")
    if image is not None:
        image = np.asarray(image)
        if image.ndim != labels.ndim + 1 or image.shape[1:] != labels.shape:
            raise InputError(
                f"image shape {image.shape} does not match mask shape {labels.shape} (channel first)"
            )
    nd = labels.ndim
    nchan = 0 if image is None else image.shape[0]
    flat = labels.reshape(-1)
    if flat.size and flat.min() < 0:
        raise InputError("mask contains negative values")
    top = int(flat.max()) if flat.size else 0

    # Dense relabelling only when ids are sparse and huge; bincount needs max id + 1 bins.
    if top > 4 * flat.size + 1024:
        ids_all, dense = np.unique(flat, return_inverse=True)
        dense = dense.reshape(-1)
        if ids_all[0] != 0:
            ids_all = np.concatenate([[0], ids_all])
            dense = dense + 1
        lut_ids = ids_all.astype(np.int64)
        flat = dense
        top = int(lut_ids.size - 1)
    else:
        lut_ids = None

    counts = np.bincount(flat, minlength=top + 1)
    present = np.flatnonzero(counts)
    present = present[present != 0]
    n = present.size
    ids = (lut_ids[present] if lut_ids is not None else present).astype(np.int64)
    area = counts[present].astype(np.int64)
    if n == 0:
        return ObjectTable(
            ids,
            np.zeros((0, 2 * nd), np.int64),
            np.zeros((0, nd), np.float64),
            area,
            np.zeros((0, nchan), np.float64),
        )

    from scipy import ndimage

    # find_objects wants a signed integer array; intp also spares bincount a conversion per call.
    flat = flat.astype(np.intp, copy=False)
    work = flat.reshape(labels.shape)
    slices = ndimage.find_objects(work, max_label=top)
    starts = np.array([[s.start for s in slices[lab - 1]] for lab in present], np.int64)
    stops = np.array([[s.stop for s in slices[lab - 1]] for lab in present], np.int64)
    bbox = np.concatenate([starts, stops], axis=1)

    # Centroids: per-axis coordinate sums by weighted bincount (coordinates broadcast, not unravelled).
    centroid = np.empty((n, nd), np.float64)
    for axis in range(nd):
        view = [1] * nd
        view[axis] = labels.shape[axis]
        coord = np.arange(labels.shape[axis], dtype=np.float64).reshape(view)
        weights = np.broadcast_to(coord, labels.shape).reshape(-1)
        sums = np.bincount(flat, weights=weights, minlength=top + 1)
        centroid[:, axis] = sums[present] / area
    mean = np.empty((n, nchan), np.float64)
    for c in range(nchan):
        weights = image[c].reshape(-1).astype(np.float64, copy=False)
        sums = np.bincount(flat, weights=weights, minlength=top + 1)
        mean[:, c] = sums[present] / area
    return ObjectTable(ids, bbox, centroid, area, mean)


_TABLE_FIELDS = ("ids", "bbox", "centroid", "area", "mean_intensity")


def save_table(path, table: ObjectTable) -> None:
    """Cache a table (a plain .npz, atomically) so that opening a big image skips measuring it."""
    from svetlana.core.io.fileio import atomic_write_with

    arrays = {k: getattr(table, k) for k in _TABLE_FIELDS}
    atomic_write_with(path, lambda p: np.savez(p, **arrays))


def object_ids(labels: np.ndarray) -> np.ndarray:
    """The ids of the objects of a label mask (its non-zero values), ascending; fast for the
    usual dense ids (one pass), sorting only for very sparse ones."""
    flat = labels.ravel()
    if not flat.size:
        return np.zeros(0, np.int64)
    top, low = int(flat.max()), int(flat.min())
    if low >= 0 and top <= 4 * flat.size + 65536:
        present = np.zeros(top + 1, bool)
        # One value per run of equal pixels (an object's runs along its rows; the background's):
        # 2.5x faster than marking every pixel on 4096^2 (27 vs 68 ms), the same ids.
        starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        present[flat[starts]] = True
        present[flat[0]] = True
        present[0] = False
        return np.flatnonzero(present).astype(np.int64)
    ids = np.unique(flat)
    return ids[ids != 0].astype(np.int64)


def load_table(path, labels_ndim: int) -> ObjectTable | None:
    """A cached table (a path or an open file), or None when it is missing or does not look
    right (then it is recomputed). The caller checks its ids against the mask."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in _TABLE_FIELDS}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    n = arrays["ids"].shape[0] if arrays["ids"].ndim == 1 else -1
    ok = (
        n >= 0
        and arrays["bbox"].shape == (n, 2 * labels_ndim)
        and arrays["centroid"].shape == (n, labels_ndim)
        and arrays["area"].shape == (n,)
        and arrays["mean_intensity"].ndim == 2
        and arrays["mean_intensity"].shape[0] == n
        and all(arrays[k].dtype.kind in "iuf" for k in _TABLE_FIELDS)
        and all(np.isfinite(arrays[k]).all() for k in _TABLE_FIELDS)
        and (n == 0 or arrays["bbox"].min() >= 0)
    )
    return ObjectTable(**arrays) if ok else None

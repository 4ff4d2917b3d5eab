"""Masks made from an object table: the class mask (object -> class) and filtered masks."""

from __future__ import annotations

import numpy as np

from svetlana.core.errors import InputError

_DENSE_LUT_MAX_ID = 1 << 24  # above: a sorted search instead of a lookup table


def class_mask(labels: np.ndarray, ids: np.ndarray, class_index: np.ndarray) -> np.ndarray:
    """Label mask -> class mask: object ``ids[i]`` gets ``class_index[i]`` (1-based, 0 = none)."""
    labels = np.asarray(labels)
    ids = np.asarray(ids).ravel().astype(np.int64)
    class_index = np.asarray(class_index).ravel().astype(np.int64)
    if ids.shape != class_index.shape:
        raise InputError(f"{len(ids)} object ids but {len(class_index)} class indices")
    if len(class_index) and class_index.min() < 0:
        raise InputError("class indices must be >= 0")
    top = int(class_index.max()) if len(class_index) else 0
    dtype = np.uint8 if top < 255 else np.uint16
    if top > np.iinfo(np.uint16).max:
        raise InputError(f"too many classes ({top}) for a class mask")
    keep = ids > 0  # id 0 is background and always stays 0
    ids, class_index = ids[keep], class_index[keep].astype(dtype)
    if labels.size == 0 or len(ids) == 0:
        return np.zeros(labels.shape, dtype)
    max_label = int(labels.max())
    if max_label <= _DENSE_LUT_MAX_ID:
        lut = np.zeros(max_label + 1, dtype)
        inside = ids <= max_label
        lut[ids[inside]] = class_index[inside]
        # By blocks of rows: np.take turns its indices into a pointer-sized copy (8 bytes a
        # pixel: 134 MB more at 4096^2) -- a block at a time, and no clipped copy either.
        out = np.empty(labels.shape, dtype)
        rows = labels.reshape(labels.shape[0], -1) if labels.ndim else labels.reshape(1, 1)
        flat = out.reshape(rows.shape)
        step = max(1, (1 << 20) // max(1, rows.shape[1]))
        for a0 in range(0, rows.shape[0], step):  # (a negative label: clipped to 0, background)
            np.take(lut, rows[a0 : a0 + step], mode="clip", out=flat[a0 : a0 + step])
        return out
    order = np.argsort(ids, kind="stable")
    sorted_ids, sorted_cls = ids[order], class_index[order]
    pos = np.searchsorted(sorted_ids, labels).clip(0, len(sorted_ids) - 1)
    found = sorted_ids[pos] == labels
    return np.where(found, sorted_cls[pos], 0).astype(dtype)


def filtered_mask(labels: np.ndarray, keep_ids) -> np.ndarray:
    """A copy of ``labels`` with every object not in ``keep_ids`` set to 0 (ids preserved)."""
    labels = np.asarray(labels)
    if not isinstance(keep_ids, np.ndarray):
        keep_ids = np.fromiter(keep_ids, dtype=np.int64)
    keep = np.isin(labels, keep_ids)
    return np.where(keep, labels, 0).astype(labels.dtype, copy=False)

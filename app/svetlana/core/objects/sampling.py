"""Which object to show next: an unbiased random order, or the most uncertain first."""

from __future__ import annotations

import zlib
from collections.abc import Container

import numpy as np


def random_order(seed: int, image: str, ids: np.ndarray) -> np.ndarray:
    """A random permutation of ``ids`` that is the same every time for this project and image.

    Random (not top-left-first) order keeps the labelled set representative of the image, so that
    the validation accuracy is an honest estimate of the accuracy on the unlabelled objects.
    """
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(image.encode("utf-8"))])
    return ids[rng.permutation(len(ids))]


def uncertain_order(ids: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
    """Ids sorted from the most to the least uncertain (ties broken by id, for stability)."""
    ids = np.asarray(ids, dtype=np.int64)
    unc = np.asarray(uncertainty, dtype=np.float64)
    if ids.shape != unc.shape:
        raise ValueError("ids and uncertainty must have the same length")
    return ids[np.lexsort((ids, -unc))]


def next_unlabelled(
    order: np.ndarray, labelled: Container[int], start: int = 0, step: int = 1
) -> int | None:
    """Position in ``order`` of the first unlabelled object from ``start`` going by ``step``."""
    i = start
    while 0 <= i < len(order):
        if int(order[i]) not in labelled:
            return i
        i += step
    return None

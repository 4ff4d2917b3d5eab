"""Lazy (larger than memory) inputs of the measurement: the same pass, read a band at a time."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.objects.measure_stats import clean_channel as _clean_channel
from svetlana.core.objects.measure_stats import robust_range as _robust_range
from svetlana.core.objects.stains import stain_channels

_BAND_PIXELS = 1 << 20  # pixels per band read to find the objects (times 16)


def _is_lazy(a: Any) -> bool:
    """A dask or zarr array (read on demand), not a numpy array."""
    return not isinstance(a, np.ndarray) and hasattr(a, "chunks") and hasattr(a, "shape")


def _as_dask(a: Any):
    import dask.array as da

    return a if isinstance(a, da.Array) else da.from_array(a, chunks=getattr(a, "chunks", "auto"))


def _check_lazy(image, labels, spacing):
    """``_check`` without reading the pixels (negative labels are refused as bands are read)."""
    labels, image = _as_dask(labels), _as_dask(image)
    if labels.ndim not in (2, 3):
        raise InputError(f"mask must be 2D or 3D, found shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise InputError(f"mask must contain integer labels, found {labels.dtype}")
    if image.ndim == labels.ndim:
        image = image[np.newaxis]
    if image.ndim != labels.ndim + 1 or image.shape[1:] != labels.shape:
        raise InputError(
            f"image shape {image.shape} does not match mask shape {labels.shape} (channel first)"
        )
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != labels.ndim or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"spacing {spacing} must give {labels.ndim} positive numbers")
    return image, labels, spacing


def _read_checked(labels, index) -> np.ndarray:
    from svetlana.core.objects.lazy import _read

    part = _read(labels, index)
    if part.dtype.kind == "i" and part.size and part.min() < 0:
        raise InputError("mask contains negative values")
    return part


def _present_lazy(labels, ids, cancel) -> np.ndarray:
    """The ids to measure: ``ids``, or every label of the mask (one pass over its bands)."""
    if ids is not None:
        present = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        if present.size and present[0] <= 0:
            raise InputError(f"object id(s) not in the mask: {present[present <= 0][:5]}")
        return present
    step = max(1, _BAND_PIXELS * 16 // max(1, int(np.prod(labels.shape[1:]))))
    found: list[np.ndarray] = []
    for a0 in range(0, labels.shape[0], step):
        if cancel is not None:
            cancel.raise_if_cancelled()
        found.append(np.unique(_read_checked(labels, slice(a0, a0 + step))))
    present = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    return present[present != 0].astype(np.int64)


def _sparse_rows(present: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Label values -> row of ``present`` (-1: not measured), for masks read a band at a time."""
    top = int(present[-1])
    if top <= 1 << 24:  # a lookup table of at most 64 MB
        lut = np.full(top + 2, -1, np.int32)
        lut[present] = np.arange(present.size, dtype=np.int32)
        return lambda values: lut[np.minimum(values, top + 1)]

    def to_rows(values: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(present, values), 0, present.size - 1)
        return np.where(present[pos] == values, pos, -1).astype(np.int32)

    return to_rows


class _Slabs:
    """A lazy array read as numpy: a full-width slab along the first axis is read once and
    regions inside it come from memory (``_measure_band`` reads a band, then regions of it);
    ``map`` turns label values into rows. Other reads go to the lazy array directly."""

    def __init__(self, data, map: Callable[[np.ndarray], np.ndarray] | None = None):
        self.data, self.map = data, map
        self.shape = tuple(int(s) for s in data.shape)
        self.ndim = len(self.shape)
        self._slab: tuple[int, int, np.ndarray] | None = None

    def _get(self, index) -> np.ndarray:
        part = _read_checked(self.data, index)
        return self.map(part) if self.map is not None else part

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):  # a band: read whole, kept for the regions that follow
            a0, a1, _ = index.indices(self.shape[0])
            self._slab = (a0, a1, self._get(slice(a0, a1)))
            return self._slab[2]
        index = tuple(index)
        first = index[0]
        if self._slab is not None and isinstance(first, slice):
            a0, a1, slab = self._slab
            b0, b1, _ = first.indices(self.shape[0])
            if a0 <= b0 and b1 <= a1 and first.step in (None, 1):
                return slab[(slice(b0 - a0, b1 - a0), *index[1:])]
        return self._get(index)


class _LazyChannel:
    """One channel of a lazy image: regions read as float32, NaN/Inf replaced like
    ``_clean_channel`` (the fill value from a regular subsample of the channel)."""

    def __init__(self, image, c: int, sample: np.ndarray):
        self.image, self.c, self.sample = image, c, sample
        self.shape = tuple(int(s) for s in image.shape[1:])
        self._fill: float | None = None

    def __getitem__(self, region) -> np.ndarray:
        from svetlana.core.objects.lazy import _read

        out = np.asarray(_read(self.image, (self.c, *tuple(region))), dtype=np.float32)
        if not np.isfinite(out).all():
            if self._fill is None:
                good = self.sample[np.isfinite(self.sample)]
                self._fill = float(np.median(good)) if good.size else 0.0
            out = out.copy()
            out[~np.isfinite(out)] = self._fill
        return out


def _lazy_channels(image, stains: bool, wanted) -> tuple[list, list]:
    """Channels read on demand (and the stains of an RGB brightfield image), and their robust
    ranges from a regular subsample of at most 2 million pixels (the whole image when smaller:
    then the same ranges as in memory); None for the channels not ``wanted`` (indices)."""
    from svetlana.core.objects.lazy import _read

    spatial = image.shape[1:]
    total = int(np.prod(spatial))
    step = max(1, int(np.ceil((total / 2_000_000) ** (1 / len(spatial)))))
    sub = _read(image, (slice(None),) + (slice(None, None, step),) * len(spatial))
    channels, ranges = [], []
    nchan = int(image.shape[0])
    for c in range(nchan):
        if c not in wanted:
            channels.append(None)
            ranges.append(None)
            continue
        sample = np.asarray(sub[c], dtype=np.float32)
        channels.append(_LazyChannel(image, c, sample))
        ranges.append(_robust_range(_clean_channel(sample)))
    if stains:  # RGB brightfield: the stains from the same regions, their ranges from the sample
        need = any(c >= nchan for c in wanted)
        for k, sample in enumerate(stain_channels(np.asarray(sub)) if need else [None, None]):
            channels.append(_LazyStain(image, k) if nchan + k in wanted else None)
            ranges.append(_robust_range(sample) if nchan + k in wanted else None)
    return channels, ranges


class _LazyStain:
    """One stain of a lazy RGB uint8 image: regions read (3 channels) and unmixed on demand."""

    def __init__(self, image, k: int):
        self.image, self.k = image, k
        self.shape = tuple(int(s) for s in image.shape[1:])

    def __getitem__(self, region) -> np.ndarray:
        from svetlana.core.objects.lazy import _read

        return stain_channels(np.asarray(_read(self.image, (slice(None), *tuple(region)))))[self.k]

"""Per-object measurements (shape, intensity, ring, radial layout, texture) and their bundle cache.

~900 lines: one vectorised pass over bands of the image fills shared per-object accumulators
(shape, intensity, ring, shells, texture); splitting it would scatter that state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn
from svetlana.core.objects.stains import is_brightfield_rgb, stain_channels

log = logging.getLogger(__name__)

# Bump when the feature set or a formula changes: cached tables of another version are recomputed.
# 4: the neighbours' means (core/objects/neighbours.py); 3: the context of
# core/objects/families.py and the stains of core/objects/stains.py
VERSION = 4
SCALES = (1.0, 2.0, 4.0)  # filter-bank scales, in pixels of the finest axis
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
RING_WIDTH = 3  # pixels (finest axis) of background around each object
N_SHELLS = 4  # concentric shells from the centre (radius 0) to the rim (radius 1)
_HULL_DIRECTIONS = 24  # support directions of the 2D convex-hull polygon
_BINS = 256  # per-channel intensity histogram bins for the quantiles
_BAND_PIXELS = 1 << 20  # pixels per processed band (memory stays ~ tens of MB)
# Objects per block when quantiles are read from the histograms (416,025 objects at once took
# a 0.85 GB int64 cumulative copy of each 0.43 GB histogram).
_FINISH_BLOCK = 16384
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, eq=False)
class Measurements:
    """One row per object (ids ascending), one float32 column per measurement, always finite."""

    ids: np.ndarray  # (n,) int64 object ids, ascending (same order as ObjectTable.ids)
    names: tuple[str, ...]  # stable column names, e.g. "area", "ch0_mean", "ch0_ring_ratio"
    units: tuple[str, ...]  # one per name ("px^2", "um", "" ...)
    values: np.ndarray  # (n, len(names)) float32, always finite

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def column(self, name: str) -> np.ndarray:
        """The values of one measurement, by name."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise InputError(f"no measurement named {name!r}") from None

    def rows(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """Row index of each id; unknown ids raise InputError."""
        query = np.asarray(ids, dtype=np.int64).reshape(-1)
        pos = np.clip(np.searchsorted(self.ids, query), 0, max(len(self) - 1, 0))
        if len(self) == 0 or not (self.ids[pos] == query).all():
            bad = query if len(self) == 0 else query[self.ids[pos] != query]
            raise InputError(f"no measurements for object id(s) {', '.join(map(str, bad[:10]))}")
        return pos.astype(np.intp)


# ---- column names ----------------------------------------------------------------------------


def _texture_filters(nd: int) -> list[str]:
    return ["gauss", "log", "gradient"] + [f"hessian{k + 1}" for k in range(nd)]


def _dog_scales() -> list[float]:
    return [s for s in SCALES if 2 * s in SCALES]


def _q(q: float) -> str:
    return "median" if q == 0.5 else f"q{round(q * 100):02d}"


def channel_prefixes(channels: int, stains: bool = False) -> list[str]:
    """Column prefix of each measured channel: ``ch0_``..., then the stains (RGB brightfield)."""
    from svetlana.core.objects.stains import PREFIXES

    return [f"ch{c}_" for c in range(channels)] + (list(PREFIXES) if stains else [])


def column_names(
    ndim: int, channels: int, physical: bool = False, stains: bool = False, neighbours: bool = True
) -> tuple[tuple, tuple]:
    """Names and units of every column for a ``ndim``-D image with ``channels`` channels
    (``stains``: an RGB brightfield image, whose stains are measured as channels too)."""
    from svetlana.core.objects.families import family_names

    u = "um" if physical else "px"
    names: list[str] = []
    units: list[str] = []

    def add(name: str, unit: str = "") -> None:
        names.append(name)
        units.append(unit)

    if ndim == 2:
        add("area", f"{u}^2")
        add("equivalent_diameter", u)
        add("major_axis_length", u)
        add("minor_axis_length", u)
    else:
        add("volume", f"{u}^3")
        add("equivalent_diameter", u)
        add("major_axis_length", u)
        add("middle_axis_length", u)
        add("minor_axis_length", u)
    add("elongation")
    add("solidity")
    add("extent")
    if ndim == 2:
        add("perimeter", u)
        add("circularity")
    else:
        add("surface_area", f"{u}^2")
        add("sphericity")
    add("euler_number")
    stats = ["mean", "std", "min", "max"] + [_q(q) for q in QUANTILES]
    prefixes = channel_prefixes(channels, stains)
    for p in prefixes:
        for s in stats:
            add(p + s, "intensity")
        add(p + "skewness")
        add(p + "kurtosis")
        for s in stats:
            add(p + "norm_" + s)
        for s in stats:
            add(p + "ring_" + s, "intensity")
        add(p + "ring_skewness")
        add(p + "ring_kurtosis")
        add(p + "ring_norm_mean")
        add(p + "ring_norm_std")
        add(p + "ring_ratio")
        add(p + "ring_contrast")
        for k in range(N_SHELLS):
            add(p + f"shell{k + 1}_mean", "intensity")
        for k in range(N_SHELLS):
            add(p + f"shell{k + 1}_profile")
        for s in SCALES:
            for f in _texture_filters(ndim):
                add(p + f"{f}_s{s:g}_mean")
                add(p + f"{f}_s{s:g}_std")
        for s in _dog_scales():
            add(p + f"dog_s{s:g}_mean")
            add(p + f"dog_s{s:g}_std")
        for s in SCALES:
            add(p + f"coherence_s{s:g}")
    for name, unit in family_names(ndim, prefixes):
        add(name, unit)
    if neighbours:  # the neighbours' means of every column above (core/objects/neighbours.py)
        from svetlana.core.objects.neighbours import neighbour_names

        more = neighbour_names(names, units)
        names, units = names + more[0], units + more[1]
    return tuple(names), tuple(units)


# ---- input checks ----------------------------------------------------------------------------


def _check(image, labels, spacing):
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"mask must be 2D or 3D, found shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise InputError(f"mask must contain integer labels, found {labels.dtype}")
    if labels.dtype.kind == "b":
        labels = labels.astype(np.int32)
    image = np.asarray(image)
    if image.ndim == labels.ndim:
        image = image[np.newaxis]
    if image.ndim != labels.ndim + 1 or image.shape[1:] != labels.shape:
        raise InputError(
            f"image shape {image.shape} does not match mask shape {labels.shape} (channel first)"
        )
    if labels.size and labels.min() < 0:
        raise InputError("mask contains negative values")
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != labels.ndim or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"spacing {spacing} must give {labels.ndim} positive numbers")
    return image, labels, spacing


def _clean_channel(channel: np.ndarray) -> np.ndarray:
    """float32 pixels; NaN/Inf replaced by the median of the finite pixels (0 if none)."""
    out = np.asarray(channel, dtype=np.float32)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = ~np.isfinite(out)
        good = out[~bad]
        fill = float(np.median(good[:: max(1, good.size // 200_000)])) if good.size else 0.0
        out = out.copy()
        out[bad] = fill
    return out


def _robust_range(channel: np.ndarray) -> tuple[float, float]:
    """1st and 99.8th percentiles (as the network's normalisation), never an empty range."""
    from svetlana.core.objects.patches import fit_normalisation

    norm = fit_normalisation(channel[np.newaxis])
    return float(norm.low[0]), float(norm.high[0])


def _dense_lut(labels: np.ndarray, ids) -> tuple[np.ndarray, np.ndarray, Callable]:
    """Object ids to measure and a mapping label value -> row (-1: not measured)."""
    flat = labels.reshape(-1)
    top = int(flat.max()) if flat.size else 0
    if ids is None:
        if top > 4 * flat.size + 1024:  # huge sparse ids: no lookup table of max-id entries
            present = np.unique(flat)
            present = present[present != 0].astype(np.int64)
        else:
            present = np.flatnonzero(np.bincount(flat, minlength=top + 1))
            present = present[present != 0].astype(np.int64)
    else:
        present = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        if present.size and (present[0] <= 0 or present[-1] > top):
            raise InputError(f"object id(s) not in the mask: {present[present <= 0][:5]}")
    if top <= 4 * flat.size + 1024:
        lut = np.full(top + 1, -1, np.int32)
        lut[present] = np.arange(present.size, dtype=np.int32)

        def to_rows(values: np.ndarray) -> np.ndarray:
            return lut[values]
    else:

        def to_rows(values: np.ndarray) -> np.ndarray:
            pos = np.clip(np.searchsorted(present, values), 0, max(present.size - 1, 0))
            hit = present[pos] == values if present.size else np.zeros(values.shape, bool)
            return np.where(hit, pos, -1).astype(np.int32)

    return present, lut if top <= 4 * flat.size + 1024 else None, to_rows


# ---- per-object accumulation ------------------------------------------------------------------


class _Stats:
    """Streaming per-object intensity statistics (moments about a per-object reference, extrema,
    a histogram for quantiles), fed band by band."""

    def __init__(self, n: int, lo: float, hi: float):
        self.n = n
        self.count = np.zeros(n, np.float64)
        self.ref = np.full(n, np.nan, np.float64)
        self.m = np.zeros((4, n), np.float64)
        self.min = np.full(n, np.inf, np.float64)
        self.max = np.full(n, -np.inf, np.float64)
        # Bin counts: uint16 (the largest array, objects x bins) until an object's bin passes
        # 65,535 pixels, then int32; the counts are exact either way.
        self.hist = np.zeros((n, _BINS), np.uint16)
        self.lo, self.hi = lo, hi  # the channel's robust range (normalised values: 0 to 1)
        # Histogram range: the robust range widened, so bright objects keep their quantiles.
        span = hi - lo
        self.h0 = lo - 0.25 * span
        self.width = max(2.25 * span / _BINS, 1e-12 * max(1.0, abs(lo)))

    def add(self, seg: _Segments, values: np.ndarray) -> None:
        """``values`` in the segments' (sorted) order."""
        if values.size == 0:
            return
        u = seg.uniq
        first = values[seg.starts].astype(np.float64)
        new = np.isnan(self.ref[u])
        self.ref[u[new]] = first[new]
        d = values.astype(np.float64) - np.repeat(self.ref[u], seg.sizes)
        d2 = d * d
        self.m[0, u] += np.add.reduceat(d, seg.starts)
        self.m[1, u] += np.add.reduceat(d2, seg.starts)
        self.m[2, u] += np.add.reduceat(d2 * d, seg.starts)
        self.m[3, u] += np.add.reduceat(d2 * d2, seg.starts)
        self.count[u] += seg.sizes
        self.min[u] = np.minimum(self.min[u], np.minimum.reduceat(values, seg.starts))
        self.max[u] = np.maximum(self.max[u], np.maximum.reduceat(values, seg.starts))
        b = np.clip(((values - self.h0) / self.width).astype(np.int64), 0, _BINS - 1)
        local = np.repeat(np.arange(u.size), seg.sizes) * _BINS + b
        h = np.bincount(local, minlength=u.size * _BINS).reshape(u.size, _BINS)
        new = self.hist[u] + h
        if self.hist.dtype == np.uint16 and new.max() > np.iinfo(np.uint16).max:
            self.hist = self.hist.astype(np.int32)
        self.hist[u] = new

    def merge(self, o: _Stats) -> None:
        """Add the statistics ``o`` gathered on other pixels of the same objects."""
        mine, theirs = ~np.isnan(self.ref), ~np.isnan(o.ref)
        both, only_o = mine & theirs, ~mine & theirs
        # o's sums of powers of (v - o.ref) moved to (v - self.ref) = (v - o.ref) + d.
        d = np.where(both, o.ref - np.where(mine, self.ref, 0.0), 0.0)
        n, (m1, m2, m3, m4) = o.count, o.m
        shifted = np.stack(
            [
                m1 + n * d,
                m2 + 2 * d * m1 + n * d**2,
                m3 + 3 * d * m2 + 3 * d**2 * m1 + n * d**3,
                m4 + 4 * d * m3 + 6 * d**2 * m2 + 4 * d**3 * m1 + n * d**4,
            ]
        )
        self.m[:, both] += shifted[:, both]
        self.m[:, only_o] = o.m[:, only_o]
        self.ref[only_o] = o.ref[only_o]
        self.count += o.count
        np.minimum(self.min, o.min, out=self.min)
        np.maximum(self.max, o.max, out=self.max)
        total = self.hist.astype(np.int32) + o.hist
        small = total.max(initial=0) <= np.iinfo(np.uint16).max
        self.hist = total.astype(np.uint16) if small else total

    def finish(self) -> dict[str, np.ndarray]:
        """mean, std, min, max, quantiles, skewness, kurtosis (NaN where no pixel)."""
        n = np.where(self.count > 0, self.count, np.nan)
        a1, a2, a3, a4 = (self.m[k] / n for k in range(4))
        var = np.maximum(a2 - a1 * a1, 0.0)
        mu3 = a3 - 3 * a1 * a2 + 2 * a1**3
        mu4 = a4 - 4 * a1 * a3 + 6 * a1 * a1 * a2 - 3 * a1**4
        mean = self.ref + a1
        scale = np.maximum(np.abs(mean), np.abs(self.ref))
        flat = var <= (1e-6 * np.maximum(scale, 1e-12)) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            skew = np.where(flat, 0.0, mu3 / var**1.5)
            kurt = np.where(flat, 0.0, mu4 / var**2 - 3.0)
        out = {"mean": mean, "std": np.sqrt(var), "min": self.min, "max": self.max}
        quantiles = {_q(q): np.empty(self.n) for q in QUANTILES}
        for a0 in range(0, self.n, _FINISH_BLOCK):  # blocks: no (objects x bins) int64 copy
            a1 = min(self.n, a0 + _FINISH_BLOCK)
            hist, rows = self.hist[a0:a1], np.arange(a1 - a0)
            cum = np.cumsum(hist, axis=1, dtype=np.int64)
            for q in QUANTILES:
                target = q * self.count[a0:a1]
                b = np.minimum((cum < target[:, None]).sum(axis=1), _BINS - 1)
                below = np.where(b > 0, cum[rows, np.maximum(b - 1, 0)], 0)
                inbin = np.maximum(hist[rows, b], 1)
                frac = np.clip((target - below) / inbin, 0.0, 1.0)
                value = self.h0 + (b + frac) * self.width
                quantiles[_q(q)][a0:a1] = np.clip(value, self.min[a0:a1], self.max[a0:a1])
        out.update(quantiles)
        self.hist = np.zeros((0, _BINS), np.int32)  # the largest array: freed once used
        out["skewness"] = skew
        out["kurtosis"] = kurt
        empty = self.count == 0
        for k in out:
            out[k] = np.where(empty, np.nan, out[k])
        return out


@dataclass(frozen=True, eq=False)
class _Segments:
    """Pixels of one band grouped by object: the sorting order, the objects and their runs."""

    order: np.ndarray
    uniq: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, presorted: bool = False) -> _Segments:
        if presorted:
            order = np.arange(rows.size)
        elif rows.size and int(rows.max()) < 65536:
            order = np.argsort(rows.astype(np.uint16), kind="stable")  # a radix sort
        else:
            order = np.argsort(rows, kind="stable")
        srt = rows[order]
        if srt.size == 0:
            e = np.zeros(0, np.intp)
            return cls(order, e, e, e)
        change = np.flatnonzero(np.diff(srt)) + 1
        starts = np.concatenate([[0], change]).astype(np.intp)
        sizes = np.diff(np.concatenate([starts, [srt.size]])).astype(np.intp)
        return cls(order, srt[starts].astype(np.intp), starts, sizes)


# ---- the measurement -------------------------------------------------------------------------


def measure_objects(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    ids: np.ndarray | list[int] | None = None,
    spacing: tuple[float, ...] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Measurements:
    """Measure every object of ``labels`` (or only ``ids``) on ``image`` (channel first).

    Cost grows with the pixels of the measured objects (bands of the image around them), not
    with the image. See the README (*Object measurements*) for every column. The neighbours'
    means (core/objects/neighbours.py) are added to the measurements of this module.
    """
    from svetlana.core.objects.neighbours import measure_with_neighbours

    check = _check_lazy if (_is_lazy(image) or _is_lazy(labels)) else _check
    image, labels, spacing = check(image, labels, spacing)
    return measure_with_neighbours(
        _measure_base, image, labels, ids=ids, spacing=spacing, progress=progress, cancel=cancel
    )


def _measure_base(image, labels, *, ids=None, spacing=None, progress=None, cancel=None):
    """The measurements of this module (every column but the neighbours' means)."""
    from scipy import ndimage

    if _is_lazy(image) or _is_lazy(labels):  # larger than memory: read band by band
        image, labels, spacing = _check_lazy(image, labels, spacing)
        present = _present_lazy(labels, ids, cancel)
        nd, nchan = labels.ndim, image.shape[0]
        stains = is_brightfield_rgb(image)
        names, units = column_names(
            nd, nchan, physical=spacing is not None, stains=stains, neighbours=False
        )
        if present.size == 0:
            return Measurements(present, names, units, np.zeros((0, len(names)), np.float32))
        channels, ranges = _lazy_channels(image, stains)
        rows_img = _Slabs(labels, _sparse_rows(present))
        labels = _Slabs(labels)
    else:
        image, labels, spacing = _check(image, labels, spacing)
        nd, nchan = labels.ndim, image.shape[0]
        stains = is_brightfield_rgb(image)
        names, units = column_names(
            nd, nchan, physical=spacing is not None, stains=stains, neighbours=False
        )
        present, lut, to_rows = _dense_lut(labels, ids)
        if present.size == 0:
            return Measurements(present, names, units, np.zeros((0, len(names)), np.float32))
        channels = [_clean_channel(image[c]) for c in range(nchan)]
        if stains:
            channels += stain_channels(image)
        ranges = [_robust_range(ch) for ch in channels]
        rows_img = to_rows(labels) if lut is None else lut[labels]
    n = int(present.size)
    sp = np.asarray(spacing if spacing is not None else (1.0,) * nd, np.float64)
    finest = float(sp.min())
    if cancel is not None:
        cancel.raise_if_cancelled()

    # Pre-pass: per-object moments of the coordinates (centroid, covariance) for the radial
    # layout; a lookup over the mask and a few bincounts per band.
    count = np.zeros(n)
    mom1 = np.zeros((nd, n))
    mom2 = np.zeros((nd, nd, n))
    axis0_count = np.zeros(labels.shape[0], np.int64)
    step0 = max(1, _BAND_PIXELS // max(1, int(np.prod(labels.shape[1:]))))
    for a0 in range(0, labels.shape[0], step0):
        band = rows_img[a0 : a0 + step0]
        pos = np.nonzero(band >= 0)
        if pos[0].size == 0:
            continue
        r = band[pos]
        axis0_count[a0 : a0 + step0] = np.bincount(pos[0], minlength=band.shape[0])
        coord = [(pos[0] + a0) * sp[0]] + [pos[a] * sp[a] for a in range(1, nd)]
        count += np.bincount(r, minlength=n)
        for a in range(nd):
            mom1[a] += np.bincount(r, coord[a], minlength=n)
            for b in range(a, nd):
                mom2[a, b] += np.bincount(r, coord[a] * coord[b], minlength=n)
    if ids is not None and not (count > 0).all():
        missing = present[count == 0]
        raise InputError(f"object id(s) not in the mask: {', '.join(map(str, missing[:10]))}")
    safe = np.maximum(count, 1)
    centroid = (mom1 / safe).T.copy()
    cov = np.empty((n, nd, nd))
    for a in range(nd):
        for b in range(a, nd):
            cov[:, a, b] = cov[:, b, a] = mom2[a, b] / safe - centroid[:, a] * centroid[:, b]
    inv_cov = _inverse_cov(cov, sp)

    ring_w = np.maximum(1, np.round(RING_WIDTH * finest / sp)).astype(int)
    sig = [np.asarray([s * finest / q for q in sp]) for s in SCALES]
    margin = np.maximum(ring_w, np.ceil(4 * sig[-1] * 1.0).astype(int)) + 2

    bands = _bands(axis0_count, ring_w[0], labels.shape)
    fixed = (labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov)
    workers = 1 if isinstance(labels, _Slabs) else band_workers(len(bands), n)
    parts = [
        bands[k * len(bands) // workers : (k + 1) * len(bands) // workers] for k in range(workers)
    ]
    prefixes = channel_prefixes(nchan, len(channels) > nchan)
    accs = [_Accumulators(n, nd, len(channels), ranges) for _ in parts]
    for a in accs:
        a.prefixes = prefixes
    message = f"measuring {n} objects"
    if workers == 1:
        for done, (a0, a1) in enumerate(bands, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            _measure_band(a0, a1, *fixed, accs[0], ndimage)
            if progress is not None:
                progress(Progress("measure", done, len(bands), message))
    else:
        _measure_in_threads(parts, accs, fixed, ndimage, progress, cancel, message)
    acc = accs[0]
    for other in accs[1:]:
        acc.merge(other)
    extra = _context_columns(
        labels, channels, ranges, prefixes, present, ids is None, centroid, count, cov, sp, acc
    )
    values = acc.finish(names, nd, sp, count, cov, labels, present, extra)
    return Measurements(present, names, units, values)


def _context_columns(labels, channels, ranges, prefixes, present, every: bool, centroid, count,
                     cov, sp, acc) -> dict[str, np.ndarray]:  # fmt: skip
    """The context columns of core/objects/families.py, from every object of the mask
    (``every``: ``present`` is every object already, measured in ``acc``; else one more pass
    of bincounts over the mask)."""
    from svetlana.core.objects.families import context_columns, elongation, object_sums

    nd = labels.ndim
    if every:
        size_all, centroid_all = count * float(np.prod(sp)), centroid
        safe = np.maximum(count, 1)
        intensity_all = np.stack(
            [
                (st.ref + st.m[0] / safe - lo) / (hi - lo)
                for st, (lo, hi) in zip(acc.obj, ranges, strict=True)
            ]
        )
        intensity_all = np.where(count[None] > 0, intensity_all, 0.0)
        elong_all = elongation(cov, sp)
        rows = np.arange(int(present.size))
    else:
        ids_all, size_all, centroid_all, intensity_all, elong_all = object_sums(
            labels, channels, ranges, sp
        )
        rows = np.searchsorted(ids_all, present)
    return context_columns(centroid_all, size_all, intensity_all, elong_all, rows, prefixes, nd)


# Bands are measured on this many threads (numpy and scipy release the GIL in their loops):
# each thread fills its own accumulators, merged at the end. Not for more than this many
# objects: each thread's accumulators hold a histogram per object.
MAX_THREADS = 2
_THREADED_MAX_OBJECTS = 100_000
THREADS_ENV = "SVETLANA_MEASURE_THREADS"


def band_workers(n_bands: int, n_objects: int) -> int:
    """Threads for the band loop: up to MAX_THREADS and the cores (``SVETLANA_MEASURE_THREADS``
    overrides), one for small or huge jobs."""
    import os

    env = os.environ.get(THREADS_ENV, "").strip()
    want = int(env) if env.isdigit() and int(env) > 0 else min(MAX_THREADS, os.cpu_count() or 1)
    if n_bands < 2 * want or n_objects > _THREADED_MAX_OBJECTS:
        return 1
    return want


def _measure_in_threads(parts, accs, fixed, ndimage, progress, cancel, message) -> None:
    """Each part of the bands on its own thread, into its own accumulators; progress and
    cancelling stay on the calling thread."""
    import threading
    from concurrent.futures import ThreadPoolExecutor, wait

    total = sum(len(p) for p in parts)
    done = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def run(part, acc) -> None:
        for a0, a1 in part:
            if stop.is_set():
                return
            _measure_band(a0, a1, *fixed, acc, ndimage)
            with lock:
                done[0] += 1

    with ThreadPoolExecutor(len(parts), thread_name_prefix="measure") as pool:
        futures = [pool.submit(run, p, a) for p, a in zip(parts, accs, strict=True)]
        try:
            pending = futures
            while pending:
                _, pending = wait(pending, timeout=0.25)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if progress is not None:
                    progress(Progress("measure", done[0], total, message))
            for f in futures:
                f.result()  # a band's error, raised here
        finally:
            stop.set()


# ---- lazy (larger than memory) inputs: the same measurement, read a band at a time ----------


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


def _lazy_channels(image, stains: bool = False) -> tuple[list, list[tuple[float, float]]]:
    """Channels read on demand (and the stains of an RGB brightfield image), and their robust
    ranges from a regular subsample of at most 2 million pixels (the whole image when smaller:
    then the same ranges as in memory)."""
    from svetlana.core.objects.lazy import _read

    spatial = image.shape[1:]
    total = int(np.prod(spatial))
    step = max(1, int(np.ceil((total / 2_000_000) ** (1 / len(spatial)))))
    sub = _read(image, (slice(None),) + (slice(None, None, step),) * len(spatial))
    channels, ranges = [], []
    for c in range(int(image.shape[0])):
        sample = np.asarray(sub[c], dtype=np.float32)
        channels.append(_LazyChannel(image, c, sample))
        ranges.append(_robust_range(_clean_channel(sample)))
    if stains:  # RGB brightfield: the stains from the same regions, their ranges from the sample
        for k, sample in enumerate(stain_channels(np.asarray(sub))):
            channels.append(_LazyStain(image, k))
            ranges.append(_robust_range(sample))
    return channels, ranges


class _LazyStain:
    """One stain of a lazy RGB uint8 image: regions read (3 channels) and unmixed on demand."""

    def __init__(self, image, k: int):
        self.image, self.k = image, k
        self.shape = tuple(int(s) for s in image.shape[1:])

    def __getitem__(self, region) -> np.ndarray:
        from svetlana.core.objects.lazy import _read

        return stain_channels(np.asarray(_read(self.image, (slice(None), *tuple(region)))))[self.k]


def _inverse_cov(cov: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Inverse covariance, regularised by a pixel's own spread so tiny/flat objects stay finite."""
    nd = cov.shape[1]
    reg = np.diag(sp**2 / 12.0)
    return np.linalg.inv(cov + reg[np.newaxis] + 1e-12 * np.eye(nd)[np.newaxis])


def _bands(axis0_count: np.ndarray, ring: int, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Slabs along the first axis holding object pixels (or ring pixels), ~_BAND_PIXELS each."""
    per = max(1, int(np.prod(shape[1:])))
    step = max(1, _BAND_PIXELS // per)
    has = axis0_count > 0
    if ring > 0:
        has = np.convolve(has.astype(int), np.ones(2 * ring + 1, int), mode="same") > 0
    out = []
    for a0 in range(0, shape[0], step):
        a1 = min(shape[0], a0 + step)
        if has[a0:a1].any():
            out.append((a0, a1))
    return out


class _Accumulators:
    def __init__(self, n: int, nd: int, nchan: int, ranges):
        self.n, self.nd = n, nd
        self.bmin = np.full((n, nd), np.iinfo(np.int64).max, np.int64)
        self.bmax = np.full((n, nd), -1, np.int64)
        self.crofton = np.zeros(n)
        self.euler = np.zeros(n)
        self.support = np.full((n, _HULL_DIRECTIONS), -np.inf)
        self.boundary_pts: list[tuple[np.ndarray, np.ndarray]] = []  # 3D hull: (rows, coords)
        self.obj = [_Stats(n, *r) for r in ranges]
        self.ring = [_Stats(n, *r) for r in ranges]
        self.shell_sum = np.zeros((nchan, n, N_SHELLS))
        self.shell_n = np.zeros((n, N_SHELLS))
        nf = len(SCALES) * len(_texture_filters(nd)) + len(_dog_scales())
        self.tex_sum = np.zeros((nchan, nf, n))
        self.tex_sq = np.zeros((nchan, nf, n))
        self.tex_n = np.zeros((nf, n))  # pixels each texture column averaged over
        # Object-level orientation per scale: sums of H.H (H the Hessian; upper triangle).
        self.tensor = np.zeros((nchan, len(SCALES), nd * (nd + 1) // 2, n))
        self.prefixes = [f"ch{c}_" for c in range(nchan)]

    def merge(self, o: _Accumulators) -> None:
        """Add what ``o`` gathered on other bands (the threads' accumulators)."""
        np.minimum(self.bmin, o.bmin, out=self.bmin)
        np.maximum(self.bmax, o.bmax, out=self.bmax)
        np.maximum(self.support, o.support, out=self.support)
        self.boundary_pts += o.boundary_pts
        for mine, theirs in zip(self.obj + self.ring, o.obj + o.ring, strict=True):
            mine.merge(theirs)
        for key in (
            "crofton",
            "euler",
            "shell_sum",
            "shell_n",
            "tex_sum",
            "tex_sq",
            "tex_n",
            "tensor",
        ):
            mine = getattr(self, key)
            mine += getattr(o, key)  # in place: the arrays are sums over pixels

    def finish(self, names, nd, sp, count, cov, labels, present, extra=None) -> np.ndarray:
        cols: dict[str, np.ndarray] = dict(extra or {})
        vox = float(np.prod(sp))
        size = count * vox
        eig = np.sort(np.linalg.eigvalsh(cov), axis=1)[:, ::-1]
        # A uniform ellipse (ellipsoid) with semi-axis a has variance a^2/4 (a^2/5) along it.
        k = 4.0 if nd == 2 else 5.0
        axes = 2.0 * np.sqrt(np.maximum(eig, 0) * k)
        axes = np.maximum(axes, float(sp.min()))  # a 1-pixel object is one pixel long
        if nd == 2:
            cols["area"] = size
            cols["equivalent_diameter"] = 2 * np.sqrt(size / np.pi)
            cols["major_axis_length"], cols["minor_axis_length"] = axes[:, 0], axes[:, 1]
        else:
            cols["volume"] = size
            cols["equivalent_diameter"] = np.cbrt(6 * size / np.pi)
            cols["major_axis_length"] = axes[:, 0]
            cols["middle_axis_length"] = axes[:, 1]
            cols["minor_axis_length"] = axes[:, 2]
        cols["elongation"] = axes[:, 0] / axes[:, -1]
        box = np.prod((self.bmax - self.bmin + 1) * sp, axis=1)
        cols["extent"] = size / box
        if nd == 2:
            # Crofton: half the mean number of boundary crossings over 4 line directions.
            per = np.pi / 8 * self.crofton * math.sqrt(sp[0] * sp[1])
            cols["perimeter"] = per
            cols["circularity"] = np.minimum(4 * np.pi * size / np.maximum(per, 1e-12) ** 2, 1.0)
            hull = _hull_area(self.support)
            cols["euler_number"] = self.euler / 4.0
        else:
            surf = 2.0 / 3.0 * self.crofton  # faces weighted by their area (set per band)
            cols["surface_area"] = surf
            sph = np.pi ** (1 / 3) * (6 * size) ** (2 / 3) / np.maximum(surf, 1e-12)
            cols["sphericity"] = np.minimum(sph, 1.0)
            hull, euler = _hull_euler_3d(self, labels, present, sp)
            cols["euler_number"] = euler
        cols["solidity"] = np.clip(size / np.maximum(hull, size), 0.0, 1.0)
        for c, (so, sr) in enumerate(zip(self.obj, self.ring, strict=True)):
            p = self.prefixes[c]
            o, r = so.finish(), sr.finish()
            no_ring = np.isnan(r["mean"])
            for key in list(r):  # no background around the object: the ring is the object
                r[key] = np.where(no_ring, o[key], r[key])
            scale = 1.0 / (so.hi - so.lo)
            for key, v in o.items():
                cols[p + key] = v
            for key, v in r.items():
                cols[p + "ring_" + key] = v
            for key in ["mean", "min", "max"] + [_q(q) for q in QUANTILES]:
                cols[p + "norm_" + key] = (o[key] - so.lo) * scale
            cols[p + "norm_std"] = o["std"] * scale
            cols[p + "ring_norm_mean"] = (r["mean"] - so.lo) * scale
            cols[p + "ring_norm_std"] = r["std"] * scale
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(r["mean"] > 0, o["mean"] / r["mean"], 0.0)
                spread = np.maximum(r["std"], 1e-3 / scale)
                cols[p + "ring_contrast"] = (o["mean"] - r["mean"]) / spread
            cols[p + "ring_ratio"] = ratio
            shell_mean = self.shell_sum[c] / np.maximum(self.shell_n, 1)
            shell_mean = np.where(self.shell_n > 0, shell_mean, o["mean"][:, None])
            spread = np.maximum(o["std"], 1e-3 / scale)
            for k in range(N_SHELLS):
                cols[p + f"shell{k + 1}_mean"] = shell_mean[:, k]
                cols[p + f"shell{k + 1}_profile"] = (shell_mean[:, k] - o["mean"]) / spread
            tex_names = [f"{f}_s{s:g}" for s in SCALES for f in _texture_filters(nd)]
            tex_names += [f"dog_s{s:g}" for s in _dog_scales()]
            for j, t in enumerate(tex_names):
                cnt = np.maximum(self.tex_n[j], 1)
                mean = self.tex_sum[c, j] / cnt
                cols[p + t + "_mean"] = mean
                cols[p + t + "_std"] = np.sqrt(np.maximum(self.tex_sq[c, j] / cnt - mean**2, 0))
            for k, s in enumerate(SCALES):
                cols[p + f"coherence_s{s:g}"] = _coherence(self.tensor[c, k], nd)
        out = np.empty((self.n, len(names)), np.float32)
        for j, name in enumerate(names):
            v = np.nan_to_num(cols[name], nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
            out[:, j] = np.clip(v, -_F32_MAX, _F32_MAX)
        return out


def _coherence(tensor: np.ndarray, nd: int) -> np.ndarray:
    """(largest - smallest) / (largest + smallest) eigenvalue of each object's summed H.H (H the
    Hessian): 1 when its curvature has one orientation (stripes), 0 when none (dots, flat)."""
    m = np.zeros((tensor.shape[1], nd, nd))
    k = 0
    for a in range(nd):
        for b in range(a, nd):
            m[:, a, b] = m[:, b, a] = tensor[k]
            k += 1
    ev = np.linalg.eigvalsh(m)
    lo, hi = np.maximum(ev[:, 0], 0), np.maximum(ev[:, -1], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi > 0, (hi - lo) / (hi + lo), 0.0)


def _euler_quads(same: dict) -> np.ndarray:
    """4 x the Euler number contribution (8-connectivity: Q1 - Q3 - 2 QD) of the 2x2 windows
    holding each boundary pixel, counted once per object: by its first pixel (tl, tr, bl, br)
    in the window. ``same[(dy, dx)]``: is that neighbour in the pixel's object."""

    def quad(tl, tr, bl, br):
        n = tl.astype(np.int8) + tr + bl + br
        diagonal = (n == 2) & ((tl & br) | (tr & bl))
        return (n == 1).astype(np.int8) - (n == 3) - 2 * diagonal.astype(np.int8)

    one = np.ones_like(same[(0, 1)])
    e, s, se, sw = same[(0, 1)], same[(1, 0)], same[(1, 1)], same[(1, -1)]
    w, n, nw, ne = same[(0, -1)], same[(-1, 0)], same[(-1, -1)], same[(-1, 1)]
    total = quad(one, e, s, se).astype(np.float64)
    total += ~w * quad(w, one, sw, s)
    total += (~n & ~ne) * quad(n, ne, one, e)
    total += (~nw & ~n & ~w) * quad(nw, n, w, one)
    return total


def _hull_area(support: np.ndarray) -> np.ndarray:
    """Area of the polygon with K equally spaced outward normals and support values ``h``."""
    kk = support.shape[1]
    d = 2 * np.pi / kk
    h = support
    edge = (np.roll(h, 1, axis=1) + np.roll(h, -1, axis=1) - 2 * h * math.cos(d)) / math.sin(d)
    return 0.5 * np.sum(h * np.maximum(edge, 0), axis=1)


def _row_extremes(pts: np.ndarray) -> np.ndarray:
    """The first and last voxel of each (z, y) row of a voxel set: the boxes between them add
    nothing to its convex hull."""
    key = pts[:, 0] * 1e6 + pts[:, 1]
    order = np.lexsort((pts[:, 2], key))
    srt = pts[order]
    k = key[order]
    first = np.ones(k.size, bool)
    first[1:] = k[1:] != k[:-1]
    last = np.ones(k.size, bool)
    last[:-1] = k[1:] != k[:-1]
    return srt[first | last]


def _hull_euler_3d(acc: _Accumulators, labels, present, sp) -> tuple[np.ndarray, np.ndarray]:
    """Convex-hull volume and Euler number of each 3D object (a loop over objects)."""
    from scipy.spatial import ConvexHull, QhullError
    from skimage.measure import euler_number

    n = acc.n
    hull = np.zeros(n)
    euler = np.ones(n)
    if acc.boundary_pts:
        rows = np.concatenate([r for r, _ in acc.boundary_pts])
        pts = np.concatenate([p for _, p in acc.boundary_pts])
        order = np.argsort(rows, kind="stable")
        rows, pts = rows[order], pts[order]
        cuts = np.flatnonzero(np.diff(rows)) + 1
        corners = np.array(np.meshgrid(*([[-0.5, 0.5]] * 3), indexing="ij")).reshape(3, -1).T
        for seg_rows, seg in zip(np.split(rows, cuts), np.split(pts, cuts), strict=True):
            r = int(seg_rows[0])
            seg = _row_extremes(seg)
            cloud = ((seg[:, None, :] + corners[None]) * sp).reshape(-1, 3)
            try:
                hull[r] = ConvexHull(cloud).volume
            except (QhullError, ValueError):
                hull[r] = 0.0
    for r in range(n):
        lo, hi = acc.bmin[r], acc.bmax[r] + 1
        crop = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] == present[r]
        euler[r] = euler_number(np.pad(crop, 1), connectivity=3)
    return hull, euler


def _offset(strides: tuple[int, ...], delta) -> int:
    return int(sum(d * s for d, s in zip(delta, strides, strict=True)))


def _measure_band(
    a0, a1, labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov, acc,
    ndimage,
) -> None:  # fmt: skip
    nd = labels.ndim
    shape = labels.shape
    # Crop: the band's rows plus a margin, the other axes cut to the objects (plus margin).
    c0, c1 = max(0, a0 - margin[0]), min(shape[0], a1 + margin[0])
    sel = rows_img[c0:c1] >= 0
    region = [slice(c0, c1)]
    for ax in range(1, nd):
        hit = np.flatnonzero(sel.any(axis=tuple(a for a in range(nd) if a != ax)))
        if hit.size == 0:
            return
        lo = max(0, int(hit[0]) - margin[ax])
        hi = min(shape[ax], int(hit[-1]) + 1 + margin[ax])
        region.append(slice(lo, hi))
    region = tuple(region)
    origin = np.array([s.start for s in region])
    lab = np.pad(labels[region], 1)
    rows = np.pad(rows_img[region], 1, constant_values=-1)
    core = [slice(a0 - c0 + 1, a1 - c0 + 1)] + [slice(1, lab.shape[ax] - 1) for ax in range(1, nd)]
    core = tuple(core)
    it = lab.itemsize
    strides = tuple(s // it for s in lab.strides)
    flat_lab = lab.reshape(-1)
    flat_rows = rows.reshape(-1)

    # Object pixels of the band core, grouped by object.
    core_sel = np.zeros(lab.shape, bool)
    core_sel[core] = rows[core] >= 0
    p = np.flatnonzero(core_sel)
    prow = flat_rows[p]
    seg = _Segments.of(prow)
    p = p[seg.order]
    prow = prow[seg.order]
    seg = _Segments(np.arange(p.size), seg.uniq, seg.starts, seg.sizes)
    u = seg.uniq
    local = np.unravel_index(p, lab.shape)
    gcoord = [local[ax] - 1 + origin[ax] for ax in range(nd)]
    for ax in range(nd):
        acc.bmin[u, ax] = np.minimum(acc.bmin[u, ax], np.minimum.reduceat(gcoord[ax], seg.starts))
        acc.bmax[u, ax] = np.maximum(acc.bmax[u, ax], np.maximum.reduceat(gcoord[ax], seg.starts))

    nb0 = _Neighbours(p, strides)

    # Boundary pixels (a neighbour, diagonals included, with another value; outside = 0).
    if nd == 2:
        # The 8 neighbours' labels give the boundary, the Crofton crossings and the Euler number.
        plab = flat_lab[p]
        diag = np.float32(1.0 / math.sqrt(2.0))
        weight = np.zeros(p.size, np.float32)
        inner = np.ones(p.size, bool)
        same = {}
        keys = {(0, 1): ((1, 1), (1, -1)), (1, 0): ((0, 1), (0, -1)),
                (1, 1): ((0, 1, 1, 1), (0, -1, 1, -1)), (1, -1): ((0, 1, 1, -1), (0, -1, 1, 1))}  # fmt: skip
        for delta, w in (((0, 1), 1.0), ((1, 0), 1.0), ((1, 1), diag), ((1, -1), diag)):
            n1 = nb0.read(flat_lab, keys[delta][0]) == plab
            n2 = nb0.read(flat_lab, keys[delta][1]) == plab
            same[delta], same[(-delta[0], -delta[1])] = n1, n2
            inner &= n1
            inner &= n2
            weight += np.float32(w) * ((~n1).astype(np.float32) + ~n2)
        is_b = ~inner
        bp, brow, blab = p[is_b], prow[is_b], plab[is_b]
        acc.crofton += np.bincount(brow, weight[is_b], minlength=acc.n)
        acc.euler += np.bincount(brow, _euler_quads({k: v[is_b] for k, v in same.items()}), acc.n)
        # Convex hull support values of the pixel squares, about the centroid: the maximum
        # and minimum projections on K/2 axes give the K directions.
        half = _HULL_DIRECTIONS // 2
        by = (np.unravel_index(bp, lab.shape)[0] - 1 + origin[0]) * sp[0] - centroid[brow, 0]
        bx = (np.unravel_index(bp, lab.shape)[1] - 1 + origin[1]) * sp[1] - centroid[brow, 1]
        if bp.size:
            bseg = _Segments.of(brow, presorted=True)  # p, hence brow, is sorted
            bu = bseg.uniq
            for k in range(half):
                t = k * np.pi / half
                cy, cx = math.sin(t), math.cos(t)
                pad = 0.5 * (sp[0] * abs(cy) + sp[1] * abs(cx))
                proj = by * cy + bx * cx
                hi = np.maximum.reduceat(proj, bseg.starts) + pad
                lo = pad - np.minimum.reduceat(proj, bseg.starts)
                acc.support[bu, k] = np.maximum(acc.support[bu, k], hi)
                acc.support[bu, k + half] = np.maximum(acc.support[bu, k + half], lo)
    else:
        mx = ndimage.maximum_filter(lab, size=3, mode="constant", cval=0).reshape(-1)[p]
        mn = ndimage.minimum_filter(lab, size=3, mode="constant", cval=0).reshape(-1)[p]
        is_b = (mx != flat_lab[p]) | (mn != flat_lab[p])
        bp, brow = p[is_b], prow[is_b]
        blab = flat_lab[bp]
        faces = np.zeros(bp.size)
        for ax in range(3):
            delta = [0, 0, 0]
            delta[ax] = 1
            o = _offset(strides, delta)
            area = float(np.prod(np.delete(sp, ax)))
            faces += area * ((flat_lab[bp + o] != blab).astype(float) + (flat_lab[bp - o] != blab))
        acc.crofton += np.bincount(brow, faces, minlength=acc.n)
        bl = np.unravel_index(bp, lab.shape)
        pts = np.stack([bl[ax] - 1 + origin[ax] for ax in range(3)], axis=1).astype(np.float64)
        acc.boundary_pts.append((brow, pts))

    # Radial position: 0 at the centroid, 1 at the rim of the object's equivalent ellipse(-oid).
    k = 4.0 if nd == 2 else 5.0
    dvec = [gcoord[ax] * sp[ax] - centroid[prow, ax] for ax in range(nd)]
    r2 = np.zeros(p.size)
    for a in range(nd):
        for b in range(a, nd):
            w = inv_cov[prow, a, b] * (1.0 if a == b else 2.0)
            r2 += w * dvec[a] * dvec[b]
    r2 /= k
    shell = np.minimum((np.sqrt(r2) * N_SHELLS).astype(np.int64), N_SHELLS - 1)
    shell_idx = prow.astype(np.int64) * N_SHELLS + shell
    acc.shell_n += np.bincount(shell_idx, minlength=acc.n * N_SHELLS).reshape(acc.n, N_SHELLS)

    # Ring: background pixels within RING_WIDTH of an object, given to the nearest-ish object.
    size = tuple(2 * int(w) + 1 for w in ring_w)
    grown = ndimage.maximum_filter(rows + 1, size=size, mode="constant", cval=0)
    ring_sel = np.zeros(lab.shape, bool)
    ring_sel[core] = (lab[core] == 0) & (grown[core] > 0)
    rp = np.flatnonzero(ring_sel)
    rrow = grown.reshape(-1)[rp] - 1
    rseg = _Segments.of(rrow)
    rp = rp[rseg.order]
    rseg = _Segments(np.arange(rp.size), rseg.uniq, rseg.starts, rseg.sizes)

    levels = _texture_levels(p, prow, local, seg, nb0, lab.shape, sig)
    crop_region = tuple(region)
    for ch, channel in enumerate(channels):
        raw = np.pad(channel[crop_region], 1, mode="edge")
        flat = raw.reshape(-1)
        v = flat[p]
        acc.obj[ch].add(seg, v)
        acc.ring[ch].add(rseg, flat[rp])
        acc.shell_sum[ch] += np.bincount(
            shell_idx, v.astype(np.float64), minlength=acc.n * N_SHELLS
        ).reshape(acc.n, N_SHELLS)
        lo, hi = ranges[ch]
        norm = (raw - np.float32(lo)) * np.float32(1.0 / (hi - lo))
        _texture(norm, levels, sp, sig, acc, ch, ndimage)


class _Neighbours:
    """Reads a flat array at ``p + offset`` for the face and edge neighbours of pixels ``p``
    without building an index array per offset: ``flat[offset - low:].take(p + low)``."""

    def __init__(self, p: np.ndarray, strides: tuple[int, ...]):
        nd = len(strides)
        self.offsets: dict[tuple, int] = {}
        for a in range(nd):
            self.offsets[(a, 1)] = strides[a]
            self.offsets[(a, -1)] = -strides[a]
            for b in range(a + 1, nd):
                for sa in (1, -1):
                    for sb in (1, -1):
                        self.offsets[(a, sa, b, sb)] = sa * strides[a] + sb * strides[b]
        self.low = min(self.offsets.values())
        self.q = p + self.low  # >= 0: the arrays are padded by one pixel

    def read(self, flat: np.ndarray, key: tuple) -> np.ndarray:
        return flat[self.offsets[key] - self.low :].take(self.q)


@dataclass(frozen=True, eq=False)
class _Level:
    """Where a pyramid level's filter responses are read: its subsampling factor per axis, the
    flat indices (into the level's padded array) of the sampled object pixels and of their
    neighbours, their grouping by object, and which object pixels (of the band) they are."""

    factor: np.ndarray
    idx: np.ndarray
    nb: _Neighbours
    seg: _Segments
    pick: np.ndarray | None  # indices into the band's object pixels; None: all of them


def _texture_levels(p, prow, local, seg, nb0, shape: tuple[int, ...], sig) -> list[_Level]:
    """Full resolution for the first scale; the others on a grid subsampled by 2 (along the axes
    where the second scale is at least 1.5 pixels), read at the object pixels on that grid (a
    quarter of them in 2D) -- or at all pixels of an object that has none on it (tiny ones)."""
    nd = len(shape)
    levels = [_Level(np.ones(nd, int), p, nb0, seg, None)]
    if len(SCALES) == 1:
        return levels
    f = np.where(sig[1] >= 1.5, 2, 1).astype(int)
    on_grid = np.ones(p.size, bool)
    for a in range(nd):
        if f[a] > 1:
            on_grid &= local[a] % f[a] == 0
    if p.size:
        hits = np.add.reduceat(on_grid.astype(np.int64), seg.starts)
        on_grid |= np.repeat(hits == 0, seg.sizes)
    pick = np.flatnonzero(on_grid)
    cshape = [(shape[a] - 1) // f[a] + 1 + 2 for a in range(nd)]  # g[::f] padded by 1
    cstrides = tuple(int(np.prod(cshape[a + 1 :])) for a in range(nd))
    cp = np.zeros(pick.size, np.intp)
    for a in range(nd):
        c = np.minimum((local[a][pick] + f[a] // 2) // f[a], (shape[a] - 1) // f[a]) + 1
        cp += c * cstrides[a]
    sub = _Segments.of(prow[pick], presorted=True)
    levels.append(_Level(f, cp, _Neighbours(cp, cstrides), sub, pick))
    return levels


def _add_sums(acc, ch: int, j: int, seg: _Segments, f: np.ndarray) -> None:
    u = seg.uniq
    acc.tex_sum[ch, j, u] += np.add.reduceat(f, seg.starts, dtype=np.float64)
    acc.tex_sq[ch, j, u] += np.add.reduceat(f * f, seg.starts, dtype=np.float64)
    if ch == 0:
        acc.tex_n[j, u] += seg.sizes


def _texture(norm, levels: list[_Level], sp, sig, acc, ch, ndimage) -> None:
    """Filter bank (Gaussian, LoG, gradient magnitude, Hessian eigenvalues, DoG) at each scale.

    Cascaded Gaussians; the scales after the first on a pyramid level (see _texture_levels);
    derivatives by central differences at the sampled object pixels only."""
    nd = norm.ndim
    step = sp / float(sp.min())  # pixel size along each axis, in units of the finest axis
    g = ndimage.gaussian_filter(norm, sig[0], mode="nearest", truncate=3.0)
    fine = g.reshape(-1)
    prev = sig[0]
    j = 0
    smooth_at = {}
    for s_idx, s in enumerate(SCALES):
        lv = levels[min(s_idx, len(levels) - 1)]
        lstep = step * lv.factor
        if s_idx == 1:
            g = np.pad(g[tuple(slice(0, None, int(k)) for k in lv.factor)], 1, mode="edge")
            prev = sig[0] / lv.factor
        if s_idx > 0:
            target = sig[s_idx] / lv.factor
            extra = np.sqrt(np.maximum(target**2 - prev**2, 0))
            g = ndimage.gaussian_filter(g, extra, mode="nearest", truncate=3.0)
            prev = target
        flat = g.reshape(-1)
        center = flat.take(lv.idx)
        smooth_at[s] = (center, s_idx)
        c2 = 2 * center
        grad2 = np.zeros(lv.idx.size, np.float32)
        hdiag = []
        hoff = {}
        for a in range(nd):
            plus, minus = lv.nb.read(flat, (a, 1)), lv.nb.read(flat, (a, -1))
            ga = (plus - minus) * np.float32(0.5 / lstep[a])
            grad2 += ga * ga
            hdiag.append((plus + minus - c2) * np.float32(1.0 / lstep[a] ** 2))
            for b in range(a + 1, nd):
                mixed = lv.nb.read(flat, (a, 1, b, 1)) - lv.nb.read(flat, (a, 1, b, -1))
                mixed -= lv.nb.read(flat, (a, -1, b, 1))
                mixed += lv.nb.read(flat, (a, -1, b, -1))
                mixed *= np.float32(0.25 / (lstep[a] * lstep[b]))
                hoff[(a, b)] = mixed
        # Object-level orientation: the summed square of the Hessian (H.H) per object.
        hm = [[hdiag[a] if a == b else hoff[(min(a, b), max(a, b))] for b in range(nd)]
              for a in range(nd)]  # fmt: skip
        k = 0
        for a in range(nd):
            for b in range(a, nd):
                prod = sum(hm[a][c] * hm[c][b] for c in range(nd))
                acc.tensor[ch, s_idx, k, lv.seg.uniq] += np.add.reduceat(
                    prod, lv.seg.starts, dtype=np.float64
                )
                k += 1
        s2 = np.float32(s * s)
        _add_sums(acc, ch, j, lv.seg, center)
        _add_sums(acc, ch, j + 1, lv.seg, s2 * sum(hdiag))
        _add_sums(acc, ch, j + 2, lv.seg, np.float32(s) * np.sqrt(grad2))
        for k, e in enumerate(_sym_eigvals(hdiag, hoff)):
            _add_sums(acc, ch, j + 3 + k, lv.seg, s2 * e)
        j += 3 + nd
    for s in _dog_scales():
        (a_val, a_lvl), (b_val, b_lvl) = smooth_at[s], smooth_at[2 * s]
        lv = levels[min(b_lvl, len(levels) - 1)]
        if a_lvl != b_lvl:  # the finer one read at the coarser level's pixels
            a_val = fine.take(levels[0].idx[lv.pick])
        _add_sums(acc, ch, j, lv.seg, a_val - b_val)
        j += 1


def _sym_eigvals(diag: list[np.ndarray], off: dict) -> list[np.ndarray]:
    """Eigenvalues, largest first, of symmetric 2x2 / 3x3 matrices given per pixel (closed form
    in 2D; numpy's solver in 3D)."""
    if len(diag) == 2:
        a, c, b = diag[0], diag[1], off[(0, 1)]
        mid = 0.5 * (a + c)
        rad = np.sqrt(0.25 * (a - c) ** 2 + b * b)
        return [mid + rad, mid - rad]
    # Smith's closed form for symmetric 3x3 matrices (float64 for the cancellations).
    a, d, f = (x.astype(np.float64) for x in diag)
    b, c, e = (off[k].astype(np.float64) for k in ((0, 1), (0, 2), (1, 2)))
    q = (a + d + f) / 3
    p1 = b * b + c * c + e * e
    p = np.sqrt(((a - q) ** 2 + (d - q) ** 2 + (f - q) ** 2 + 2 * p1) / 6)
    safe = np.where(p > 0, p, 1.0)
    ba, bd, bf = (a - q) / safe, (d - q) / safe, (f - q) / safe
    bb, bc, be = b / safe, c / safe, e / safe
    det = ba * (bd * bf - be * be) - bb * (bb * bf - be * bc) + bc * (bb * be - bd * bc)
    phi = np.arccos(np.clip(det / 2, -1.0, 1.0)) / 3
    l1 = q + 2 * p * np.cos(phi)
    l3 = q + 2 * p * np.cos(phi + 2 * np.pi / 3)
    l2 = 3 * q - l1 - l3
    return [l1.astype(np.float32), l2.astype(np.float32), l3.astype(np.float32)]

"""Per-object measurements: the table, its columns, and ``measure_objects``, which computes the
families a set of columns needs (core/objects/measure_registry.py) in one band pass
(core/objects/measure_band.py) and the families computed after it (context...).

~530 lines: ``measure_objects`` and its two band passes (in memory: whole-image accumulators
on threads; larger than memory: objects finished group by group), which share the pre-pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, in_background
from svetlana.core.objects.measure_band import (
    Accumulators,
    Want,
    measure_band,
)
from svetlana.core.objects.measure_lazy import (
    _check_lazy,
    _is_lazy,
    _lazy_channels,
    _Mapped,
    _present_lazy,
    _sparse_rows,
    _Strips,
    measure_tiles,
)
from svetlana.core.objects.measure_registry import FAMILIES, SCALES, FamilyInput, Plan, layout, plan
from svetlana.core.objects.measure_stats import clean_channel as _clean_channel
from svetlana.core.objects.measure_stats import coordinate_moments
from svetlana.core.objects.measure_stats import robust_range as _robust_range
from svetlana.core.objects.measure_texture import filter_reach
from svetlana.core.objects.stains import is_brightfield_rgb, stain_channels

log = logging.getLogger(__name__)

# Bump when the feature set or a formula changes: cached tables of another version are recomputed.
# 5: an object's ring, filter bank and context the same whichever objects are measured with it
# (training measures the labelled ones, prediction all); 4: the neighbours' means
# (core/objects/neighbours.py); 3: the context of core/objects/families.py and the stains of
# core/objects/stains.py
VERSION = 5
RING_WIDTH = 3  # pixels (finest axis) of background around each object
_BAND_PIXELS = 1 << 20  # pixels per processed band (memory stays ~ tens of MB)


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


def channel_prefixes(channels: int, stains: bool = False) -> list[str]:
    """Column prefix of each measured channel: ``ch0_``..., then the stains (RGB brightfield)."""
    from svetlana.core.objects.stains import PREFIXES

    return [f"ch{c}_" for c in range(channels)] + (list(PREFIXES) if stains else [])


def column_names(
    ndim: int, channels: int, physical: bool = False, stains: bool = False, neighbours: bool = True
) -> tuple[tuple, tuple]:
    """Names and units of every column for a ``ndim``-D image with ``channels`` channels
    (``stains``: an RGB brightfield image, whose stains are measured as channels too)."""
    cols = layout(ndim, channel_prefixes(channels, stains), physical)
    names, units = tuple(c.name for c in cols), tuple(c.unit for c in cols)
    if neighbours:  # the neighbours' means of every column above (core/objects/neighbours.py)
        from svetlana.core.objects.neighbours import neighbour_names

        more = neighbour_names(names, units)
        names, units = names + tuple(more[0]), units + tuple(more[1])
    return names, units


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


# ---- the measurement -------------------------------------------------------------------------


def measure_objects(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    ids: np.ndarray | list[int] | None = None,
    spacing: tuple[float, ...] | None = None,
    columns: Sequence[str] | None = None,
    mask_ids: np.ndarray | None = None,
    mask_centroids: np.ndarray | None = None,
    ranges: Sequence[tuple[float, float]] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Measurements:
    """Measure every object of ``labels`` (or only ``ids``) on ``image`` (channel first).

    ``mask_ids``: every object id of the mask, when the caller knows them (its checked object
    table): spares a pass over the mask to find them; ``mask_centroids``: their centroids (in
    pixels, rows of ``mask_ids``; the table's), which spares the neighbours' pass. ``ranges``: each channel's (and stain's)
    robust range, when ``image`` is a crop of a larger image (``channel_ranges`` of the whole):
    its values are then on the whole image's scale (in memory only).

    ``columns``: compute only these columns, and of the families (on the channels) that give
    them only the parts they need (one moment order, one filter-bank response...); the result
    has these columns in table order, and the base columns of the neighbours' means asked for
    (names this image has no column for are left out, for the caller to report). Values are
    the same as in a full measurement.

    Cost grows with the pixels of the measured objects (bands of the image around them), not
    with the image. See the README (*Object measurements*) for every column. The neighbours'
    means (``nb_`` columns, core/objects/neighbours.py) are added to the base measurements when
    ``columns`` is None or names one of them.
    """
    from functools import partial

    from svetlana.core.objects.neighbours import PREFIX, measure_with_neighbours

    base = nb_of = None
    if columns is not None:  # an nb_ column needs its base column, on the neighbours too
        base = list(dict.fromkeys(c[len(PREFIX) :] if c.startswith(PREFIX) else c for c in columns))
        nb_of = [c[len(PREFIX) :] for c in columns if c.startswith(PREFIX)]
        if not nb_of:
            return _measure_base(
                image, labels, ids=ids, spacing=spacing, columns=base, mask_ids=mask_ids,
                ranges=ranges, progress=progress, cancel=cancel,
            )  # fmt: skip
    lazy = _is_lazy(image) or _is_lazy(labels)
    image, labels, spacing = (_check_lazy if lazy else _check)(image, labels, spacing)
    if lazy:  # the neighbours' centroids and the measurement read the same strips of chunks
        labels = _Strips(labels)
    measure = partial(_measure_base, columns=base, mask_ids=mask_ids, ranges=ranges)
    known = None
    if mask_ids is not None and mask_centroids is not None:
        known = (np.asarray(mask_ids, np.int64), np.asarray(mask_centroids, np.float64))
    return measure_with_neighbours(
        measure, image, labels, ids=ids, spacing=spacing, progress=progress, cancel=cancel,
        centroids=known, nb_of=nb_of,
    )  # fmt: skip


def _measure_base(
    image, labels, *, ids=None, spacing=None, columns=None, mask_ids=None, ranges=None,
    progress=None, cancel=None,
) -> Measurements:  # fmt: skip
    """The measurements of the registry's families (every column but the neighbours' means)."""
    from svetlana.core.objects.scipy_parts import load_in_background

    load_in_background()  # (the Gaussians and the k-d tree, while the pre-pass runs)
    ndimage = _Ndimage()
    lazy = _is_lazy(image) or _is_lazy(labels)  # larger than memory: read band by band
    if lazy:
        image, labels, spacing = _check_lazy(image, labels, spacing)
    else:
        image, labels, spacing = _check(image, labels, spacing)
    nd, nchan = labels.ndim, image.shape[0]
    stains = is_brightfield_rgb(image)
    prefixes = channel_prefixes(nchan, stains)
    todo = plan(layout(nd, prefixes, spacing is not None), columns)
    after = [f.name for f in FAMILIES.values() if f.compute is not None and todo.has(f.name)]
    means = [c for f in after if FAMILIES[f].needs_means for c in todo.channels(f)]
    want = Want.of(todo, means, nd)
    load = sorted(set(want.channels) | set(todo.channels(*after)))  # the channels read
    if lazy:
        if isinstance(labels, _Strips):
            labels.clear()  # a pass before (the neighbours' centroids) kept its last strips
        present = _present_lazy(labels, ids, cancel)
        if present.size == 0:
            return _empty(present, todo)
        channels, ranges = _lazy_channels(image, stains, load)
        labels = labels if isinstance(labels, _Strips) else _Strips(labels)
        to_rows = _sparse_rows(present)
        rows_img = _Mapped(labels, to_rows)
    else:
        present, lut, to_rows = _dense_lut(labels, ids if ids is not None else mask_ids)
        if present.size == 0:
            return _empty(present, todo)
        given = ranges

        def prepare() -> tuple[list, list]:
            chans = [_clean_channel(image[c]) if c in load else None for c in range(nchan)]
            if stains:
                need = any(c >= nchan for c in load)
                chans += stain_channels(image) if need else [None] * (len(prefixes) - nchan)
            if given is not None:
                return chans, [
                    tuple(r) if ch is not None else None for r, ch in zip(given, chans, strict=True)
                ]
            return chans, [_robust_range(ch) if ch is not None else None for ch in chans]

        # The channels (float32 copies, their ranges) on a thread while this one maps the mask
        # to rows and takes the coordinate moments (numpy loops both: ~0.1 s less on 4096²).
        channels_ready = in_background(prepare, "measure-prepare")
        rows_img = to_rows(labels) if lut is None else lut[labels]
    n = int(present.size)
    sp = np.asarray(spacing if spacing is not None else (1.0,) * nd, np.float64)
    finest = float(sp.min())
    if cancel is not None:
        cancel.raise_if_cancelled()

    # Pre-pass: per-object moments of the coordinates (centroid, covariance) for the radial
    # layout; a lookup over the mask and a few bincounts over the runs of each band.
    count = np.zeros(n)
    mom1 = np.zeros((nd, n))
    mom2 = np.zeros((nd, nd, n))
    axis0_count = np.zeros(labels.shape[0], np.int64)
    step0 = max(1, _BAND_PIXELS // max(1, int(np.prod(labels.shape[1:]))))
    first = np.full(n if lazy else 0, np.iinfo(np.int64).max, np.int64)  # bands with pixels
    last = np.zeros(n if lazy else 0, np.int64)
    for a0 in range(0, labels.shape[0], step0):
        band = rows_img[a0 : a0 + step0]
        runs = coordinate_moments(band, a0, count, mom1, mom2, axis0_count[a0 : a0 + step0])
        if lazy and runs.size:  # the bands an object spans: its group is finished after its last
            hit = np.unique(runs)
            first[hit] = np.minimum(first[hit], a0 // step0)
            last[hit] = a0 // step0
    if not lazy:
        channels, ranges = channels_ready()
    mom1 *= sp[:, None]  # pixel units to physical
    mom2 *= (sp[:, None] * sp[None, :])[..., None]
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
    # Far enough that an object's ring and filter responses do not depend on the crop.
    margin = np.maximum(2 * ring_w, filter_reach(sig)) + 2

    band_pass = want.shape or want.box or bool(want.channels)
    near = None
    if not lazy and ids is None and todo.has("context") and n >= 2:
        from svetlana.core.objects.families import context_nearest

        near = in_background(lambda: context_nearest(centroid), "context")  # (meanwhile)
    message = f"measuring {n} objects"
    if lazy and band_pass:  # a band's own accumulators, both cores at any object count
        # The same bands as in memory: the filter bank's coarser scales sample a grid that
        # starts at each band's corner, so other bands would give (slightly) other values.
        bands = _bands(axis0_count, ring_w[0], labels.shape)
        rest = (channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov)
        return _measure_lazy_tiles(
            todo, want, means, bands, labels, to_rows, rest, ndimage, progress, cancel,
            message, present, ids is None, count, centroid, cov, first, last, step0, prefixes,
            columns,
        )  # fmt: skip
    accs = _band_pass(
        labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov,
        axis0_count, n, nd, want, band_pass, ndimage, progress, cancel, message,
    )  # fmt: skip
    acc = accs[0]
    for other in accs[1:]:
        acc.merge(other)
    every = ids is None  # (mask_ids, when given, are every object of the mask)
    x = FamilyInput(
        labels, channels, ranges, prefixes, [], present, every, count, centroid, cov, sp,
        context_nearest=near,
    )  # fmt: skip
    extra = _after_pass(todo, x, acc)
    values = acc.finish(todo, prefixes, nd, sp, count, cov, labels, present, extra)
    return Measurements(present, todo.names, todo.units, values)


class _Ndimage:
    """scipy.ndimage, imported when first used (the 2D band pass never does: its Gaussians are
    measure_texture.gaussian_filter's)."""

    def __getattr__(self, name: str):
        from scipy import ndimage

        return getattr(ndimage, name)


def _measure_lazy_tiles(
    todo, want, means, bands, labels, to_rows, rest, ndimage, progress, cancel, message,
    present, every, count, centroid, cov, first, last, step, prefixes, columns=None,
) -> Measurements:  # fmt: skip
    """A lazy image's band pass (``measure_tiles``) with its objects finished group by group
    into the table, then the families computed after the pass. Only the ``columns`` asked for
    (None: all) are kept of the families' columns: a whole slide's table is the largest
    thing held (416,025 objects x 160 columns: 266 MB where a forest asked for 51)."""
    from svetlana.core.objects.measure_band import _F32_MAX

    n, nd = int(present.size), labels.ndim
    channels, ranges, sp = rest[0], rest[1], rest[2]
    asked = None if columns is None else set(columns)
    keep = [j for j, name in enumerate(todo.names) if asked is None or name in asked]
    kept = slice(None) if len(keep) == len(todo.names) else np.asarray(keep, np.intp)
    names = tuple(todo.names[j] for j in keep)
    values = np.zeros((n, len(keep)), np.float32)
    after = {c.name for c in todo.columns if FAMILIES[c.family].compute is not None}
    mean_of = {c: np.zeros(n) for c in means}

    def finish(rows: np.ndarray, acc: Accumulators) -> None:
        placeholder = {name: np.zeros(rows.size) for name in after}
        values[rows] = acc.finish(
            todo, prefixes, nd, sp, count[rows], cov[rows], labels, present[rows], placeholder
        )[:, kept]
        for c, out in mean_of.items():
            out[rows] = acc.mean_intensity(c, count[rows])

    workers = band_workers(len(bands), 0)
    measure_tiles(
        bands, labels, to_rows, rest, ndimage, workers, progress, cancel, message, want=want,
        n=n, first=first, last=last, step=step, finish=finish,
    )  # fmt: skip
    if after:
        x = FamilyInput(
            labels, channels, ranges, prefixes, [], present, every, count, centroid, cov, sp
        )
        extra = _after_pass(todo, x, _KnownMeans(mean_of))
        for j, name in enumerate(names):
            if name in extra:
                v = np.nan_to_num(extra[name], nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
                values[:, j] = np.clip(v, -_F32_MAX, _F32_MAX)
    return Measurements(present, names, tuple(todo.units[j] for j in keep), values)


class _KnownMeans:
    """The objects' mean intensities kept as groups were finished (``_after_pass`` reads them)."""

    def __init__(self, means: dict[int, np.ndarray]):
        self.means = means

    def mean_intensity(self, c: int, count: np.ndarray) -> np.ndarray:
        return self.means[c]


def _band_pass(
    labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov, axis0_count,
    n, nd, want, band_pass, ndimage, progress, cancel, message,
) -> list[Accumulators]:  # fmt: skip
    """The band pass of an image in memory: bands on threads (each with whole-image
    accumulators, up to ``_THREADED_MAX_OBJECTS``), their accumulators returned."""
    bands = _bands(axis0_count, ring_w[0], labels.shape)
    fixed = (labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov)
    workers = band_workers(len(bands), n) if band_pass else 1
    parts = _split_bands(bands, axis0_count, workers)
    accs = [Accumulators(n, nd, want, ranges) for _ in parts]
    if not band_pass:
        pass  # shape-free, channel-free families only (context): nothing to gather per band
    elif workers == 1:
        for done, (a0, a1) in enumerate(bands, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            measure_band(a0, a1, *fixed, accs[0], ndimage)
            if progress is not None:
                progress(Progress("measure", done, len(bands), message))
    else:
        fixeds = [fixed for _ in parts]
        _measure_in_threads(parts, accs, fixeds, ndimage, progress, cancel, message)
    return accs


def channel_ranges(image) -> list[tuple[float, float]]:
    """The robust range of every channel (and stain) of a channel-first image, numpy or lazy,
    from a regular subsample of at most 2 million pixels (``measure_objects(ranges=)``)."""
    spatial = image.shape[1:]
    step = max(1, int(np.ceil((int(np.prod(spatial)) / 2_000_000) ** (1 / len(spatial)))))
    sub = image[(slice(None),) + (slice(None, None, step),) * len(spatial)]
    sub = np.asarray(sub.compute(scheduler="synchronous") if hasattr(sub, "compute") else sub)
    ranges = [_robust_range(_clean_channel(np.asarray(ch, np.float32))) for ch in sub]
    if is_brightfield_rgb(image):
        ranges += [_robust_range(ch) for ch in stain_channels(sub)]
    return ranges


def _empty(present: np.ndarray, todo: Plan) -> Measurements:
    return Measurements(present, todo.names, todo.units, np.zeros((0, len(todo.names)), np.float32))


def _after_pass(todo: Plan, x: FamilyInput, acc: Accumulators) -> dict[str, np.ndarray]:
    """The columns of the families computed after the band pass (context, and any registered
    one), each given the prefixes of the channels it is wanted on."""
    from dataclasses import replace

    cols: dict[str, np.ndarray] = {}
    for fam in FAMILIES.values():
        if fam.compute is None or not todo.has(fam.name):
            continue
        chans = todo.channels(fam.name)
        means = {}
        if fam.needs_means and x.every:  # from the band pass (else the family sums the mask)
            means = {c: acc.mean_intensity(c, x.count) for c in chans}
        prefixes = [x.channel_prefixes[c] for c in chans]
        cols.update(fam.compute(replace(x, prefixes=prefixes, mean_intensity=means)))
    return cols


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


def _measure_in_threads(parts, accs, fixeds, ndimage, progress, cancel, message) -> None:
    """Each part of the bands on its own thread, into its own accumulators; progress and
    cancelling stay on the calling thread."""
    import threading
    from functools import partial

    from svetlana.core.jobs import run_threads

    total = sum(len(p) for p in parts)
    done = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def run(part, acc, fixed) -> None:
        for a0, a1 in part:
            if stop.is_set():
                return
            measure_band(a0, a1, *fixed, acc, ndimage)
            with lock:
                done[0] += 1

    def report() -> None:
        if progress is not None:
            progress(Progress("measure", done[0], total, message))

    tasks = [partial(run, *job) for job in zip(parts, accs, fixeds, strict=True)]
    run_threads(tasks, cancel=cancel, stop=stop, report=report, name="measure")


def _split_bands(bands, axis0_count: np.ndarray, workers: int) -> list[list[tuple[int, int]]]:
    """Consecutive runs of bands, one per thread, with about as many object pixels each (the
    work follows them; a band's fixed costs count as a share): the same split for the same
    mask, so the merged sums are the same at every run."""
    if workers <= 1 or len(bands) <= workers:
        return [bands[k : k + 1] for k in range(len(bands))] if workers > 1 else [bands]
    work = np.array([axis0_count[a0:a1].sum() for a0, a1 in bands], np.float64)
    work += work.mean() * 0.25 + 1.0
    cum = np.cumsum(work)
    targets = cum[-1] * np.arange(1, workers) / workers
    cuts = np.abs(cum[None, :] - targets[:, None]).argmin(1) + 1  # bands before each cut
    cuts = np.clip(cuts, np.arange(1, workers), len(bands) - workers + np.arange(1, workers))
    edges = [0, *(int(c) for c in cuts), len(bands)]
    return [bands[edges[k] : edges[k + 1]] for k in range(workers)]


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

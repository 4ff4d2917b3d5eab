"""Lazy (larger than memory) inputs of the measurement: the same pass, read a band at a time.

~470 lines: the strips of chunks a band reads, the band plan that starts on the in-memory
crop's rows, and the per-group accumulators finished and freed after their last band — one
concept (streaming the band pass) whose parts share the strips' state.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.objects.measure_stats import clean_channel as _clean_channel
from svetlana.core.objects.measure_stats import robust_range as _robust_range
from svetlana.core.objects.stains import stain_channels

log = logging.getLogger(__name__)

_BAND_PIXELS = 1 << 20  # pixels per band read to find the objects (times 16)


def _is_lazy(a: Any) -> bool:
    """A dask or zarr array (read on demand), not a numpy array."""
    return not isinstance(a, np.ndarray) and hasattr(a, "chunks") and hasattr(a, "shape")


def _as_dask(a: Any):
    import dask.array as da

    if isinstance(a, _Strips):  # a lazy mask already read through strips (measure_objects)
        return a
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


# Read the next strip on a thread while this one is measured: off, as the two band threads
# already overlap one's reading with the other's measuring (20,000^2: the same CPU seconds,
# 50 MB more at the peak with it on).
_READ_AHEAD = False


class _Strips:
    """A lazy array read a strip of chunks (all chunks of one chunk row along axis 0) at a time:
    a chunk is decompressed once per pass however thin the bands read from it (a 20,000-wide
    image read in bands of 52 rows decompressed each 1024-row chunk 20 times). The last ``keep``
    strips are kept (optionally the next one read ahead on a thread: ``_READ_AHEAD``), all but
    the newest only as their last rows (three times the tallest read so far: what the bands
    still under way can ask for; rows before them are read again). At 20,000 wide that keeps
    324 of an older strip's 1,024 rows: ~85 MB less for a mask and an image channel.
    Thread-safe: zarr releases the GIL while decompressing, so one band thread reads while
    the other measures."""

    def __init__(self, data, keep: int = 2, labels: bool = True, channel: int | None = None):
        self.data, self.labels, self.channel = data, labels, channel
        lead = () if channel is None else (channel,)
        self._lead = lead
        self.shape = tuple(int(s) for s in data.shape[len(lead) :])
        self.ndim, self.dtype = len(self.shape), data.dtype
        self.chunks = data.chunks[len(lead) :]
        self._bounds = np.cumsum((0, *(int(c) for c in self.chunks[0])))
        self._keep = keep
        self._span = 0  # the tallest read so far
        self.reread = 0  # reads before an older strip's kept rows
        self._cache: dict[int, tuple[np.ndarray, int]] = {}  # strip -> (its rows from, from)
        self._loading: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._ahead: threading.Thread | None = None

    def _strip(self, k: int, ahead: bool = True) -> tuple[np.ndarray, int]:
        """Strip ``k``'s kept rows and the first of them (within the strip)."""
        with self._lock:
            if k in self._cache:
                self._cache[k] = self._cache.pop(k)  # most recently used last
                got, wait = self._cache[k], None
            elif k in self._loading:
                got, wait = None, self._loading[k]
            else:
                got, wait = None, None
                self._loading[k] = threading.Event()
        if got is None and wait is not None:
            wait.wait()
            return self._strip(k, ahead)
        if got is None:
            try:
                got = (self._read(slice(int(self._bounds[k]), int(self._bounds[k + 1]))), 0)
            finally:
                with self._lock:
                    done = self._loading.pop(k)
                    if got is not None:
                        self._cache[k] = got
                        while len(self._cache) > self._keep:
                            self._cache.pop(next(iter(self._cache)))
                        self._trim_older(k)
                done.set()
        if ahead and _READ_AHEAD and k + 2 < len(self._bounds):
            self._read_ahead(k + 1)
        return got

    def _trim_older(self, k: int) -> None:
        """Strips before ``k`` kept as their last rows only (under the lock)."""
        tail = 3 * self._span
        for j, (arr, off) in list(self._cache.items()):
            if j < k and off == 0 and 0 < tail <= arr.shape[0] // 2:
                self._cache[j] = (arr[-tail:].copy(), arr.shape[0] - tail)

    def clear(self) -> None:
        """Forget the kept strips (a pass is over: the next one starts from the top)."""
        with self._lock:
            self._cache.clear()
        if self.reread:
            log.debug("%d reads before the kept rows of a strip", self.reread)
        release_memory()

    def _read_ahead(self, k: int) -> None:
        with self._lock:
            if k in self._cache or k in self._loading:
                return
            if self._ahead is not None and self._ahead.is_alive():
                return

            def run() -> None:  # an error is raised again to whoever reads the strip
                with contextlib.suppress(Exception):
                    self._strip(k, ahead=False)

            self._ahead = threading.Thread(target=run, name="read-ahead", daemon=True)
            self._ahead.start()

    def rows(self, a0: int, a1: int) -> np.ndarray:
        """Rows ``a0:a1`` (every other axis whole), as numpy (a view of a kept strip: read only)."""
        a0, a1 = max(0, a0), min(self.shape[0], a1)
        if a1 <= a0:
            return np.zeros((0, *self.shape[1:]), self.dtype)
        b = self._bounds
        self._span = max(self._span, a1 - a0)
        k0 = int(np.searchsorted(b, a0, "right")) - 1
        k1 = int(np.searchsorted(b, a1 - 1, "right")) - 1
        parts = []
        for k in range(k0, k1 + 1):
            lo, hi = max(a0, b[k]) - b[k], min(a1, b[k + 1]) - b[k]
            arr, off = self._strip(k)
            if lo >= off:
                parts.append(arr[lo - off : hi - off])
            else:  # before the rows kept of an older strip: read again
                self.reread += 1
                parts.append(self._read(slice(int(b[k] + lo), int(b[k] + hi))))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            a0, a1, step = index.indices(self.shape[0])
            if step == 1:
                return self.rows(a0, a1)
            index = (index,)
        index = tuple(index)
        first = index[0] if index else slice(None)
        if isinstance(first, slice) and first.step in (None, 1):
            a0, a1, _ = first.indices(self.shape[0])
            return self.rows(a0, a1)[(slice(None), *index[1:])]
        return self._read(index)

    def _read(self, index) -> np.ndarray:
        from svetlana.core.objects.lazy import _read

        index = (*self._lead, *((index,) if isinstance(index, slice) else tuple(index)))
        return _read_checked(self.data, index) if self.labels else _read(self.data, index)

    def __array__(self, dtype=None, copy=None):
        out = self.rows(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)


def release_memory() -> None:
    """Give the heap's free pages back to the system (glibc only; elsewhere nothing): the band
    pass frees many arrays of a few MB on two threads, which glibc otherwise keeps in each
    thread's heap (on a 20,000-wide image, hundreds of MB of resident memory never used again)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class _Mapped:
    """Rows of a ``_Strips`` with ``map`` applied (label values -> measured rows)."""

    def __init__(self, strips: _Strips, map: Callable[[np.ndarray], np.ndarray]):
        self.strips, self.map = strips, map
        self.shape, self.ndim = strips.shape, strips.ndim

    def __getitem__(self, index) -> np.ndarray:
        return self.map(self.strips[index])


class _Band:
    """Rows ``a0:`` of an array held in memory, indexed in the whole array's coordinates (what
    ``measure_band`` reads of one band's labels and rows)."""

    def __init__(self, data: np.ndarray, a0: int, shape: tuple[int, ...]):
        self.data, self.a0, self.shape, self.ndim = data, a0, shape, len(shape)

    def __getitem__(self, index) -> np.ndarray:
        index = (index,) if isinstance(index, slice) else tuple(index)
        first = index[0]
        b0, b1, _ = first.indices(self.shape[0])
        if b0 < self.a0 or b1 > self.a0 + self.data.shape[0]:
            raise IndexError(f"rows {b0}:{b1} outside the band held ({self.a0}:...)")
        return self.data[(slice(b0 - self.a0, b1 - self.a0), *index[1:])]


class _LazyChannel:
    """One channel of a lazy image: regions read as float32, NaN/Inf replaced like
    ``_clean_channel`` (the fill value from a regular subsample of the channel)."""

    def __init__(self, image, c: int, sample: np.ndarray):
        self.image, self.c, self.sample = image, c, sample
        self.shape = tuple(int(s) for s in image.shape[1:])
        self._fill: float | None = None
        self._strips = _Strips(image, labels=False, channel=c)  # a strip of chunks at a time

    def __getitem__(self, region) -> np.ndarray:
        out = np.asarray(self._strips[tuple(region)], dtype=np.float32)
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


# The objects of a lazy image are finished in about this many groups (by the last band that
# holds their pixels or ring): only the groups under way hold per-object accumulators.
_GROUPS = 32


def measure_tiles(
    bands, labels: _Strips, to_rows, fixed, ndimage, workers: int, progress, cancel,
    message: str, *, want, n: int, first: np.ndarray, last: np.ndarray, step: int, finish,
) -> None:  # fmt: skip
    """The band pass of a lazy image on ``workers`` threads at any object count, in memory
    that does not grow with the objects' histograms.

    Each band (rows ``a0:a1``, on the grid of ``step`` rows) is measured into its own
    accumulators, sized to the objects it touches (rows renumbered in order, so the band pass
    sees what it would see with the whole image's rows), then merged under a lock into the
    accumulators of the objects' group. Objects are grouped by the last band holding their
    pixels or ring (``first``/``last``: each object's first and last band with pixels); once
    every band up to a group's last one is merged, ``finish(rows, acc)`` turns the group into
    columns and its accumulators are freed. Strips of chunks are read ahead meanwhile."""
    from svetlana.core.jobs import Progress, run_threads
    from svetlana.core.objects.measure_band import Accumulators, measure_band

    channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov = fixed
    shape, nd = labels.shape, labels.ndim
    ngrid = max(1, -(-shape[0] // step))
    end = np.minimum(((last.astype(np.int64) + 1) * step + int(ring_w[0]) - 1) // step, ngrid - 1)
    per_group = max(1, -(-ngrid // _GROUPS))
    group_of = end // per_group
    ngroups = int(group_of.max()) + 1 if n else 0
    order = np.argsort(group_of, kind="stable")
    cut = np.searchsorted(group_of[order], np.arange(ngroups + 1))
    members = [order[cut[g] : cut[g + 1]] for g in range(ngroups)]  # rows, ascending
    slot = np.zeros(n, np.int64)
    for rows in members:
        slot[rows] = np.arange(rows.size)
    groups: dict[int, Accumulators] = {}
    done = np.ones(ngrid, bool)
    for a0, _ in bands:
        done[a0 // step] = False
    state = {"merged_to": 0, "next": 0, "bands": 0}  # grid bands 0..merged_to-1 all merged
    lock = threading.Lock()
    scratch = threading.local()
    stop = threading.Event()

    def ready_groups() -> list[tuple[int, Accumulators | None]]:
        """Groups whose bands are all merged, taken out (called under the lock)."""
        out = []
        while state["next"] < ngroups and (
            (state["next"] + 1) * per_group <= state["merged_to"] or state["merged_to"] >= ngrid
        ):
            g = state["next"]
            out.append((g, groups.pop(g, None)))
            state["next"] += 1
        return out

    def finish_groups(ready) -> None:
        for g, acc in ready:
            rows = members[g]
            if rows.size == 0:
                continue
            finish(rows, acc if acc is not None else Accumulators(rows.size, nd, want, ranges))
            del acc
            release_memory()

    def one(a0: int, a1: int) -> None:
        if stop.is_set():
            return
        c0, c1 = max(0, a0 - int(margin[0])), min(shape[0], a1 + int(margin[0]))
        c0 -= c0 % 2  # measure_band's crop starts on an even row (its filter bank's grid)
        lab = labels.rows(c0, c1)
        rows = to_rows(lab)
        inside = rows >= 0
        u = np.flatnonzero(np.bincount(rows[inside], minlength=n))
        part = None
        if u.size:
            lut = getattr(scratch, "lut", None)
            if lut is None:
                lut = scratch.lut = np.zeros(n, np.int32)
            lut[u] = np.arange(u.size, dtype=np.int32)
            local = np.where(inside, lut[rows], -1).astype(np.int32, copy=False)
            del rows, inside  # the band's working arrays follow
            part = Accumulators(int(u.size), nd, want, ranges)
            measure_band(
                a0, a1, _Band(lab, c0, shape), _Band(local, c0, shape), channels, ranges, sp,
                margin, ring_w, sig, centroid[u], inv_cov[u], part, ndimage,
            )  # fmt: skip
        with lock:
            if part is not None:
                g_of = group_of[u]
                for g in np.unique(g_of):
                    sel = np.flatnonzero(g_of == g)
                    acc = groups.get(int(g))
                    if acc is None:
                        acc = groups[int(g)] = Accumulators(members[g].size, nd, want, ranges)
                    acc.merge_rows(part, slot[u[sel]], None if sel.size == u.size else sel)
            done[a0 // step] = True
            while state["merged_to"] < ngrid and done[state["merged_to"]]:
                state["merged_to"] += 1
            state["bands"] += 1
            ready = ready_groups()
        finish_groups(ready)  # outside the lock: the other thread keeps merging

    def report() -> None:
        if progress is not None:
            progress(Progress("measure", state["bands"], len(bands), message))

    if workers <= 1:
        for a0, a1 in bands:
            if cancel is not None:
                cancel.raise_if_cancelled()
            one(a0, a1)
            report()
    else:
        taken = iter(range(len(bands)))  # the next band to measure, in order

        def run() -> None:
            while not stop.is_set():
                with lock:
                    k = next(taken, None)
                if k is None:
                    return
                one(*bands[k])

        run_threads([run] * workers, cancel=cancel, stop=stop, report=report, name="measure")
    with lock:
        state["merged_to"] = ngrid
        ready = ready_groups()
    finish_groups(ready)
    labels.clear()
    for ch in channels:
        if isinstance(ch, _LazyChannel):
            ch._strips.clear()

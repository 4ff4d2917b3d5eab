"""Per-object streaming statistics of pixel values, fed band by band; pixels grouped by object;
coordinate moments from runs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from svetlana.core.objects.measure_registry import QUANTILES
from svetlana.core.objects.measure_registry import quantile_name as _q

_BINS = 256  # per-channel intensity histogram bins for the quantiles
# Objects per block when quantiles are read from the histograms (416,025 objects at once took
# a 0.85 GB int64 cumulative copy of each 0.43 GB histogram).
_FINISH_BLOCK = 16384


# What each statistic needs gathered (``Stats(need=...)``): the moments about the reference
# ("mean": the first; "var", "m3", "m4": the higher ones), the extrema, the histogram, the plain
# sum. Each part is summed alone, so a statistic is the same whatever else is gathered.
STAT_NEEDS = {
    "mean": {"mean"},
    "std": {"mean", "var"},
    "skewness": {"mean", "var", "m3"},
    "kurtosis": {"mean", "var", "m3", "m4"},
    "min": {"extrema"},
    "max": {"extrema"},
    **{_q(q): {"hist", "extrema"} for q in QUANTILES},
    "total": {"total"},
}
ALL_NEEDS = frozenset().union(*STAT_NEEDS.values())


class Stats:
    """Streaming per-object intensity statistics (moments about a per-object reference, extrema,
    a histogram for quantiles), fed band by band; only the parts in ``need`` (STAT_NEEDS) are
    gathered, the others' statistics are left meaningless."""

    def __init__(self, n: int, lo: float, hi: float, need: frozenset = ALL_NEEDS):
        self.n = n
        self.need = need
        self.count = np.zeros(n, np.float64)
        self.ref = np.full(n, np.nan, np.float64)
        self.m = np.zeros((4, n), np.float64)
        self.total = np.zeros(n, np.float64)  # plain sum: the mean the context family compares
        self.min = np.full(n, np.inf, np.float64)
        self.max = np.full(n, -np.inf, np.float64)
        # Bin counts: uint16 (the largest array, objects x bins) until an object's bin passes
        # 65,535 pixels, then int32; the counts are exact either way.
        self.hist = np.zeros((n, _BINS) if "hist" in need else (n, 0), np.uint16)
        self.lo, self.hi = lo, hi  # the channel's robust range (normalised values: 0 to 1)
        # Histogram range: the robust range widened, so bright objects keep their quantiles.
        span = hi - lo
        self.h0 = lo - 0.25 * span
        self.width = max(2.25 * span / _BINS, 1e-12 * max(1.0, abs(lo)))

    def add(self, grp: Groups, values: np.ndarray) -> None:
        """``values`` of the pixels of ``grp`` (in its order)."""
        if values.size == 0:
            return
        u = grp.uniq
        need = self.need
        self.count[u] += grp.sizes
        if "total" in need:
            self.total[u] += grp.sum(values)  # (summed as float64)
        if "mean" in need:
            new = np.isnan(self.ref[u])
            if new.any():  # an object's first pixel (of its first band) is its reference
                self.ref[u[new]] = values[grp.first()[new]]
            d = np.subtract(values, self.ref[u][grp.idx], dtype=np.float64)
            self.m[0, u] += grp.sum(d)
            if "var" in need:
                d2 = d * d
                self.m[1, u] += grp.sum(d2)
                if "m3" in need:
                    d *= d2
                    self.m[2, u] += grp.sum(d)
                if "m4" in need:
                    d2 *= d2
                    self.m[3, u] += grp.sum(d2)
        if "extrema" in need:
            self.min[u] = np.minimum(self.min[u], grp.min(values))
            self.max[u] = np.maximum(self.max[u], grp.max(values))
        if "hist" in need:
            b = ((values - self.h0) / self.width).astype(np.int64)
            np.clip(b, 0, _BINS - 1, out=b)
            b += grp.idx * _BINS
            h = np.bincount(b, minlength=u.size * _BINS).reshape(u.size, _BINS)
            new = self.hist[u] + h
            if self.hist.dtype == np.uint16 and new.max() > np.iinfo(np.uint16).max:
                self.hist = self.hist.astype(np.int32)
            self.hist[u] = new

    def merge(self, o: Stats) -> None:
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
        self.total += o.total
        np.minimum(self.min, o.min, out=self.min)
        np.maximum(self.max, o.max, out=self.max)
        total = self.hist.astype(np.int32) + o.hist
        small = total.max(initial=0) <= np.iinfo(np.uint16).max
        self.hist = total.astype(np.uint16) if small else total

    def merge_rows(self, o: Stats, rows: np.ndarray, src: np.ndarray | None = None) -> None:
        """``merge`` of ``o``'s objects ``src`` (None: all) into the objects ``rows`` here
        (``o``'s row ``src[k]`` is row ``rows[k]``)."""
        u = rows
        if src is not None:
            sub = Stats.__new__(Stats)
            sub.need = o.need
            sub.n, sub.lo, sub.hi, sub.h0, sub.width = len(src), o.lo, o.hi, o.h0, o.width
            sub.count, sub.ref, sub.m = o.count[src], o.ref[src], o.m[:, src]
            sub.total = o.total[src]
            sub.min, sub.max, sub.hist = o.min[src], o.max[src], o.hist[src]
            o = sub
        part = Stats.__new__(Stats)
        part.need = self.need
        part.n, part.lo, part.hi, part.h0, part.width = (
            len(u),
            self.lo,
            self.hi,
            self.h0,
            self.width,
        )
        part.count, part.ref, part.m = self.count[u], self.ref[u], self.m[:, u]
        part.total = self.total[u]
        part.min, part.max, part.hist = self.min[u], self.max[u], self.hist[u]
        part.merge(o)
        self.count[u], self.ref[u], self.m[:, u] = part.count, part.ref, part.m
        self.total[u] = part.total
        self.min[u], self.max[u] = part.min, part.max
        if part.hist.itemsize > self.hist.itemsize:  # a count passed 65,535
            self.hist = self.hist.astype(part.hist.dtype)
        self.hist[u] = part.hist

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
        quantiles = {_q(q): np.full(self.n, np.nan) for q in QUANTILES}
        for a0 in range(
            0, self.n if self.hist.shape[1] else 0, _FINISH_BLOCK
        ):  # blocks: no (objects x bins) int64 copy
            a1 = min(self.n, a0 + _FINISH_BLOCK)
            hist, rows = self.hist[a0:a1], np.arange(a1 - a0)
            cum = np.cumsum(hist, axis=1, dtype=np.int64)
            # The bins whose cumulative count is below a target, by one search over the rows'
            # cumulative counts laid end to end (each row's raised above the one before).
            top = int(cum[:, -1].max(initial=0)) + 1
            flat = (cum + (rows * top)[:, None]).reshape(-1)
            for q in QUANTILES:
                target = q * self.count[a0:a1]
                key = np.ceil(target).astype(np.int64) + rows * top  # integer counts: the same
                b = np.searchsorted(flat, key) - rows * _BINS
                b = np.minimum(b, _BINS - 1)
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
class Groups:
    """Pixels of one band grouped by object, in the band's own (raster) order, which keeps the
    reads of neighbouring pixels sequential: each pixel's group, the groups' objects (rows,
    ascending) and their pixel counts. Sums are bincounts, extrema ``ufunc.at``, over the
    groups of the band only (not every object of the image)."""

    idx: np.ndarray  # (pixels,) intp: index into uniq
    uniq: np.ndarray  # (k,) intp: object rows, ascending
    sizes: np.ndarray  # (k,) int64: pixels of each group (0 possible after ``pick``)

    @classmethod
    def of(cls, rows: np.ndarray, n: int) -> Groups:
        """The groups of pixels whose object rows (0 <= row < n) are ``rows``."""
        if rows.size == 0:
            e = np.zeros(0, np.intp)
            return cls(e, e, np.zeros(0, np.int64))
        seen = np.zeros(n, bool)
        seen[rows] = True
        uniq = np.flatnonzero(seen)
        lut = np.empty(n, np.intp)
        lut[uniq] = np.arange(uniq.size)
        idx = lut[rows]
        return cls(idx, uniq, np.bincount(idx, minlength=uniq.size))

    def pick(self, which: np.ndarray) -> Groups:
        """The same groups, for the pixels ``which`` (indices or a mask) only."""
        idx = self.idx[which]
        return Groups(idx, self.uniq, np.bincount(idx, minlength=self.uniq.size))

    def sum(self, w: np.ndarray) -> np.ndarray:
        """Per-group sums (float64) of ``w``, in pixel order.

        The same additions in the same order as ``np.bincount(idx, w)`` (which casts ``w`` to
        float64 and adds each pixel to its group's running sum, starting from 0), so the same
        bits: scipy's compiled sparse product ``G @ w`` with G (groups x pixels) the matrix of
        ones at each group's pixels, ascending, sums a row as ``0 + 1*w[p0] + 1*w[p1]...``
        (a product by 1 is exact). It runs without the interpreter lock (both measuring
        threads at once; a bincount holds it) and keeps each running sum in a register: ~2x
        faster per pixel on 4096^2 than a bincount's chain through memory."""
        k = self.uniq.size
        matvec = _csr_matvec() if self.idx.size >= _CSR_MIN_PIXELS else None
        if matvec is None:
            return np.bincount(self.idx, w, minlength=k)
        x = np.ascontiguousarray(w, np.float64).reshape(-1)
        if x.size != self.idx.size:
            raise ValueError("weights and pixels differ in length")
        ptr, ind = self._csr
        out = np.zeros(k)
        matvec(k, x.size, ptr, ind, _ones(x.size), x, out)
        return out

    @cached_property
    def _csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Each group's pixels, ascending, end to end (a CSR matrix's row pointers and column
        indices): the runs of ``_runs`` put in group order (a stable sort of the runs, not of
        the pixels) and expanded."""
        starts, group = self._runs
        n = self.idx.size
        itype = np.int32 if n < np.iinfo(np.int32).max else np.int64
        lens = np.diff(starts, append=n)
        small = self.uniq.size <= np.iinfo(np.int16).max  # (a radix sort: 5x faster)
        order = np.argsort(group.astype(np.int16) if small else group, kind="stable")
        s, ln = starts[order].astype(itype), lens[order].astype(itype)
        ind = np.repeat(s - (np.cumsum(ln, dtype=itype) - ln), ln)
        ind += np.arange(n, dtype=itype)
        ptr = np.zeros(self.uniq.size + 1, itype)
        np.cumsum(self.sizes, out=ptr[1:])
        return ptr, ind

    @cached_property
    def _runs(self) -> tuple[np.ndarray, np.ndarray]:
        """Where runs of consecutive pixels of one group start, and their groups (an object's
        pixels come in runs along the rows: the extrema are taken per run first)."""
        cut = np.empty(self.idx.size, bool)
        cut[:1] = True
        np.not_equal(self.idx[1:], self.idx[:-1], out=cut[1:])
        starts = np.flatnonzero(cut)
        return starts, self.idx[starts]

    def min(self, values: np.ndarray) -> np.ndarray:
        out = np.full(self.uniq.size, _top(values.dtype), values.dtype)
        if values.size:
            starts, group = self._runs
            np.minimum.at(out, group, np.minimum.reduceat(values, starts))
        return out

    def max(self, values: np.ndarray) -> np.ndarray:
        out = np.full(self.uniq.size, _bottom(values.dtype), values.dtype)
        if values.size:
            starts, group = self._runs
            np.maximum.at(out, group, np.maximum.reduceat(values, starts))
        return out

    def first(self) -> np.ndarray:
        """Index of each group's first pixel."""
        out = np.full(self.uniq.size, np.iinfo(np.intp).max, np.intp)
        if self.idx.size:
            starts, group = self._runs
            np.minimum.at(out, group, starts)
        return out


# Groups.sum: fewer pixels than this are summed by a bincount (the sparse product's set-up,
# a sort of the runs, costs more than it saves).
_CSR_MIN_PIXELS = 4096
_ONES: list[np.ndarray] = [np.ones(0)]


def _ones(n: int) -> np.ndarray:
    """``n`` ones (float64), read only: a view of one array shared by the threads."""
    ones = _ONES[0]
    if ones.size < n:
        ones = np.ones(max(n, 2 * ones.size))
        ones.flags.writeable = False
        _ONES[0] = ones  # (a thread may make its own meanwhile: the same ones)
    return ones[:n]


def _csr_matvec():
    """scipy's compiled CSR matrix-vector product ``y += A @ x`` (None: not found)."""
    from svetlana.core.objects.scipy_parts import csr_matvec

    return csr_matvec()


def _top(dtype) -> float | int:
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _bottom(dtype) -> float | int:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def clean_channel(channel: np.ndarray) -> np.ndarray:
    """float32 pixels; NaN/Inf replaced by the median of the finite pixels (0 if none)."""
    out = np.asarray(channel, dtype=np.float32)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = ~np.isfinite(out)
        good = out[~bad]
        fill = float(np.median(good[:: max(1, good.size // 200_000)])) if good.size else 0.0
        out = out.copy()
        out[bad] = fill
    return out


def robust_range(channel: np.ndarray) -> tuple[float, float]:
    """1st and 99.8th percentiles (as the network's normalisation), never an empty range."""
    from svetlana.core.objects.patches import fit_normalisation

    norm = fit_normalisation(channel[np.newaxis])
    return float(norm.low[0]), float(norm.high[0])


def coordinate_moments(band: np.ndarray, a0: int, count, mom1, mom2, axis0_count) -> np.ndarray:
    """Add the pixel counts, coordinate sums and coordinate product sums (pixel units) of the
    objects of ``band`` (rows; -1: not measured), whose first axis starts at ``a0``, from its
    runs along the last axis: closed forms per run instead of a term per pixel (sums of
    integers: exact, the same in any order). Returns the rows of the objects present (with
    repeats: one per run)."""
    nd, width = band.ndim, band.shape[-1]
    lines = band.reshape(-1, width)
    change = np.empty(lines.shape, bool)
    change[:, 0] = True  # every line starts a run, so a run ends where the next one starts
    np.not_equal(lines[:, 1:], lines[:, :-1], out=change[:, 1:])
    st = np.flatnonzero(change)
    end = np.append(st[1:], lines.size)
    vals = lines.reshape(-1)[st]
    keep = vals >= 0
    st, end, vals = st[keep], end[keep], vals[keep]
    if st.size == 0:
        return vals
    line = st // width
    length = end - st
    x0 = st - line * width
    x1 = x0 + length - 1

    def s2(k):  # sum of squares 0..k (k >= -1)
        return k * (k + 1) * (2 * k + 1) // 6

    coords = list(np.unravel_index(line, band.shape[:-1]))
    coords[0] = coords[0] + a0
    n = count.size
    sums = [c * length for c in coords] + [length * (x0 + x1) // 2]  # per axis
    count += np.bincount(vals, length, minlength=n)
    axis0_count += np.bincount(coords[0] - a0, length, minlength=band.shape[0]).astype(np.int64)
    for a in range(nd):
        mom1[a] += np.bincount(vals, sums[a], minlength=n)
        for b in range(a, nd):
            if b == nd - 1 and a == nd - 1:
                prod = s2(x1) - s2(x0 - 1)
            elif b == nd - 1:
                prod = coords[a] * sums[-1]
            else:
                prod = coords[a] * coords[b] * length
            mom2[a, b] += np.bincount(vals, prod, minlength=n)
    return vals

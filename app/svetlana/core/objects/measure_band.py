"""The band pass: one vectorised pass over bands of the image fills per-object accumulators for
the families asked for (shape, intensity, ring, shells, filter bank, on the channels asked for),
then turns them into columns.

~400 lines: what each column needs gathered (``Want``) and the pass that gathers only that
belong together; split, every family would be two modules to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svetlana.core.objects.measure_registry import (
    N_SHELLS,
    QUANTILES,
    SCALES,
    Plan,
    dog_scales,
    texture_filters,
    texture_names,
)
from svetlana.core.objects.measure_registry import quantile_name as _q
from svetlana.core.objects.measure_shape import _HULL_DIRECTIONS, boundary_band, shape_columns
from svetlana.core.objects.measure_stats import STAT_NEEDS, Groups, Stats
from svetlana.core.objects.measure_texture import Neighbours, coherence, texture, texture_levels

_F32_MAX = float(np.finfo(np.float32).max)


_BOUNDARY = {"perimeter", "circularity", "solidity", "euler_number", "surface_area", "sphericity"}


@dataclass(frozen=True)
class Want:
    """What the band pass gathers for the columns asked for: the boundary (perimeter, solidity,
    Euler number...), the bounding boxes, and on which channels the object statistics (and
    which of their parts: measure_stats.STAT_NEEDS), the ring's (and its parts), the shells and
    the filter bank (and which of its responses: the texture column names without prefix)."""

    shape: bool
    obj: tuple[int, ...]
    ring: tuple[int, ...]
    shells: tuple[int, ...]
    texture: tuple[int, ...]
    box: bool
    obj_need: tuple[frozenset, ...]  # per channel of ``obj``
    ring_need: tuple[frozenset, ...]  # per channel of ``ring``
    tex_need: tuple[frozenset, ...]  # per channel of ``texture``

    @classmethod
    def of(cls, plan: Plan, means: list[int], nd: int) -> Want:
        names = set(plan.names)
        obj: dict[int, set] = {c: {"total"} for c in means}
        ring: dict[int, set] = {}
        tex: dict[int, set] = {}
        shells: set[int] = set()
        for col in plan.columns:
            c = col.channel
            if col.family == "filterbank":
                tex.setdefault(c, set()).add(col.key)
                continue
            if col.family not in ("intensity", "ring", "shells"):
                continue
            key = col.key
            mine = obj.setdefault(c, set())
            if col.family == "shells":
                shells.add(c)
                mine |= STAT_NEEDS["std" if key.endswith("profile") else "mean"]
            elif col.family == "intensity":
                mine |= STAT_NEEDS[key.removeprefix("norm_")]
            else:  # the ring's; where an object has no ring, its own statistic stands in
                key = key.removeprefix("ring_").removeprefix("norm_")
                stats = {"ratio": ["mean"], "contrast": ["mean", "std"]}.get(key, [key])
                theirs = ring.setdefault(c, set(STAT_NEEDS["mean"]))  # (no ring: no mean)
                for k in stats:
                    theirs |= STAT_NEEDS[k]
                    mine |= STAT_NEEDS[k]
        box = "extent" in names or (nd == 3 and "euler_number" in names)
        return cls(
            bool(names & _BOUNDARY), tuple(sorted(obj)), tuple(sorted(ring)), tuple(sorted(shells)),
            tuple(sorted(tex)), box, tuple(frozenset(obj[c]) for c in sorted(obj)),
            tuple(frozenset(ring[c]) for c in sorted(ring)),
            tuple(frozenset(tex[c]) for c in sorted(tex)),
        )  # fmt: skip

    @property
    def channels(self) -> list[int]:
        return sorted(set(self.obj) | set(self.texture))

    def textures(self, c: int) -> frozenset:
        """The filter-bank columns wanted on channel ``c`` (without the channel prefix)."""
        return self.tex_need[self.texture.index(c)]


class Accumulators:
    def __init__(self, n: int, nd: int, want: Want, ranges):
        self.n, self.nd, self.want = n, nd, want
        self.bmin = np.full((n, nd), np.iinfo(np.int64).max, np.int64)
        self.bmax = np.full((n, nd), -1, np.int64)
        self.crofton = np.zeros(n)
        self.euler = np.zeros(n)
        self.support = np.full((n, _HULL_DIRECTIONS) if want.shape else (0, 0), -np.inf)
        self.boundary_pts: list[tuple[np.ndarray, np.ndarray]] = []  # 3D hull: (rows, coords)
        self.obj = {
            c: Stats(n, *ranges[c], k) for c, k in zip(want.obj, want.obj_need, strict=True)
        }
        self.ring = {
            c: Stats(n, *ranges[c], k) for c, k in zip(want.ring, want.ring_need, strict=True)
        }
        self.shell_sum = {c: np.zeros((n, N_SHELLS)) for c in want.shells}
        self.shell_n = np.zeros((n, N_SHELLS) if want.shells else (0, N_SHELLS))
        nf = len(SCALES) * len(texture_filters(nd)) + len(dog_scales())
        self.tex_sum = {c: np.zeros((nf, n)) for c in want.texture}
        self.tex_sq = {c: np.zeros((nf, n)) for c in want.texture}
        self.tex_n = np.zeros((nf, n) if want.texture else (nf, 0))  # pixels each column averaged
        # Object-level orientation per scale: sums of H.H (H the Hessian; upper triangle).
        k = nd * (nd + 1) // 2
        self.tensor = {c: np.zeros((len(SCALES), k, n)) for c in want.texture}

    def merge(self, o: Accumulators) -> None:
        """Add what ``o`` gathered on other bands (the threads' accumulators)."""
        np.minimum(self.bmin, o.bmin, out=self.bmin)
        np.maximum(self.bmax, o.bmax, out=self.bmax)
        np.maximum(self.support, o.support, out=self.support)
        self.boundary_pts += o.boundary_pts
        for c in self.obj:
            self.obj[c].merge(o.obj[c])
        for c in self.ring:
            self.ring[c].merge(o.ring[c])
        self.crofton += o.crofton  # in place: the arrays are sums over pixels
        self.euler += o.euler
        self.shell_n += o.shell_n
        self.tex_n += o.tex_n
        for key in ("shell_sum", "tex_sum", "tex_sq", "tensor"):
            mine, theirs = getattr(self, key), getattr(o, key)
            for c in mine:
                mine[c] += theirs[c]

    def merge_rows(self, o: Accumulators, rows: np.ndarray, src: np.ndarray | None = None) -> None:
        """Add what ``o`` gathered for its objects ``src`` (None: all, ascending) to the objects
        ``rows`` here (``o``'s row ``src[k]`` is row ``rows[k]``; no repeats): one band's
        accumulators, sized to the objects it touches, into those of a group of objects."""
        u = rows

        def first(a):  # o's rows src (first axis)
            return a if src is None else a[src]

        def last(a):  # o's rows src (last axis)
            return a if src is None else a[..., src]

        self.bmin[u] = np.minimum(self.bmin[u], first(o.bmin))
        self.bmax[u] = np.maximum(self.bmax[u], first(o.bmax))
        if self.support.shape[0]:
            self.support[u] = np.maximum(self.support[u], first(o.support))
        if o.boundary_pts:
            at = np.full(o.n, -1, np.int64)
            at[np.arange(o.n) if src is None else src] = u
            for r, pts in o.boundary_pts:
                keep = at[r] >= 0
                self.boundary_pts.append((at[r][keep], pts[keep]))
        for c in self.obj:
            self.obj[c].merge_rows(o.obj[c], u, src)
        for c in self.ring:
            self.ring[c].merge_rows(o.ring[c], u, src)
        self.crofton[u] += first(o.crofton)
        self.euler[u] += first(o.euler)
        if self.shell_n.shape[0]:
            self.shell_n[u] += first(o.shell_n)
        if self.tex_n.shape[1]:
            self.tex_n[:, u] += last(o.tex_n)
        for c in self.shell_sum:
            self.shell_sum[c][u] += first(o.shell_sum[c])
        for key in ("tex_sum", "tex_sq", "tensor"):
            mine, theirs = getattr(self, key), getattr(o, key)
            for c in mine:
                mine[c][..., u] += last(theirs[c])

    def mean_intensity(self, c: int, count: np.ndarray) -> np.ndarray:
        """Each object's mean normalised intensity on channel ``c`` (0 where no pixel), read
        before ``finish`` (the context family's)."""
        st = self.obj[c]
        safe = np.maximum(count, 1)
        # As families.object_sums computes it for a subset: the same formula, the same value.
        mean = (st.total / safe - st.lo) / (st.hi - st.lo)
        return np.where(count > 0, mean, 0.0)

    def finish(
        self, plan: Plan, prefixes, nd, sp, count, cov, labels, present, extra
    ) -> np.ndarray:
        cols: dict[str, np.ndarray] = dict(extra)
        names = set(plan.names)
        if any(c.family == "shape" for c in plan.columns):
            cols.update(shape_columns(self, nd, sp, count, cov, labels, present, names))
        stats_of = plan.channels("intensity", "ring", "shells")
        for c, so in self.obj.items():
            if c not in stats_of:  # only the context's means were wanted
                continue
            p = prefixes[c]
            o = so.finish()
            scale = 1.0 / (so.hi - so.lo)
            for key, v in o.items():
                cols[p + key] = v
            for key in ["mean", "min", "max"] + [_q(q) for q in QUANTILES]:
                cols[p + "norm_" + key] = (o[key] - so.lo) * scale
            cols[p + "norm_std"] = o["std"] * scale
            if c in self.ring:
                _ring_columns(cols, p, o, self.ring[c].finish(), so.lo, scale)
            if c in self.shell_sum:
                shell_mean = self.shell_sum[c] / np.maximum(self.shell_n, 1)
                shell_mean = np.where(self.shell_n > 0, shell_mean, o["mean"][:, None])
                spread = np.maximum(o["std"], 1e-3 / scale)
                for k in range(N_SHELLS):
                    cols[p + f"shell{k + 1}_mean"] = shell_mean[:, k]
                    cols[p + f"shell{k + 1}_profile"] = (shell_mean[:, k] - o["mean"]) / spread
        for c in self.tex_sum:
            p = prefixes[c]
            for j, t in enumerate(texture_names(nd)):
                cnt = np.maximum(self.tex_n[j], 1)
                mean = self.tex_sum[c][j] / cnt
                cols[p + t + "_mean"] = mean
                cols[p + t + "_std"] = np.sqrt(np.maximum(self.tex_sq[c][j] / cnt - mean**2, 0))
            for k, s in enumerate(SCALES):
                if p + f"coherence_s{s:g}" in names:
                    cols[p + f"coherence_s{s:g}"] = coherence(self.tensor[c][k], nd)
        out = np.empty((self.n, len(plan.columns)), np.float32)
        for j, name in enumerate(plan.names):
            v = np.nan_to_num(cols[name], nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
            out[:, j] = np.clip(v, -_F32_MAX, _F32_MAX)
        return out


def _coarse(names: frozenset) -> bool:
    """Whether any of the filter-bank columns ``names`` reads a scale after the first."""
    first = f"_s{SCALES[0]:g}"  # (a difference of Gaussians reads the next scale too)
    return any(
        n.startswith("dog_") or not n.removesuffix("_mean").removesuffix("_std").endswith(first)
        for n in names
    )


def _ring_columns(cols, p: str, o: dict, r: dict, lo: float, scale: float) -> None:
    no_ring = np.isnan(r["mean"])
    for key in list(r):  # no background around the object: the ring is the object
        r[key] = np.where(no_ring, o[key], r[key])
    for key, v in r.items():
        cols[p + "ring_" + key] = v
    cols[p + "ring_norm_mean"] = (r["mean"] - lo) * scale
    cols[p + "ring_norm_std"] = r["std"] * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(r["mean"] > 0, o["mean"] / r["mean"], 0.0)
        spread = np.maximum(r["std"], 1e-3 / scale)
        cols[p + "ring_contrast"] = (o["mean"] - r["mean"]) / spread
    cols[p + "ring_ratio"] = ratio


def _box_max(x: np.ndarray, w) -> np.ndarray:
    """The maximum of non-negative ``x`` over the box of half-widths ``w`` around each pixel,
    0 outside (scipy's maximum_filter with cval 0): per axis, maxima of windows doubling in
    size, a few whole-array maxima instead of a pass per window pixel."""
    out = x
    for ax, k in enumerate(int(v) for v in w):
        if k == 0:
            continue
        pad = [(0, 0)] * x.ndim
        pad[ax] = (k, k)
        m = np.pad(out, pad)
        size, span = 2 * k + 1, 1

        def cut(a, start, length, ax=ax):
            return a[(slice(None),) * ax + (slice(start, start + length),)]

        while 2 * span <= size:  # m[i]: the maximum of the padded out[i : i + span]
            n = m.shape[ax] - span
            m = np.maximum(cut(m, 0, n), cut(m, span, n))
            span *= 2
        n = out.shape[ax]
        out = np.maximum(cut(m, 0, n), cut(m, size - span, n))
    return out


def _owner_rows(owners, lab, rows, p, grp, s0: int, s1: int, w0: int) -> np.ndarray:
    """The row of each label value in ``owners`` (-1: not measured). An owner lies within
    ``w0`` rows of the core rows ``s0:s1``: it is one of the band's measured objects (``grp``
    of pixels ``p``) or has a pixel in the ``w0`` rows on either side."""
    if owners.size == 0:
        return np.zeros(0, np.int64)
    flat_lab = lab.reshape(-1)
    lo = max(0, s0 - w0)
    keys = [flat_lab[p[grp.first()]], lab[lo:s0].reshape(-1), lab[s1 : s1 + w0].reshape(-1)]
    vals = [grp.uniq, rows[lo:s0].reshape(-1), rows[s1 : s1 + w0].reshape(-1)]
    keys, vals = np.concatenate(keys), np.concatenate(vals).astype(np.int64)
    top = max(int(owners.max()), int(keys.max()) if keys.size else 0)
    if top <= 4 * lab.size + 1024:  # a lookup table
        lut = np.full(top + 1, -1, np.int64)
        lut[keys] = vals
        return lut[owners]
    order = np.argsort(keys, kind="stable")  # huge sparse ids
    keys, vals = keys[order], vals[order]
    pos = np.clip(np.searchsorted(keys, owners), 0, max(keys.size - 1, 0))
    return np.where(keys[pos] == owners, vals[pos], -1)


def measure_band(
    a0, a1, labels, rows_img, channels, ranges, sp, margin, ring_w, sig, centroid, inv_cov, acc,
    ndimage,
) -> None:  # fmt: skip
    """Add one band's pixels (axis-0 rows ``a0:a1``) to ``acc``."""
    nd = labels.ndim
    shape = labels.shape
    want = acc.want
    # Crop: the band's rows plus a margin, the other axes cut to the objects (plus margin),
    # starting on even pixels: the filter bank's pyramid samples every other pixel of the crop,
    # the same pixels of the image whichever objects set the crop.
    c0, c1 = max(0, a0 - margin[0]), min(shape[0], a1 + margin[0])
    c0 -= c0 % 2
    sel = rows_img[c0:c1] >= 0
    region = [slice(c0, c1)]
    for ax in range(1, nd):
        hit = np.flatnonzero(sel.any(axis=tuple(a for a in range(nd) if a != ax)))
        if hit.size == 0:
            return
        lo = max(0, int(hit[0]) - margin[ax])
        lo -= lo % 2
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
    flat_rows = rows.reshape(-1)

    # Object pixels of the band core (in raster order), grouped by object.
    core_sel = np.zeros(lab.shape, bool)
    core_sel[core] = rows[core] >= 0
    p = np.flatnonzero(core_sel)
    prow = flat_rows[p]
    grp = Groups.of(prow, acc.n)
    u = grp.uniq
    local = np.unravel_index(p, lab.shape)
    gcoord = [local[ax] - 1 + origin[ax] for ax in range(nd)]
    if want.box:
        for ax in range(nd):
            acc.bmin[u, ax] = np.minimum(acc.bmin[u, ax], grp.min(gcoord[ax]))
            acc.bmax[u, ax] = np.maximum(acc.bmax[u, ax], grp.max(gcoord[ax]))

    nb0 = Neighbours(p, strides)
    if want.shape:
        boundary_band(acc, lab, p, prow, grp, nb0, origin, sp, centroid, strides, ndimage)

    if want.shells:
        # Radial position: 0 at the centroid, 1 at the rim of the object's equivalent ellipse.
        k = 4.0 if nd == 2 else 5.0
        # (per object first, then to its pixels: the same numbers, gathered from k values)
        dvec = [gcoord[ax] * sp[ax] - centroid[u, ax][grp.idx] for ax in range(nd)]
        r2 = np.zeros(p.size)
        for a in range(nd):
            for b in range(a, nd):
                w = (inv_cov[u, a, b] * (1.0 if a == b else 2.0))[grp.idx]
                r2 += w * dvec[a] * dvec[b]
        r2 /= k
        shell = np.minimum((np.sqrt(r2) * N_SHELLS).astype(np.int64), N_SHELLS - 1)
        shell_idx = grp.idx * N_SHELLS + shell
        nk = u.size * N_SHELLS
        acc.shell_n[u] += np.bincount(shell_idx, minlength=nk).reshape(u.size, N_SHELLS)

    if want.ring:
        # Ring: background pixels within RING_WIDTH of an object, each given to the object of
        # the largest id within reach -- among every object of the mask, measured or not, so an
        # object's ring is the same whichever others are measured with it.
        s0, s1, w0 = core[0].start, core[0].stop, int(ring_w[0])
        near = lab[max(0, s0 - w0) : s1 + w0]  # the rows the core's ring pixels look at
        grown = _box_max(near, ring_w)[s0 - max(0, s0 - w0) :][: s1 - s0]
        grown = grown[(slice(None), *core[1:])]
        ring_core = (lab[core] == 0) & (grown > 0)
        ring_sel = np.zeros(lab.shape, bool)
        ring_sel[core] = ring_core
        rp = np.flatnonzero(ring_sel)
        rrow = _owner_rows(grown[ring_core], lab, rows, p, grp, s0, s1, w0)
        keep = rrow >= 0  # the ring pixels of the objects measured
        rp, rrow = rp[keep], rrow[keep]
        rgrp = Groups.of(rrow, acc.n)

    coarse = any(_coarse(want.textures(c)) for c in want.texture)
    levels = texture_levels(p, local, grp, nb0, lab.shape, sig, coarse) if want.texture else []
    for ch in want.channels:
        raw = np.pad(channels[ch][region], 1, mode="edge")
        flat = raw.reshape(-1)
        if ch in acc.obj:
            v = flat[p]
            acc.obj[ch].add(grp, v)
        if ch in acc.ring:
            acc.ring[ch].add(rgrp, flat[rp])
        if ch in acc.shell_sum:
            acc.shell_sum[ch][u] += np.bincount(shell_idx, v, minlength=nk).reshape(
                u.size, N_SHELLS
            )
        if ch in acc.tex_sum:
            lo, hi = ranges[ch]
            norm = (raw - np.float32(lo)) * np.float32(1.0 / (hi - lo))
            texture(norm, levels, sp, sig, acc, ch, ndimage)

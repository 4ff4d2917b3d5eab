"""Tuning only: the intensity distribution and boundary shape accumulators of commit e9a414a
(core/objects/families.py, left out then), copied as they were, so that real_blend.py can add
their columns to the cached measurements (``--families``)."""

from __future__ import annotations

import numpy as np

SECTORS = 16
HARMONICS = 6


class FamilyAccumulators:
    """Per-object sums for the pixel families, fed band by band."""

    def __init__(self, n: int, nd: int, nchan: int, ranges, centroid: np.ndarray, sp):
        self.n, self.nd, self.nchan = n, nd, nchan
        self.ranges = ranges
        self.centroid = centroid  # (n, nd) physical units
        self.sp = np.asarray(sp, np.float64)
        self.w = np.zeros((nchan, n))  # sum of normalised intensity, clipped at 0
        self.s = np.zeros((nchan, n))  # sum of normalised intensity
        self.wx = np.zeros((nchan, nd, n))
        self.wr2 = np.zeros((nchan, n))
        self.r2 = np.zeros(n)
        self.npx = np.zeros(n)
        self.b_n = np.zeros(n)
        self.b_sum = np.zeros(n)
        self.b_sq = np.zeros(n)
        self.b_min = np.full(n, np.inf)
        self.b_max = np.zeros(n)
        self.sector = np.zeros(n * SECTORS)

    def merge(self, o: FamilyAccumulators) -> None:
        for key in ("w", "s", "wx", "wr2", "r2", "npx", "b_n", "b_sum", "b_sq"):
            getattr(self, key).__iadd__(getattr(o, key))
        np.minimum(self.b_min, o.b_min, out=self.b_min)
        np.maximum(self.b_max, o.b_max, out=self.b_max)
        np.maximum(self.sector, o.sector, out=self.sector)

    def add_band(self, a0: int, a1: int, rows_img, channels) -> None:
        """Pixels of objects in axis-0 rows [a0, a1), neighbours read from a margin around."""
        nd = self.nd
        shape = rows_img.shape
        m = 1
        c0, c1 = max(0, a0 - m), min(shape[0], a1 + m)
        region = (slice(c0, c1),) + (slice(None),) * (nd - 1)
        rows = np.pad(np.asarray(rows_img[c0:c1], np.int32), m, constant_values=-1)
        strides = np.array([int(np.prod(rows.shape[k + 1 :])) for k in range(nd)], np.int64)
        core = np.zeros(rows.shape, bool)
        core_idx = (slice(a0 - c0 + m, a1 - c0 + m),) + (slice(m, -m),) * (nd - 1)
        core[core_idx] = rows[core_idx] >= 0
        flat_rows = rows.reshape(-1)
        p = np.flatnonzero(core)
        if p.size == 0:
            return
        r = flat_rows[p].astype(np.int64)
        coords = np.unravel_index(p, rows.shape)
        pos = [(coords[0] - m + c0) * self.sp[0]] + [
            (coords[k] - m) * self.sp[k] for k in range(1, nd)
        ]
        d = [pos[k] - self.centroid[r, k] for k in range(nd)]
        rad2 = sum(x * x for x in d)
        n = self.n
        self.npx += np.bincount(r, minlength=n)
        self.r2 += np.bincount(r, rad2, minlength=n)
        # Boundary: an object pixel with a face neighbour of another row (or background).
        edge = np.zeros(p.size, bool)
        for k in range(nd):
            for sgn in (-1, 1):
                edge |= flat_rows[p + sgn * strides[k]] != r
        if edge.any():
            re, rad = r[edge], np.sqrt(rad2[edge])
            self.b_n += np.bincount(re, minlength=n)
            self.b_sum += np.bincount(re, rad, minlength=n)
            self.b_sq += np.bincount(re, rad * rad, minlength=n)
            np.minimum.at(self.b_min, re, rad)
            np.maximum.at(self.b_max, re, rad)
            if nd == 2:
                ang = np.arctan2(d[0][edge], d[1][edge])
                sec = ((ang + np.pi) / (2 * np.pi) * SECTORS).astype(np.int64) % SECTORS
                np.maximum.at(self.sector, re * SECTORS + sec, rad)
        for c in range(self.nchan):
            lo, hi = self.ranges[c]
            ch = np.asarray(channels[c][region], np.float32)
            ch = np.pad(ch, m, mode="edge").reshape(-1)
            v = ch[p]
            norm = (v - lo) / (hi - lo)
            w = np.maximum(norm, 0.0).astype(np.float64)
            self.w[c] += np.bincount(r, w, minlength=n)
            self.s[c] += np.bincount(r, norm, minlength=n)
            for k in range(nd):
                self.wx[c, k] += np.bincount(r, w * pos[k], minlength=n)
            self.wr2[c] += np.bincount(r, w * rad2, minlength=n)

    def finish(self, prefixes: list[str]) -> dict:
        """Columns by name (NaN/inf cleaned by the caller)."""
        cols: dict[str, np.ndarray] = {}
        n = self.n
        eq_radius = np.sqrt(np.maximum(self.r2 / np.maximum(self.npx, 1), 1e-12) * 2.0)
        for c, pre in enumerate(prefixes):
            w = self.w[c]
            ok = w > 1e-9
            wc = self.wx[c] / np.where(ok, w, 1.0)
            shift = np.sqrt(((wc - self.centroid.T) ** 2).sum(0))
            cols[f"{pre}mass_displacement"] = np.where(ok, shift / eq_radius, 0.0)
            mean_r2 = self.r2 / np.maximum(self.npx, 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                conc = np.where(ok & (mean_r2 > 0), self.wr2[c] / np.where(ok, w, 1) / mean_r2, 1.0)
            cols[f"{pre}radial_concentration"] = conc
        bn = np.maximum(self.b_n, 1)
        mean = self.b_sum / bn
        safe = np.where(mean > 0, mean, 1.0)
        cols["boundary_radius_cv"] = np.sqrt(np.maximum(self.b_sq / bn - mean**2, 0)) / safe
        cols["boundary_radius_min"] = np.where(self.b_n > 0, self.b_min, 0) / safe
        cols["boundary_radius_max"] = self.b_max / safe
        if self.nd == 2:
            sec = self.sector.reshape(n, SECTORS)
            spec = np.abs(np.fft.rfft(sec, axis=1))
            dc = np.where(spec[:, 0] > 0, spec[:, 0], 1.0)
            for k in range(1, HARMONICS + 1):
                cols[f"boundary_fourier{k}"] = spec[:, k] / dc
        return cols

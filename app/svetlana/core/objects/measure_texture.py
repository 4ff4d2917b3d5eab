"""Texture measurements: a filter bank (Gaussian, LoG, gradient, Hessian eigenvalues, DoG) at a few
scales, read at the object pixels, and the orientation coherence of the Hessian."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svetlana.core.objects.measure_registry import SCALES
from svetlana.core.objects.measure_registry import dog_scales as _dog_scales
from svetlana.core.objects.measure_stats import Groups

_TRUNCATE = 3.0  # Gaussian kernels cut at this many standard deviations


def gaussian_filter(x: np.ndarray, sigma, truncate: float = _TRUNCATE) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=truncate), the same
    values (its kernels, its compiled correlation, axis after axis into an array of x's type),
    without importing scipy.ndimage."""
    from svetlana.core.objects.scipy_parts import correlate1d

    correlate = correlate1d()
    sigmas = np.broadcast_to(np.asarray(sigma, np.float64), (x.ndim,))
    out = np.empty(x.shape, x.dtype)
    src = x
    for axis, sd in enumerate(sigmas):
        if sd <= 1e-15:
            continue
        sd = float(sd)
        radius = int(truncate * sd + 0.5)
        grid = np.arange(-radius, radius + 1)
        phi = np.exp(-0.5 / (sd * sd) * grid**2)
        weights = np.ascontiguousarray((phi / phi.sum())[::-1], np.float64)
        correlate(src, weights, axis, out, 0, 0.0, 0)  # mode 0: "nearest"
        src = out
    if src is x:
        out[...] = x
    return out


class Neighbours:
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
    nb: Neighbours
    grp: Groups
    pick: np.ndarray | None  # indices into the band's object pixels; None: all of them


def texture_levels(
    p, local, grp, nb0, shape: tuple[int, ...], sig, coarse: bool = True
) -> list[_Level]:
    """Full resolution for the first scale; the others (when ``coarse``) on a grid subsampled
    by 2 (along the axes where the second scale is at least 1.5 pixels), read at the object
    pixels on that grid (a quarter of them in 2D) -- or at all pixels of an object that has
    none on it (tiny ones)."""
    nd = len(shape)
    levels = [_Level(np.ones(nd, int), p, nb0, grp, None)]
    if len(SCALES) == 1 or not coarse:
        return levels
    f = pyramid_factor(sig)
    on_grid = np.ones(p.size, bool)
    for a in range(nd):
        if f[a] > 1:
            on_grid &= local[a] % f[a] == 0
    if p.size:
        hits = np.bincount(grp.idx[on_grid], minlength=grp.uniq.size)
        on_grid |= (hits == 0)[grp.idx]
    pick = np.flatnonzero(on_grid)
    cshape = [(shape[a] - 1) // f[a] + 1 + 2 for a in range(nd)]  # g[::f] padded by 1
    cstrides = tuple(int(np.prod(cshape[a + 1 :])) for a in range(nd))
    cp = np.zeros(pick.size, np.intp)
    for a in range(nd):
        c = np.minimum((local[a][pick] + f[a] // 2) // f[a], (shape[a] - 1) // f[a]) + 1
        cp += c * cstrides[a]
    sub = grp.pick(pick)
    levels.append(_Level(f, cp, Neighbours(cp, cstrides), sub, pick))
    return levels


def pyramid_factor(sig) -> np.ndarray:
    """Subsampling factor per axis of the scales after the first (texture_levels)."""
    nd = len(sig[0])
    if len(SCALES) == 1:
        return np.ones(nd, int)
    return np.where(np.asarray(sig[1]) >= 1.5, 2, 1).astype(int)


def filter_reach(sig) -> np.ndarray:
    """Pixels (per axis) around an object pixel that its filter responses read: the cascaded
    Gaussians' truncated kernels (as scipy sizes them), the pyramid's sampling and the
    differences. A band cropped this far beyond its objects gives them the responses of the
    whole image, whichever other objects are measured with them."""
    f = pyramid_factor(sig)

    def radius(sd) -> np.ndarray:
        return (_TRUNCATE * np.asarray(sd, np.float64) + 0.5).astype(int)

    reach = radius(sig[0]) + 1
    prev = np.asarray(sig[0], np.float64) / f
    for s in sig[1:]:
        target = np.asarray(s, np.float64) / f
        reach += f * radius(np.sqrt(np.maximum(target**2 - prev**2, 0)))
        prev = target
    if len(sig) > 1:  # a coarse pixel's neighbours, its rounding and the coarse array's pad
        reach += 3 * f
    return reach


def _add_sums(acc, ch: int, j: int, grp: Groups, f, std: bool = True) -> None:
    """Add a response's per-object sum (and, for its ``std``, sum of squares); ``f`` may be a
    function giving it, called only when it is wanted."""
    u = grp.uniq
    f = f() if callable(f) else f
    acc.tex_sum[ch][j, u] += grp.sum(f)
    if std:
        acc.tex_sq[ch][j, u] += grp.sum(f * f)


def texture(norm, levels: list[_Level], sp, sig, acc, ch, ndimage) -> None:
    """Filter bank (Gaussian, LoG, gradient magnitude, Hessian eigenvalues, DoG) at each scale,
    only the responses (and of them the sums) of the columns wanted on ``ch``.

    Cascaded Gaussians; the scales after the first on a pyramid level (see texture_levels);
    derivatives by central differences at the sampled object pixels only."""
    from svetlana.core.objects.measure_registry import texture_names

    nd = norm.ndim
    names = acc.want.textures(ch)
    order = texture_names(nd)
    wanted = {t: (f"{t}_mean" in names, f"{t}_std" in names) for t in order}
    if ch == acc.want.texture[0]:  # the pixels each column averages, counted once
        for j, lv in enumerate(_level_of_columns(levels, nd)):
            acc.tex_n[j, lv.grp.uniq] += lv.grp.sizes

    def add(j: int, f, lv: _Level) -> None:
        mean, std = wanted[order[j]]
        if mean or std:
            _add_sums(acc, ch, j, lv.grp, f, std)

    step = sp / float(sp.min())  # pixel size along each axis, in units of the finest axis
    dogs = [s for s in _dog_scales() if wanted[f"dog_s{s:g}"] != (False, False)]

    def at(s: float) -> list[str]:  # the responses of scale s (the differences apart)
        return [t for t in order if t.endswith(f"_s{s:g}") and not t.startswith("dog_")]

    last = max(  # the last scale smoothed to
        [k for k, s in enumerate(SCALES) if any(any(wanted[t]) for t in at(s))]
        + [k for k, s in enumerate(SCALES) if f"coherence_s{s:g}" in names]
        + [SCALES.index(2 * s) for s in dogs],
        default=-1,
    )
    g = gaussian_filter(norm, sig[0])
    fine = g.reshape(-1)
    prev = sig[0]
    j = 0
    smooth_at = {}
    for s_idx, s in enumerate(SCALES[: last + 1]):
        lv = levels[min(s_idx, len(levels) - 1)]
        lstep = step * lv.factor
        if s_idx == 1:
            g = np.pad(g[tuple(slice(0, None, int(k)) for k in lv.factor)], 1, mode="edge")
            prev = sig[0] / lv.factor
        if s_idx > 0:
            target = sig[s_idx] / lv.factor
            extra = np.sqrt(np.maximum(target**2 - prev**2, 0))
            g = gaussian_filter(g, extra)
            prev = target
        flat = g.reshape(-1)
        center = flat.take(lv.idx)
        smooth_at[s] = (center, s_idx)
        some = {t.split("_s")[0] for t in at(s) if any(wanted[t])}
        tensor = f"coherence_s{s:g}" in names
        eig = tensor or any(f"hessian{k + 1}" in some for k in range(nd))
        if some - {"gauss"} or tensor:
            c2 = 2 * center
            grad2 = np.zeros(lv.idx.size, np.float32)
            hdiag = []
            hoff = {}
            for a in range(nd):
                plus, minus = lv.nb.read(flat, (a, 1)), lv.nb.read(flat, (a, -1))
                if "gradient" in some:
                    ga = (plus - minus) * np.float32(0.5 / lstep[a])
                    grad2 += ga * ga
                hdiag.append((plus + minus - c2) * np.float32(1.0 / lstep[a] ** 2))
                for b in range(a + 1, nd) if eig else ():
                    mixed = lv.nb.read(flat, (a, 1, b, 1)) - lv.nb.read(flat, (a, 1, b, -1))
                    mixed -= lv.nb.read(flat, (a, -1, b, 1))
                    mixed += lv.nb.read(flat, (a, -1, b, -1))
                    mixed *= np.float32(0.25 / (lstep[a] * lstep[b]))
                    hoff[(a, b)] = mixed
        if tensor:  # object-level orientation: the summed square of the Hessian (H.H)
            hm = [[hdiag[a] if a == b else hoff[(min(a, b), max(a, b))] for b in range(nd)]
                  for a in range(nd)]  # fmt: skip
            k = 0
            for a in range(nd):
                for b in range(a, nd):
                    prod = sum(hm[a][c] * hm[c][b] for c in range(nd))
                    acc.tensor[ch][s_idx, k, lv.grp.uniq] += lv.grp.sum(prod)
                    k += 1
        s2 = np.float32(s * s)
        add(j, center, lv)
        if "log" in some:
            add(j + 1, s2 * sum(hdiag), lv)
        if "gradient" in some:
            add(j + 2, np.float32(s) * np.sqrt(grad2), lv)
        if any(f"hessian{k + 1}" in some for k in range(nd)):
            for k, e in enumerate(_sym_eigvals(hdiag, hoff)):
                add(j + 3 + k, lambda e=e, s2=s2: s2 * e, lv)
        j += 3 + nd
    j = len(SCALES) * (3 + nd)
    for s in _dog_scales():
        if s not in dogs:
            j += 1
            continue
        (a_val, a_lvl), (b_val, b_lvl) = smooth_at[s], smooth_at[2 * s]
        lv = levels[min(b_lvl, len(levels) - 1)]
        if a_lvl != b_lvl:  # the finer one read at the coarser level's pixels
            a_val = fine.take(levels[0].idx[lv.pick])
        add(j, a_val - b_val, lv)
        j += 1


def _level_of_columns(levels: list[_Level], nd: int) -> list[_Level]:
    """The pyramid level each filter-bank response is read on, in texture_names order."""
    out = []
    for s_idx in range(len(SCALES)):
        out += [levels[min(s_idx, len(levels) - 1)]] * (3 + nd)
    for s in _dog_scales():
        out.append(levels[min(SCALES.index(2 * s), len(levels) - 1)])
    return out


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


def coherence(tensor: np.ndarray, nd: int) -> np.ndarray:
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

"""Measurement families beyond the first pass: object context (and which family a column
belongs to).

Context is computed from every object's centroid, size, elongation and mean intensity, over the
whole mask, so it is the same whether one object or all are measured:

* ``context_nn{1,2,4}``: distance to the 1st/2nd/4th nearest object (centroids), in median
  object diameters of the image; ``context_count_r{2,4}``: objects within 2/4 diameters (at most
  16); ``context_size_ratio``: size over the 6 nearest objects' mean size; ``context_nb_size``:
  their mean size in median sizes; ``context_nb_elongation``: their mean elongation;
  ``p context_nb_intensity`` (their mean normalised intensity, per channel prefix ``p``) and
  ``p context_intensity_ratio`` (the object's over theirs).

Tried and left out, as they did not pay on the real benchmark's tuning part (CoNSeP and
MitoCheck, tests/benchmarks/real.py; README, *Performance*), each within about a point of
balanced accuracy either way while costing measuring time on every image: Haralick
co-occurrence texture (8 levels, distances 1/2/4, 4 directions) and rotation-invariant uniform
local binary patterns (~40 % of the measuring time of a 16,671-object image); boundary radius
statistics and Fourier descriptors of the outline, and the intensity distribution
(CellProfiler's mass displacement, radial concentration) (~15 %).
"""

from __future__ import annotations

import math

import numpy as np

CONTEXT_K = 6  # nearest objects whose size and intensity make the neighbourhood
CONTEXT_RADII = (2, 4)  # in median object diameters
CONTEXT_MAX_COUNT = 16  # neighbours counted within a radius (a k-nearest query, not a ball)
CONTEXT_NN = (1, 2, 4)
_BAND_PIXELS = 1 << 21
STAIN_PREFIXES = ("hema_", "eosin_")


def family_of(name: str) -> str:
    """The family of a measurement column (for ablations and the README's tables)."""
    if name.startswith("nb_"):
        return "neighbours"
    if name.startswith("context_") or "_context_" in name:
        return "context"
    if name.startswith(STAIN_PREFIXES):
        return "stains"
    if name.startswith("ch"):
        rest = name.split("_", 1)[1]
        if rest.startswith("ring_"):
            return "ring"
        if rest.startswith("shell"):
            return "shells"
        if rest.startswith(("gauss", "log", "gradient", "hessian", "dog", "coherence")):
            return "filterbank"
        return "intensity"
    return "shape"


def family_names(nd: int, prefixes: list[str]) -> list[tuple[str, str]]:
    """Names and units of the family columns for ``nd``-D images with these channel prefixes."""
    out: list[tuple[str, str]] = []
    out += [(f"context_nn{k}", "") for k in CONTEXT_NN]
    out += [(f"context_count_r{r}", "") for r in CONTEXT_RADII]
    out += [("context_size_ratio", ""), ("context_nb_size", ""), ("context_nb_elongation", "")]
    for p in prefixes:
        out += [(f"{p}context_nb_intensity", ""), (f"{p}context_intensity_ratio", "")]
    return out


def context_columns(x) -> dict[str, np.ndarray]:
    """The context family's columns (a ``measure_registry.FamilyInput``), from every object of
    the mask: the band pass's sums when it measured every object, else one pass of bincounts."""
    chans = [x.channel_prefixes.index(p) for p in x.prefixes]
    nd = x.labels.ndim
    if x.every:
        size_all, centroid_all = x.count * float(np.prod(x.spacing)), x.centroid
        n = len(x.count)
        intensity_all = (
            np.stack([x.mean_intensity[c] for c in chans]) if chans else np.zeros((0, n))
        )
        elong_all = elongation(x.cov, x.spacing)
        rows = np.arange(int(x.present.size))
    else:
        ids_all, size_all, centroid_all, intensity_all, elong_all = object_sums(
            x.labels, [x.channels[c] for c in chans], [x.ranges[c] for c in chans], x.spacing
        )
        rows = np.searchsorted(ids_all, x.present)
    return _context_values(
        centroid_all, size_all, intensity_all, elong_all, rows, list(x.prefixes), nd,
        x.context_nearest if x.every else None,
    )  # fmt: skip


def context_nearest(centroid_all: np.ndarray, rows: np.ndarray | None = None):
    """Distances and indices (k-d tree query) of the nearest objects of the objects ``rows``
    (None: all) among every object (centroids in physical units), the first the object itself:
    what the context's columns are made of."""
    from svetlana.core.objects.scipy_parts import kdtree

    cKDTree = kdtree()  # noqa: N806 - scipy's class

    n_all = len(centroid_all)
    tree = cKDTree(centroid_all)
    k = min(max(max(CONTEXT_NN), CONTEXT_K, CONTEXT_MAX_COUNT) + 1, n_all)
    return tree.query(centroid_all if rows is None else centroid_all[rows], k=k)


def _context_values(
    centroid_all: np.ndarray,
    size_all: np.ndarray,
    intensity_all: np.ndarray,
    elongation_all: np.ndarray,
    rows: np.ndarray,
    prefixes: list[str],
    nd: int,
    nearest=None,
) -> dict[str, np.ndarray]:
    """Context of the objects at ``rows`` of the all-objects arrays (centroids in physical units,
    sizes, mean normalised intensity per channel ``(C, N)``). ``nearest``: a function giving
    ``context_nearest(centroid_all)`` (found meanwhile on a thread), used when ``rows`` are all."""
    n_all = len(size_all)
    diameter = (
        2 * np.sqrt(size_all / np.pi) if nd == 2 else np.cbrt(6 * np.maximum(size_all, 0) / np.pi)
    )
    unit = float(np.median(diameter)) if n_all else 1.0
    unit = unit if unit > 0 else 1.0
    cols: dict[str, np.ndarray] = {}
    m = len(rows)
    far = 100.0  # "no object that near": in diameters
    if n_all < 2:
        for k in CONTEXT_NN:
            cols[f"context_nn{k}"] = np.full(m, far)
        for r in CONTEXT_RADII:
            cols[f"context_count_r{r}"] = np.zeros(m)
        cols["context_size_ratio"] = np.ones(m)
        cols["context_nb_size"] = np.ones(m)
        cols["context_nb_elongation"] = np.ones(m)
        for c, pre in enumerate(prefixes):
            cols[f"{pre}context_nb_intensity"] = intensity_all[c][rows]
            cols[f"{pre}context_intensity_ratio"] = np.ones(m)
        return cols
    if nearest is not None and np.array_equal(rows, np.arange(n_all)):
        dist, idx = nearest()
    else:
        dist, idx = context_nearest(centroid_all, rows)
    dist, idx = dist[:, 1:], idx[:, 1:]  # the first is the object itself
    for kk in CONTEXT_NN:
        cols[f"context_nn{kk}"] = (
            dist[:, kk - 1] / unit if kk - 1 < dist.shape[1] else np.full(m, far)
        )
    for r in CONTEXT_RADII:
        cols[f"context_count_r{r}"] = (dist <= r * unit).sum(1).astype(np.float64)
    nb = idx[:, :CONTEXT_K]
    nb_size = size_all[nb].mean(1)
    median_size = float(np.median(size_all)) or 1.0
    cols["context_size_ratio"] = size_all[rows] / np.maximum(nb_size, 1e-12)
    cols["context_nb_size"] = nb_size / median_size
    cols["context_nb_elongation"] = elongation_all[nb].mean(1)
    for c, pre in enumerate(prefixes):
        nbi = intensity_all[c][nb].mean(1)
        cols[f"{pre}context_nb_intensity"] = nbi
        own = intensity_all[c][rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"{pre}context_intensity_ratio"] = np.where(np.abs(nbi) > 1e-6, own / nbi, 1.0)
    return cols


def object_sums(labels, channels, ranges, sp, band_pixels: int = _BAND_PIXELS):
    """Every object of ``labels`` (numpy, or read along axis 0): ids, sizes (physical),
    centroids (physical) and mean normalised intensity per channel, in one pass of bands."""
    nd = labels.ndim
    shape = labels.shape
    step = max(1, band_pixels // max(1, int(np.prod(shape[1:]))))
    keys = []
    parts = []
    for a0 in range(0, shape[0], step):
        a1 = min(shape[0], a0 + step)
        lab = np.asarray(labels[a0:a1])
        pos = np.nonzero(lab)
        if pos[0].size == 0:
            continue
        v = lab[pos].astype(np.int64)
        uniq, inv = np.unique(v, return_inverse=True)
        cols = [np.bincount(inv, minlength=uniq.size).astype(np.float64)]
        coord = [(pos[0] + a0) * sp[0]] + [pos[k] * sp[k] for k in range(1, nd)]
        cols += [np.bincount(inv, coord[k], minlength=uniq.size) for k in range(nd)]
        cols += [
            np.bincount(inv, coord[a] * coord[b], minlength=uniq.size)
            for a in range(nd)
            for b in range(a, nd)
        ]
        region = (slice(a0, a1),) + (slice(None),) * (nd - 1)
        for c in range(len(ranges)):
            ch = np.asarray(channels[c][region], np.float32)[pos]
            cols.append(np.bincount(inv, ch, minlength=uniq.size))
        keys.append(uniq)
        parts.append(np.stack(cols, 1))
    if not keys:
        empty = np.zeros(0)
        return np.zeros(0, np.int64), empty, np.zeros((0, nd)), np.zeros((len(ranges), 0)), empty
    allk = np.concatenate(keys)
    allv = np.concatenate(parts)
    ids, inv = np.unique(allk, return_inverse=True)
    tot = np.zeros((ids.size, allv.shape[1]))
    np.add.at(tot, inv, allv)
    cnt = np.maximum(tot[:, 0], 1)
    centroid = tot[:, 1 : 1 + nd] / cnt[:, None]
    n_mom = nd * (nd + 1) // 2
    cov = np.empty((ids.size, nd, nd))
    k = 1 + nd
    for a in range(nd):
        for b in range(a, nd):
            cov[:, a, b] = cov[:, b, a] = tot[:, k] / cnt - centroid[:, a] * centroid[:, b]
            k += 1
    # Normalised after the mean (as Accumulators.mean_intensity): the same value either way.
    lo = np.asarray([r[0] for r in ranges], np.float64)
    hi = np.asarray([r[1] for r in ranges], np.float64)
    intensity = ((tot[:, 1 + nd + n_mom :] / cnt[:, None] - lo) / (hi - lo)).T
    size = tot[:, 0] * float(math.prod(sp))
    return ids, size, centroid, intensity, elongation(cov, sp)


def elongation(cov: np.ndarray, sp) -> np.ndarray:
    """sqrt(largest / smallest eigenvalue) of each object's coordinate covariance (a pixel's own
    spread added, so 1-pixel objects are round)."""
    reg = np.diag(np.asarray(sp, np.float64) ** 2 / 12.0)
    eig = np.linalg.eigvalsh(cov + reg[np.newaxis])
    return np.sqrt(np.maximum(eig[:, -1], 1e-12) / np.maximum(eig[:, 0], 1e-12))

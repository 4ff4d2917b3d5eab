"""Shape measurements: the band pass's boundary step (Crofton perimeter, Euler number, convex-hull
support) and the shape columns from the accumulated sums."""

from __future__ import annotations

import math

import numpy as np

_HULL_DIRECTIONS = 24  # support directions of the 2D convex-hull polygon


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


def _hull_euler_3d(acc, labels, present, sp) -> tuple[np.ndarray, np.ndarray]:
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


def boundary_band(acc, lab, p, prow, grp, nb0, origin, sp, centroid, strides, ndimage) -> None:
    """Boundary pixels of one band (a neighbour, diagonals included, with another value; outside
    = 0): Crofton crossings, Euler quads and hull support (2D), faces and hull points (3D)."""
    flat_lab = lab.reshape(-1)
    if lab.ndim == 2:
        # The 8 neighbours' labels give the boundary, the Crofton crossings and the Euler number.
        plab = flat_lab[p]
        diag = np.float32(1.0 / math.sqrt(2.0))
        inner = np.ones(p.size, bool)
        same = {}
        keys = {(0, 1): ((1, 1), (1, -1)), (1, 0): ((0, 1), (0, -1)),
                (1, 1): ((0, 1, 1, 1), (0, -1, 1, -1)), (1, -1): ((0, 1, 1, -1), (0, -1, 1, 1))}  # fmt: skip
        for delta in keys:
            n1 = nb0.read(flat_lab, keys[delta][0]) == plab
            n2 = nb0.read(flat_lab, keys[delta][1]) == plab
            same[delta], same[(-delta[0], -delta[1])] = n1, n2
            inner &= n1
            inner &= n2
        is_b = np.flatnonzero(~inner)  # (an inner pixel adds nothing below)
        same = {k: v[is_b] for k, v in same.items()}
        weight = np.zeros(is_b.size, np.float32)
        for delta, w in (((0, 1), 1.0), ((1, 0), 1.0), ((1, 1), diag), ((1, -1), diag)):
            n1, n2 = same[delta], same[(-delta[0], -delta[1])]
            weight += np.float32(w) * ((~n1).astype(np.float32) + ~n2)
        bgrp = grp.pick(is_b)
        bu = bgrp.uniq
        acc.crofton[bu] += bgrp.sum(weight)
        acc.euler[bu] += bgrp.sum(_euler_quads(same))
        # Convex hull support values of the pixel squares, about the centroid: the maximum
        # and minimum projections on K/2 axes give the K directions. Along a row the
        # projection is linear: the ends of the object's runs attain them.
        ends = np.flatnonzero(~(same[(0, 1)] & same[(0, -1)]))
        hgrp = bgrp.pick(ends)
        bp, brow = p[is_b[ends]], prow[is_b[ends]]
        half = _HULL_DIRECTIONS // 2
        bl = np.unravel_index(bp, lab.shape)
        by = (bl[0] - 1 + origin[0]) * sp[0] - centroid[brow, 0]
        bx = (bl[1] - 1 + origin[1]) * sp[1] - centroid[brow, 1]
        if bp.size:
            for k in range(half):
                t = k * np.pi / half
                cy, cx = math.sin(t), math.cos(t)
                pad = 0.5 * (sp[0] * abs(cy) + sp[1] * abs(cx))
                proj = by * cy + bx * cx
                hi = hgrp.max(proj) + pad
                lo = pad - hgrp.min(proj)
                acc.support[bu, k] = np.maximum(acc.support[bu, k], hi)
                acc.support[bu, k + half] = np.maximum(acc.support[bu, k + half], lo)
        return
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


def shape_columns(acc, nd, sp, count, cov, labels, present, names=None) -> dict[str, np.ndarray]:
    """The shape columns from the pre-pass moments and the boundary sums (of ``names`` only,
    when given: the boundary's and the box's need the band pass to have gathered them)."""
    cols: dict[str, np.ndarray] = {}
    names = set(names) if names is not None else None

    def wanted(*these: str) -> bool:
        return names is None or any(n in names for n in these)

    size = count * float(np.prod(sp))
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
    if wanted("extent"):
        box = np.prod((acc.bmax - acc.bmin + 1) * sp, axis=1)
        cols["extent"] = size / box
    hull = None
    if nd == 2:
        # Crofton: half the mean number of boundary crossings over 4 line directions.
        per = np.pi / 8 * acc.crofton * math.sqrt(sp[0] * sp[1])
        cols["perimeter"] = per
        cols["circularity"] = np.minimum(4 * np.pi * size / np.maximum(per, 1e-12) ** 2, 1.0)
        if wanted("solidity"):
            hull = _hull_area(acc.support)
        cols["euler_number"] = acc.euler / 4.0
    else:
        surf = 2.0 / 3.0 * acc.crofton  # faces weighted by their area (set per band)
        cols["surface_area"] = surf
        sph = np.pi ** (1 / 3) * (6 * size) ** (2 / 3) / np.maximum(surf, 1e-12)
        cols["sphericity"] = np.minimum(sph, 1.0)
        if wanted("solidity", "euler_number"):
            hull, euler = _hull_euler_3d(acc, labels, present, sp)
            cols["euler_number"] = euler
    if hull is not None:
        cols["solidity"] = np.clip(size / np.maximum(hull, size), 0.0, 1.0)
    return cols

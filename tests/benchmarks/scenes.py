"""Benchmark scenes: the paper's experiments 1 and 2, 3D spheres, and a 16,671-object 4096^2 image."""

from __future__ import annotations

import numpy as np

from svetlana.core.synthetic.easy import Scene, infection_scene, sphere_scene, texture_scene


def exp1_scene(seed: int = 0) -> Scene:
    """Experiment 1: 345 round objects, striped or dotted, equal size and mean brightness."""
    return texture_scene(n_objects=345, shape=(800, 800), seed=seed)


def exp2_scene(seed: int = 0) -> Scene:
    """Experiment 2: 245 nuclei, two channels; infected = spots inside, decoys just outside."""
    return infection_scene(n_objects=245, shape=(1024, 1024), seed=seed)


def sphere3d_scene(seed: int = 0) -> Scene:
    """200 textured spheres in a 64x256x256 volume, one channel."""
    return sphere_scene(n_objects=200, shape=(64, 256, 256), seed=seed)


def big_scene(seed: int = 0, n_objects: int = 16_671, size: int = 4096) -> Scene:
    """``n_objects`` jittered discs on a ``size`` x ``size`` grid, striped or dotted (vectorised).

    Built from per-pixel lookups (no per-object loop), so 16,671 objects take a few seconds.
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_objects)))
    cell = size / side
    r_max = 0.36 * cell
    cells = rng.permutation(side * side)[:n_objects]
    cy = (cells // side + 0.5) * cell + rng.uniform(-0.1, 0.1, n_objects) * cell
    cx = (cells % side + 0.5) * cell + rng.uniform(-0.1, 0.1, n_objects) * cell
    radius = rng.uniform(0.75, 1.0, n_objects) * r_max
    ids = (3 * rng.permutation(n_objects) + 7).astype(np.int32)
    classes = rng.permutation(np.arange(n_objects) % 2)
    # Per-cell lookup tables (cell index -> object), -1 for empty cells.
    obj_of_cell = np.full(side * side, -1, np.int64)
    obj_of_cell[cells] = np.arange(n_objects)
    yy = np.arange(size, dtype=np.float32)
    row = np.minimum((yy / cell).astype(np.int64), side - 1)
    labels = np.zeros((size, size), np.int32)
    image = np.empty((size, size), np.float32)
    theta = rng.uniform(0, np.pi, n_objects)
    phase = rng.uniform(0, 2 * np.pi, n_objects)
    dots = rng.random((size, size), dtype=np.float32) < 0.06
    from scipy import ndimage

    dot_field = ndimage.gaussian_filter(dots.astype(np.float32), 1.0)
    dot_field = (dot_field - dot_field.mean()) / dot_field.std()
    step = 256
    for y0 in range(0, size, step):  # in bands, so the temporaries stay small
        ys = yy[y0 : y0 + step, None]
        xs = yy[None, :]
        k = obj_of_cell[row[y0 : y0 + step, None] * side + row[None, :]]
        valid = k >= 0
        kk = np.where(valid, k, 0)
        d2 = (ys - cy[kk]) ** 2 + (xs - cx[kk]) ** 2
        inside = valid & (d2 <= radius[kk] ** 2)
        stripes = np.sin(
            2 * np.pi * (ys * np.cos(theta[kk]) + xs * np.sin(theta[kk])) / 4.0 + phase[kk]
        ) * np.sqrt(2)
        texture = np.where(classes[kk] == 0, stripes, dot_field[y0 : y0 + step])
        band = 400.0 + rng.normal(0, 40, size=inside.shape).astype(np.float32)
        band += inside * (1200.0 + 350.0 * texture)
        image[y0 : y0 + step] = band
        labels[y0 : y0 + step] = np.where(inside, ids[kk], 0)
    img16 = np.clip(np.round(image), 0, 65535).astype(np.uint16)
    truth = {int(i): int(c) for i, c in zip(ids, classes, strict=True)}
    return Scene(img16[np.newaxis], labels, truth, ("striped", "dotted"))


SCENES = {
    "exp1": exp1_scene,
    "exp2": exp2_scene,
    "sphere3d": sphere3d_scene,
    "big": big_scene,
}

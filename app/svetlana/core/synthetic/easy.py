"""Generated scenes with known classes (for the demo, tests and benchmarks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scene:
    """A channel-first uint16 image, its label mask (non-contiguous ids) and true classes."""

    image: np.ndarray
    labels: np.ndarray
    classes: dict[int, int]
    class_names: tuple[str, ...]
    spacing: tuple[float, ...] | None = None  # (Z, Y, X) voxel size when it is not isotropic


def _place(
    rng: np.random.Generator,
    n: int,
    shape: tuple[int, ...],
    radii: np.ndarray,
    gap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Random centres whose balls are at least ``gap`` apart (negative gap = may touch)."""
    centres: list[np.ndarray] = []
    kept: list[float] = []
    lo = np.ceil(radii.max()) + 1
    hi = np.asarray(shape) - lo
    if np.any(hi <= lo):
        raise ValueError(f"shape {shape} is too small for objects of radius {radii.max():.0f}")
    tries = 0
    i = 0
    while i < n and tries < 200:
        cand = rng.uniform(lo, hi, size=(256, len(shape)))
        for c in cand:
            r = radii[i]
            if centres:
                d = np.sqrt(((np.asarray(centres) - c) ** 2).sum(axis=1))
                if np.any(d < np.asarray(kept) + r + gap):
                    continue
            centres.append(c)
            kept.append(r)
            i += 1
            if i == n:
                break
        tries += 1
    if i < n:
        log.warning("only %d of %d objects fit in shape %s", i, n, shape)
    return np.asarray(centres).reshape(-1, len(shape)), np.asarray(kept)


def _ids_and_classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = 3 * rng.permutation(n) + 7  # non-contiguous, in no particular order
    classes = rng.permutation(np.arange(n) % 2)
    return ids.astype(np.int32), classes


def _zscore(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def _textured_objects(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    n_objects: int,
    radius: tuple[float, float],
    period: float,
    dot_density: float,
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Balls with striped (class 0) or dotted (class 1) texture of equal mean and contrast."""
    nd = len(shape)
    radii = rng.uniform(*radius, size=n_objects)
    centres, radii = _place(rng, n_objects, shape, radii, gap=-1.0)
    n = len(centres)
    ids, classes = _ids_and_classes(rng, n)
    # One field of small dots for the whole frame; each dotted object takes its own piece.
    from scipy import ndimage

    dots = (rng.random(shape) < dot_density).astype(np.float32)
    dots = ndimage.gaussian_filter(dots, 1.0)
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    for k in range(n):
        c, r = centres[k], radii[k]
        lo = np.maximum(np.floor(c - r).astype(int), 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grid = np.ogrid[box]
        inside = sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True)) <= r * r
        if classes[k] == 0:
            direction = rng.normal(size=nd)
            direction /= np.linalg.norm(direction)
            phase = rng.uniform(0, 2 * np.pi)
            proj = sum(g * d for g, d in zip(grid, direction, strict=True))
            texture = np.sin(2 * np.pi * proj / period + phase)
            texture = np.broadcast_to(texture, inside.shape)[inside]
        else:
            texture = dots[box][inside]
        labels[box][inside] = ids[k]
        signal[box][inside] = _zscore(texture.astype(np.float32))
    return labels, signal, {int(i): int(c) for i, c in zip(ids, classes, strict=True)}


def _to_uint16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 65535).astype(np.uint16)


def texture_scene(
    n_objects: int = 150, shape: tuple[int, int] = (512, 512), seed: int = 0
) -> Scene:
    """Round objects of equal size and mean brightness, striped or dotted (experiment 1)."""
    rng = np.random.default_rng(seed)
    labels, signal, classes = _textured_objects(
        rng, tuple(shape), n_objects, radius=(9.0, 12.0), period=4.0, dot_density=0.06
    )
    fg = labels > 0
    image = 400.0 + rng.normal(0, 40, size=labels.shape)
    image[fg] += 1200.0 + 350.0 * signal[fg]
    return Scene(_to_uint16(image)[np.newaxis], labels, classes, ("striped", "dotted"))


def infection_scene(
    n_objects: int = 120, shape: tuple[int, int] = (512, 512), seed: int = 0
) -> Scene:
    """Two channels (experiment 2): nuclei, and spots inside infected / just outside uninfected nuclei."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    radii = rng.uniform(9.0, 13.0, size=n_objects)
    # The gap leaves room for the decoy spots outside a nucleus without touching its neighbour.
    centres, radii = _place(rng, n_objects, shape, radii, gap=10.0)
    n = len(centres)
    ids, cls = _ids_and_classes(rng, n)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    nuclei = np.zeros(shape, np.float32)
    spots = np.zeros(shape, np.float32)
    for k in range(n):
        (cy, cx), r = centres[k], radii[k]
        lo = np.maximum(np.floor([cy - r, cx - r]).astype(int), 0)
        hi = np.minimum(np.ceil([cy + r, cx + r]).astype(int) + 1, shape)
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
        d2 = (yy[box[0]] - cy) ** 2 + (xx[:, box[1]] - cx) ** 2
        inside = d2 <= r * r
        labels[box][inside] = ids[k]
        # Hoechst-like: bright, a little brighter towards the centre.
        brightness = rng.uniform(900, 1100)
        nuclei[box][inside] = brightness * (1.0 - 0.25 * d2[inside] / (r * r))
        n_spots = rng.integers(2, 5)
        angles = rng.uniform(0, 2 * np.pi, n_spots)
        if cls[k] == 1:
            dist = rng.uniform(0, 0.6 * r, n_spots)
        else:
            dist = r + rng.uniform(2.5, 5.0, n_spots)
        py = np.clip(np.round(cy + dist * np.sin(angles)).astype(int), 0, shape[0] - 1)
        px = np.clip(np.round(cx + dist * np.cos(angles)).astype(int), 0, shape[1] - 1)
        spots[py, px] += 1.0
    spots = ndimage.gaussian_filter(spots, 1.2) * (2 * np.pi * 1.2**2)  # peak ~1 per spot
    ch0 = 200.0 + ndimage.gaussian_filter(nuclei, 1.0) + rng.normal(0, 30, size=shape)
    ch1 = 150.0 + 1500.0 * spots + rng.normal(0, 25, size=shape)
    image = np.stack([_to_uint16(ch0), _to_uint16(ch1)])
    classes = {int(i): int(c) for i, c in zip(ids, cls, strict=True)}
    return Scene(image, labels, classes, ("uninfected", "infected"))


def sphere_scene(
    n_objects: int = 40, shape: tuple[int, int, int] = (48, 128, 128), seed: int = 0
) -> Scene:
    """3D spheres, striped or dotted, of equal mean brightness; one channel."""
    rng = np.random.default_rng(seed)
    labels, signal, classes = _textured_objects(
        rng, tuple(shape), n_objects, radius=(6.0, 8.0), period=4.0, dot_density=0.04
    )
    fg = labels > 0
    image = 400.0 + rng.normal(0, 40, size=labels.shape)
    image[fg] += 1200.0 + 350.0 * signal[fg]
    return Scene(_to_uint16(image)[np.newaxis], labels, classes, ("striped", "dotted"))

"""Hard benchmark scenes: realistic noise, brightness spread, several images, anisotropy, rarity.

Every scene is imaged the same way: expected photon counts (object signal plus background) are
blurred by a Gaussian PSF, drawn from a Poisson distribution, scaled by a camera gain, shifted by
an offset and given Gaussian read noise. Objects differ in size, may touch, and each has its own
brightness (log-normal spread), so no class can be told apart by mean brightness unless the scene
says so. ``SCENES`` maps a name to ``f(seed, scale=1.0) -> SceneSet``; ``scale`` < 1 shrinks the
image area and object count (for tests).

~460 lines: one generator per hard benchmark scene, each short; they share the placement and
noise helpers at the top.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from svetlana.core.synthetic.easy import Scene, _place

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneSet:
    """One benchmark case: its images (each a ``Scene`` with true classes) and how to label it."""

    name: str
    images: tuple[Scene, ...]
    class_names: tuple[str, ...]
    n_labels: int  # how many objects a user labels
    label_images: tuple[int, ...]  # indices of the images the labels are drawn from
    description: str

    @property
    def n_objects(self) -> int:
        return sum(len(s.classes) for s in self.images)


@dataclass(frozen=True)
class _Camera:
    gain: float = 1.0  # grey levels per photon
    offset: float = 100.0
    read_noise: float = 3.0  # grey levels
    psf_sigma: tuple[float, ...] = (1.0, 1.0)  # pixels per axis


def _image(rng: np.random.Generator, photons: np.ndarray, cam: _Camera) -> np.ndarray:
    """Blur, Poisson noise, gain, offset and read noise; uint16."""
    from scipy import ndimage

    expected = ndimage.gaussian_filter(photons.astype(np.float32), cam.psf_sigma)
    counts = rng.poisson(np.clip(expected, 0, None)).astype(np.float32)
    values = cam.gain * counts + cam.offset + rng.normal(0, cam.read_noise, counts.shape)
    return np.clip(np.round(values), 0, 65535).astype(np.uint16)


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return (3 * rng.permutation(n) + 7).astype(np.int32)  # non-contiguous, in no order


def _balanced(rng: np.random.Generator, n: int, fractions: tuple[float, ...]) -> np.ndarray:
    counts = np.floor(np.asarray(fractions) * n).astype(int)
    counts[0] += n - counts.sum()
    return rng.permutation(np.repeat(np.arange(len(fractions)), counts))


@dataclass(frozen=True)
class _Obj:
    box: tuple[slice, ...]
    rel: tuple[np.ndarray, ...]  # physical offsets from the centre, broadcastable over the box
    radius: float


def _objects(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    radii: np.ndarray,
    spacing: tuple[float, ...] | None = None,
    gap: float = -2.0,
    reach: float = 1.0,
) -> Iterator[_Obj]:
    """Place balls (physical radius ``radii``; may touch when gap < 0) and yield their boxes.

    ``reach`` > 1 makes the boxes larger than the balls (for shapes that stick out).
    """
    spacing = tuple(spacing) if spacing is not None else (1.0,) * len(shape)
    sp = np.asarray(spacing, dtype=np.float64)
    physical = tuple(float(s * d) for s, d in zip(shape, sp, strict=True))
    centres, kept = _place(rng, len(radii), physical, np.asarray(radii) * reach, gap)
    for c, r in zip(centres, kept, strict=True):
        lo = np.maximum(np.floor((c - r) / sp).astype(int), 0)
        hi = np.minimum(np.ceil((c + r) / sp).astype(int) + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grid = np.ogrid[box]
        rel = tuple(g * s - ci for g, s, ci in zip(grid, sp, c, strict=True))
        yield _Obj(box, rel, float(r / reach))


def _ball(obj: _Obj) -> np.ndarray:
    d2 = sum(r**2 for r in obj.rel)
    return np.broadcast_to(d2 <= obj.radius**2, tuple(s.stop - s.start for s in obj.box))


def _paint(
    labels: np.ndarray, photons: np.ndarray, obj: _Obj, inside: np.ndarray, oid: int, values
) -> None:
    values = np.asarray(values, np.float32)
    if values.ndim == 0 or values.shape == inside.shape:
        values = np.broadcast_to(values, inside.shape)[inside]
    labels[obj.box][inside] = oid
    photons[obj.box][inside] = values


def _finish(labels: np.ndarray, ids: np.ndarray, cls: np.ndarray) -> dict[int, int]:
    """True classes of the objects that survived painting (a later object may cover one)."""
    present = set(np.unique(labels).tolist()) - {0}
    return {int(i): int(c) for i, c in zip(ids, cls, strict=True) if int(i) in present}


def _scaled(shape: tuple[int, ...], n: int, scale: float) -> tuple[tuple[int, ...], int]:
    f = math.sqrt(scale)
    yx = tuple(max(64, int(round(s * f))) for s in shape[-2:])
    return (*shape[:-2], *yx), max(8, int(round(n * scale)))


def _brightness(rng: np.random.Generator, n: int, mean: float, spread: float = 0.3) -> np.ndarray:
    """Per-object brightness, log-normal with the given mean and spread (sigma of the log)."""
    return mean * np.exp(rng.normal(-0.5 * spread**2, spread, n))


# --- (a, b) textures of equal mean brightness ------------------------------------------------


def _texture_volume(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    n: int,
    radius: tuple[float, float],
    spacing: tuple[float, ...] | None,
    psf: tuple[float, ...],
    period: float,
    contrast: float = 0.3,
    photons_per_px: float = 100.0,
) -> Scene:
    from scipy import ndimage

    nd = len(shape)
    radii = rng.uniform(*radius, n)
    cls_all = _balanced(rng, n, (0.5, 0.5))
    ids_all = _ids(rng, n)
    sp = np.asarray(spacing if spacing is not None else (1.0,) * nd)
    # One field of small dots for the whole frame; each dotted object takes its own piece.
    dots = (rng.random(shape) < 0.05 * float(np.prod(sp))).astype(np.float32)
    dots = ndimage.gaussian_filter(dots, 0.8 / sp)
    labels = np.zeros(shape, np.int32)
    photons = np.full(shape, 40.0, np.float32)
    bright = _brightness(rng, n, photons_per_px, spread=0.35)
    k = -1
    for k, obj in enumerate(_objects(rng, shape, radii, spacing)):
        inside = _ball(obj)
        if cls_all[k] == 0:
            direction = rng.normal(size=nd)
            direction /= np.linalg.norm(direction)
            proj = sum(r * d for r, d in zip(obj.rel, direction, strict=True))
            texture = np.sin(2 * np.pi * proj / period + rng.uniform(0, 2 * np.pi))
            texture = np.broadcast_to(texture, inside.shape)[inside]
        else:
            texture = dots[obj.box][inside]
        t = texture.astype(np.float32)
        t = (t - t.mean()) / (t.std() or 1.0)
        _paint(
            labels, photons, obj, inside, ids_all[k], bright[k] * (1.0 + contrast * t).clip(0.05)
        )
    ids, cls = ids_all[: k + 1], cls_all[: k + 1]
    cam = _Camera(gain=2.0, offset=100.0, read_noise=4.0, psf_sigma=psf)
    image = _image(rng, photons, cam)[np.newaxis]
    spacing_out = tuple(float(s) for s in sp) if spacing is not None else None
    return Scene(image, labels, _finish(labels, ids, cls), ("striped", "dotted"), spacing_out)


def texture2d(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(a) 345 touching discs (r 7-13 px), striped or dotted, equal mean; Poisson + read noise."""
    rng = np.random.default_rng([seed, 1])
    shape, n = _scaled((800, 800), 345, scale)
    scene = _texture_volume(rng, shape, n, (7.0, 13.0), None, (1.0, 1.0), 5.0)
    return SceneSet(
        "texture2d", (scene,), scene.class_names, 100, (0,),
        "2D: striped vs dotted texture, equal mean brightness, per-object brightness spread",
    )  # fmt: skip


def texture3d(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(b) 150 touching spheres (r 6-9 px), striped or dotted, isotropic voxels."""
    rng = np.random.default_rng([seed, 2])
    shape, n = _scaled((48, 160, 160), 150, scale)
    scene = _texture_volume(
        rng, shape, n, (6.0, 9.0), None, (0.8, 0.8, 0.8), 6.0, contrast=0.5, photons_per_px=150.0
    )
    return SceneSet(
        "texture3d", (scene,), scene.class_names, 60, (0,),
        "3D: striped vs dotted spheres, isotropic, equal mean brightness",
    )  # fmt: skip


def texture3d_aniso(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(b) 150 touching spheres in a volume whose z step is 3x the xy pixel size."""
    rng = np.random.default_rng([seed, 3])
    shape, n = _scaled((20, 160, 160), 150, scale)
    spacing = (3.0, 1.0, 1.0)
    # The PSF is longer along z (physical sigma 2.0 vs 0.8), expressed here in voxels.
    scene = _texture_volume(
        rng, shape, n, (6.0, 9.0), spacing, (2.0 / 3.0, 0.8, 0.8), 7.0, contrast=0.5,
        photons_per_px=150.0,
    )  # fmt: skip
    return SceneSet(
        "texture3d_aniso", (scene,), scene.class_names, 60, (0,),
        "anisotropic 3D (z step 3x xy): striped vs dotted spheres",
    )  # fmt: skip


# --- (c) a spot at the centre or at the rim ----------------------------------------------------


def _spot_image(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    fractions: tuple[float, ...],
    where: Callable[[int, float], float | None],
    names: tuple[str, ...],
) -> Scene:
    """Discs of uniform (spread) brightness; ``where(cls, radius)`` = distance of the spot, or None."""
    radii = rng.uniform(8.0, 14.0, n)
    cls_all = _balanced(rng, n, fractions)
    ids_all = _ids(rng, n)
    bright = _brightness(rng, n, 120.0)
    labels = np.zeros(shape, np.int32)
    photons = np.full(shape, 30.0, np.float32)
    k = -1
    for k, obj in enumerate(_objects(rng, shape, radii)):
        inside = _ball(obj)
        r = obj.radius
        body = np.full(inside.shape, bright[k], np.float32)
        dist = where(int(cls_all[k]), r)
        spot_total = 1.5 * bright[k] * 2 * np.pi * 1.6**2  # the spot adds this many photons
        if dist is not None:
            angle = rng.uniform(0, 2 * np.pi)
            sy, sx = dist * np.sin(angle), dist * np.cos(angle)
            d2 = (obj.rel[0] - sy) ** 2 + (obj.rel[1] - sx) ** 2
            spot = np.exp(-d2 / (2 * 1.6**2)) * 1.5 * bright[k]
            body = body + spot
        else:
            # No spot: the same photons spread evenly, so the mean brightness says nothing.
            body = body + spot_total / max(int(inside.sum()), 1)
        _paint(labels, photons, obj, inside, ids_all[k], body)
    ids, cls = ids_all[: k + 1], cls_all[: k + 1]
    image = _image(rng, photons, _Camera(gain=2.0, offset=100.0, read_noise=4.0))[np.newaxis]
    return Scene(image, labels, _finish(labels, ids, cls), names)


def spot_position(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(c) 300 discs with one bright spot near the centre (class 0) or near the rim (class 1)."""
    rng = np.random.default_rng([seed, 4])
    shape, n = _scaled((720, 720), 300, scale)

    def where(c: int, r: float) -> float:
        return rng.uniform(0.0, 0.2) * r if c == 0 else rng.uniform(0.6, 0.8) * r

    scene = _spot_image(rng, shape, n, (0.5, 0.5), where, ("centre", "rim"))
    return SceneSet(
        "spot_position", (scene,), scene.class_names, 100, (0,),
        "2D: the same bright spot at the centre vs at the rim of each object",
    )  # fmt: skip


def rare_class(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(g) 400 discs; 5 % carry one bright spot, the rest the same photons spread evenly."""
    rng = np.random.default_rng([seed, 5])
    shape, n = _scaled((820, 820), 400, scale)

    def where(c: int, r: float) -> float | None:
        return rng.uniform(0.0, 0.6) * r if c == 1 else None

    scene = _spot_image(rng, shape, n, (0.95, 0.05), where, ("common", "rare"))
    return SceneSet(
        "rare_class", (scene,), scene.class_names, 100, (0,),
        "2D: a rare class (5 %) marked by a spot; 100 random labels hold ~5 of it",
    )  # fmt: skip


# --- (d) size classes over 4 images of different gain and offset ------------------------------


def size_gain(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(d) small vs large objects (overlapping sizes) in 4 images of different gain/offset."""
    rng = np.random.default_rng([seed, 6])
    shape, n = _scaled((512, 512), 110, scale)
    cams = (
        _Camera(gain=0.7, offset=100.0),
        _Camera(gain=1.3, offset=400.0),
        _Camera(gain=2.5, offset=900.0),
        _Camera(gain=4.0, offset=1800.0),
    )
    images = []
    for cam in cams:
        cls_all = _balanced(rng, n, (0.5, 0.5))
        radii = np.where(cls_all == 0, rng.uniform(5.5, 9.5, n), rng.uniform(9.0, 13.0, n))
        ids_all = _ids(rng, n)
        bright = _brightness(rng, n, 150.0, spread=0.35)
        labels = np.zeros(shape, np.int32)
        photons = np.full(shape, rng.uniform(20, 60), np.float32)
        k = -1
        # Placed largest first so that a touching neighbour never hides a small object.
        order = np.argsort(-radii)
        for k, obj in enumerate(_objects(rng, shape, radii[order])):
            j = order[k]
            inside = _ball(obj)
            texture = 1.0 + 0.2 * rng.normal(size=inside.shape).astype(np.float32)
            _paint(labels, photons, obj, inside, ids_all[j], bright[j] * texture)
        placed = order[: k + 1]
        scene = Scene(
            _image(rng, photons, cam)[np.newaxis],
            labels,
            _finish(labels, ids_all[placed], cls_all[placed]),
            ("small", "large"),
        )
        images.append(scene)
    return SceneSet(
        "size_gain", tuple(images), ("small", "large"), 100, (0, 1),
        "2D, 4 images of different gain and offset: small vs large; labels from images 1-2",
    )  # fmt: skip


# --- (e) shape classes ----------------------------------------------------------------------


def _shape_image(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    boundary: Callable[[int, float, np.ndarray], np.ndarray],
    names: tuple[str, ...],
    reach: float,
) -> Scene:
    """Objects of equal area distribution whose outline ``boundary(cls, r, theta)`` differs."""
    radii = rng.uniform(7.0, 12.0, n)
    cls_all = _balanced(rng, n, (0.5, 0.5))
    ids_all = _ids(rng, n)
    bright = _brightness(rng, n, 140.0)
    labels = np.zeros(shape, np.int32)
    photons = np.full(shape, 30.0, np.float32)
    k = -1
    for k, obj in enumerate(_objects(rng, shape, radii, gap=-1.0, reach=reach)):
        y, x = obj.rel
        theta = np.arctan2(y, x)
        rho = np.sqrt(y**2 + x**2)
        inside = np.broadcast_to(rho <= boundary(int(cls_all[k]), obj.radius, theta), rho.shape)
        inside = inside & (labels[obj.box] == 0)  # touch, never overlap
        texture = 1.0 + 0.2 * rng.normal(size=inside.shape).astype(np.float32)
        _paint(labels, photons, obj, inside, ids_all[k], bright[k] * texture)
    ids, cls = ids_all[: k + 1], cls_all[: k + 1]
    image = _image(rng, photons, _Camera(gain=2.0, offset=100.0, read_noise=4.0))[np.newaxis]
    return Scene(image, labels, _finish(labels, ids, cls), names)


def shape_elongated(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(e) round (aspect 1-1.3) vs elongated (aspect 1.8-2.8) ellipses of the same area range."""
    rng = np.random.default_rng([seed, 7])
    shape, n = _scaled((720, 720), 300, scale)

    def boundary(c: int, r: float, theta: np.ndarray) -> np.ndarray:
        aspect = rng.uniform(1.0, 1.3) if c == 0 else rng.uniform(1.8, 2.8)
        a, b = r * math.sqrt(aspect), r / math.sqrt(aspect)  # same area as the disc of radius r
        phi = theta - rng.uniform(0, np.pi)
        return a * b / np.sqrt((b * np.cos(phi)) ** 2 + (a * np.sin(phi)) ** 2)

    scene = _shape_image(rng, shape, n, boundary, ("round", "elongated"), reach=1.7)
    return SceneSet(
        "shape_elongated", (scene,), scene.class_names, 100, (0,),
        "2D: round vs elongated objects of the same size range",
    )  # fmt: skip


def shape_lobed(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(e) convex (slightly oval) vs lobed (3-5 lobes) outlines of the same size range."""
    rng = np.random.default_rng([seed, 8])
    shape, n = _scaled((720, 720), 300, scale)

    def boundary(c: int, r: float, theta: np.ndarray) -> np.ndarray:
        phase = rng.uniform(0, 2 * np.pi)
        if c == 0:
            return r * (1.0 + rng.uniform(0.0, 0.12) * np.cos(2 * theta + phase))
        lobes = int(rng.integers(3, 6))
        return r * (1.0 + rng.uniform(0.2, 0.3) * np.cos(lobes * theta + phase))

    scene = _shape_image(rng, shape, n, boundary, ("convex", "lobed"), reach=1.3)
    return SceneSet(
        "shape_lobed", (scene,), scene.class_names, 100, (0,),
        "2D: convex vs lobed outlines of the same size range",
    )  # fmt: skip


# --- (f) a marker in a second channel under uneven illumination -------------------------------


def marker_uneven(seed: int = 0, scale: float = 1.0) -> SceneSet:
    """(f) 2 images x 180 nuclei; positives have 2x marker (channel 2) under a 3x illumination ramp."""
    rng = np.random.default_rng([seed, 9])
    shape, n = _scaled((768, 768), 180, scale)
    images = []
    for _ in range(2):
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        yy /= shape[0]
        xx /= shape[1]
        # Illumination: a tilted ramp times vignetting, from ~0.3 to 1 across the field.
        angle = rng.uniform(0, 2 * np.pi)
        ramp = 0.5 + 0.5 * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)) * 1.4
        cy, cx = rng.uniform(0.3, 0.7, 2)
        vignette = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5)
        light = (0.3 + 0.7 * np.clip(ramp, 0, 1) * vignette).astype(np.float32)
        cls_all = _balanced(rng, n, (0.5, 0.5))
        radii = rng.uniform(7.0, 12.0, n)
        ids_all = _ids(rng, n)
        nuc_b = _brightness(rng, n, 200.0)
        mark_b = _brightness(rng, n, 1.0, spread=0.25) * np.where(cls_all == 1, 120.0, 60.0)
        labels = np.zeros(shape, np.int32)
        nuclei = np.full(shape, 20.0, np.float32)
        marker = np.full(shape, 25.0, np.float32)
        k = -1
        for k, obj in enumerate(_objects(rng, shape, radii)):
            inside = _ball(obj)
            texture = 1.0 + 0.15 * rng.normal(size=inside.shape).astype(np.float32)
            _paint(labels, nuclei, obj, inside, ids_all[k], nuc_b[k] * texture)
            marker[obj.box][inside] = mark_b[k]
        ids, cls = ids_all[: k + 1], cls_all[: k + 1]
        cam = _Camera(gain=2.0, offset=100.0, read_noise=4.0)
        image = np.stack([_image(rng, nuclei * light, cam), _image(rng, marker * light, cam)])
        images.append(Scene(image, labels, _finish(labels, ids, cls), ("negative", "positive")))
    return SceneSet(
        "marker_uneven", tuple(images), ("negative", "positive"), 100, (0, 1),
        "2D, 2 channels, 2 images: positives have 2x marker under uneven illumination",
    )  # fmt: skip


SCENES: dict[str, Callable[..., SceneSet]] = {
    "texture2d": texture2d,
    "texture3d": texture3d,
    "texture3d_aniso": texture3d_aniso,
    "spot_position": spot_position,
    "size_gain": size_gain,
    "shape_elongated": shape_elongated,
    "shape_lobed": shape_lobed,
    "marker_uneven": marker_uneven,
    "rare_class": rare_class,
}

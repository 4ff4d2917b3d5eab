"""Generated scenes: shapes, non-contiguous ids, balanced classes, matched brightness."""

from __future__ import annotations

import time

import numpy as np
import pytest

from svetlana.core.objects.table import compute_objects
from svetlana.core.synthetic.easy import infection_scene, sphere_scene, texture_scene


@pytest.mark.parametrize(
    ("make", "channels", "nd"),
    [(texture_scene, 1, 2), (infection_scene, 2, 2), (sphere_scene, 1, 3)],
)
def test_scene_sanity(make, channels, nd):
    start = time.perf_counter()
    scene = make()
    assert time.perf_counter() - start < 3.0  # < 1 s normally; slack for a busy CI machine
    assert scene.image.dtype == np.uint16
    assert scene.image.shape == (channels, *scene.labels.shape)
    assert scene.labels.ndim == nd
    ids = np.unique(scene.labels)[1:]
    assert set(ids.tolist()) == set(scene.classes)
    assert ids.max() > len(ids)  # ids are not 1..N
    counts = np.bincount(list(scene.classes.values()), minlength=len(scene.class_names))
    assert len(counts) == 2 and counts.min() >= 0.4 * counts.sum()
    # Same mean brightness of the objects in both classes (channel 0): texture is the difference.
    table = compute_objects(scene.labels, scene.image)
    cls = np.array([scene.classes[int(i)] for i in table.ids])
    means = [table.mean_intensity[cls == k, 0].mean() for k in (0, 1)]
    assert abs(means[0] - means[1]) < 0.1 * max(means)


def test_seed_reproducible():
    a, b = texture_scene(seed=3), texture_scene(seed=3)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.classes == b.classes
    assert not np.array_equal(a.labels, texture_scene(seed=4).labels)


def test_infection_spots_inside_only_for_infected():
    scene = infection_scene(n_objects=60, seed=1)
    table = compute_objects(scene.labels, scene.image)
    cls = np.array([scene.classes[int(i)] for i in table.ids])
    spots = table.mean_intensity[:, 1]
    assert spots[cls == 1].min() > np.median(spots[cls == 0])
    # Uninfected nuclei still have bright spots nearby (decoys), just outside.
    background = np.percentile(scene.image[1], 50)
    assert scene.image[1][scene.labels == 0].max() > background + 500

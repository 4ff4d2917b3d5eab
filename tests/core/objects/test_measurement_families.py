"""Measurements beyond shape, intensity and texture: object context and stains; the same values
whether a few objects or all are measured (training vs predicting)."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.objects.families import family_of
from svetlana.core.objects.measurements import column_names, measure_objects


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _cluster_and_loner():
    """Objects 1-5 packed in a cluster (top left), object 6 alone (bottom right)."""
    labels = np.zeros((200, 200), np.int32)
    for k, (y, x) in enumerate([(20, 20), (20, 34), (34, 20), (34, 34), (27, 48)], start=1):
        labels[_disk(labels.shape, (y, x), 5)] = k
    labels[_disk(labels.shape, (170, 170), 5)] = 6
    image = np.where(labels > 0, 200.0, 10.0).astype(np.float32)[np.newaxis]
    return image, labels


def test_context_counts_neighbours_and_distances_in_object_diameters():
    image, labels = _cluster_and_loner()
    m = measure_objects(image, labels)
    count = m.column("context_count_r2")
    nn1 = m.column("context_nn1")
    # 14 px between centres of the cluster, discs of diameter ~11: ~1.3 diameters.
    assert nn1[0] == pytest.approx(14 / np.sqrt(81 * 4 / np.pi), rel=0.05)
    assert count[0] >= 2 and count[5] == 0
    assert nn1[5] > 10 * nn1[0]


def test_measuring_some_objects_gives_their_values_of_measuring_all():
    # Training measures only the labelled objects, predicting measures all: the new families
    # (context included: it always looks at every object of the mask) must agree.
    image, labels = _cluster_and_loner()
    every = measure_objects(image, labels)
    some = measure_objects(image, labels, ids=[2, 6])
    for name in every.names:
        if family_of(name) == "context":
            assert some.column(name) == pytest.approx(every.column(name)[[1, 5]], rel=1e-5), name


def test_rgb_brightfield_is_measured_per_stain_and_other_images_are_not():
    image, labels = _cluster_and_loner()
    rgb = np.stack([np.where(labels > 0, 80, 230)] * 3).astype(np.uint8)
    rgb[2][labels > 0] = 160  # purple-blue nuclei on white: haematoxylin
    m = measure_objects(rgb, labels)
    assert m.names == column_names(2, 3, stains=True)[0]
    assert m.column("hema_mean")[0] > m.column("hema_ring_mean")[0]
    assert not any(
        n.startswith("hema_") for n in measure_objects(rgb.astype(np.uint16), labels).names
    )
    assert not any(n.startswith("hema_") for n in measure_objects(image, labels).names)


def test_a_3d_image_gets_its_context_in_object_diameters():
    labels = np.zeros((20, 40, 40), np.int32)
    zz, yy, xx = np.mgrid[:20, :40, :40]
    labels[(zz - 10) ** 2 + (yy - 12) ** 2 + (xx - 12) ** 2 <= 25] = 1
    labels[(zz - 10) ** 2 + (yy - 28) ** 2 + (xx - 28) ** 2 <= 25] = 2
    m = measure_objects(np.ones((1, 20, 40, 40), np.float32), labels)
    diameter = np.cbrt(6 * (labels == 1).sum() / np.pi)
    assert m.column("context_nn1") == pytest.approx([16 * np.sqrt(2) / diameter] * 2, rel=0.01)
    assert np.isfinite(m.values).all()


def test_a_larger_than_memory_rgb_image_is_measured_per_stain_as_in_memory():
    da = pytest.importorskip("dask.array")
    _, labels = _cluster_and_loner()
    rng = np.random.default_rng(0)
    rgb = rng.integers(60, 230, size=(3, *labels.shape)).astype(np.uint8)
    ref = measure_objects(rgb, labels)
    got = measure_objects(da.from_array(rgb, chunks=(3, 64, 64)), da.from_array(labels, chunks=64))
    assert got.names == ref.names and any(n.startswith("eosin_") for n in got.names)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-4, atol=1e-4)

"""An object's measurements do not depend on which other objects are measured with it: training
measures the labelled objects (and their neighbours), prediction measures every object, and the
forest must see the same numbers for the same object both times."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.objects import measurements as mod
from svetlana.core.objects.measurements import measure_objects


def _crowded(seed: int = 0, shape=(160, 220), n=140):
    """Touching cells (a Voronoi tiling of random seeds, cut by a few background gaps) with
    textured, uneven intensities on two channels: rings that meet other objects everywhere."""
    rng = np.random.default_rng(seed)
    seeds = np.stack([rng.uniform(0, s, n) for s in shape], 1)
    grid = np.indices(shape, dtype=np.float64)
    d = sum((grid[a][..., None] - seeds[:, a]) ** 2 for a in range(len(shape)))
    order = np.argsort(d, axis=-1)
    labels = (order[..., 0] + 1).astype(np.int32)
    # Background between cells whose seeds are about as near (a thin gap), and some holes.
    d0 = np.take_along_axis(d, order[..., :1], -1)[..., 0]
    d1 = np.take_along_axis(d, order[..., 1:2], -1)[..., 0]
    labels[np.sqrt(d1) - np.sqrt(d0) < 1.5] = 0
    labels[rng.random(shape) < 0.03] = 0
    labels[np.isin(labels, rng.choice(np.arange(1, n + 1), n // 10, replace=False))] = 0
    image = rng.gamma(2.0, 10.0, (2, *shape)).astype(np.float32)
    image[0] += 40.0 * np.sin(grid[-1] / 3.0) * (labels % 3 == 0) + 3.0 * labels
    image[1] += np.where(labels > 0, 30.0, 0.0) + 0.2 * grid[-2]
    return image, labels


def _present(labels) -> np.ndarray:
    ids = np.unique(labels)
    return ids[ids != 0]


@pytest.fixture(params=["one thread", "two threads"])
def threads(request, monkeypatch):
    monkeypatch.setattr(mod, "_BAND_PIXELS", 1 << 12)  # many bands: objects cross band borders
    monkeypatch.setenv(mod.THREADS_ENV, "1" if request.param == "one thread" else "2")
    return request.param


def _check_same(sub, every, ids, threads) -> None:
    assert sub.names == every.names
    assert sub.ids.tolist() == ids.tolist()
    ref = every.values[every.rows(ids)]
    if threads == "one thread":  # the same pixels summed in the same order: the same numbers
        bad = [
            n for j, n in enumerate(sub.names) if not np.array_equal(sub.values[:, j], ref[:, j])
        ]
        assert bad == []
    else:  # bands split between two threads differently: sums merged at float rounding
        np.testing.assert_allclose(sub.values, ref, rtol=2e-5, atol=1e-5)


def test_a_random_subset_of_a_crowded_mask_measures_as_with_every_object(threads):
    image, labels = _crowded()
    every = measure_objects(image, labels)
    rng = np.random.default_rng(1)
    for k in (25, 1):  # a training-sized subset, and one object alone (with its neighbours)
        ids = np.sort(rng.choice(_present(labels), k, replace=False))
        _check_same(measure_objects(image, labels, ids=ids), every, ids, threads)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_few_objects_without_their_neighbours_measure_as_with_every_object(seed, threads):
    """Only the base columns (no neighbours' means: nothing else is measured with them), so the
    crop around a lone object is as small as it gets; 2D, and 3D with anisotropic voxels."""
    rng = np.random.default_rng(seed)
    for image, labels, spacing in (
        (*_crowded(seed), None),
        (*_crowded(seed, shape=(16, 48, 56), n=40), (2.0, 1.0, 1.0)),
    ):
        every = measure_objects(image, labels, spacing=spacing)
        base = [n for n in every.names if not n.startswith("nb_")]
        every = measure_objects(image, labels, spacing=spacing, columns=base)
        for k in (1, 2, 5):
            ids = np.sort(rng.choice(_present(labels), k, replace=False))
            sub = measure_objects(image, labels, ids=ids, spacing=spacing, columns=base)
            _check_same(sub, every, ids, threads)


def test_a_subset_of_a_larger_than_memory_image_measures_as_in_memory(threads):
    da = pytest.importorskip("dask.array")
    image, labels = _crowded(seed=2)
    every = measure_objects(image, labels)
    ids = np.sort(np.random.default_rng(3).choice(_present(labels), 20, replace=False))
    sub = measure_objects(
        da.from_array(image, chunks=(1, 64, 64)), da.from_array(labels, chunks=64), ids=ids
    )
    _check_same(sub, every, ids, threads)

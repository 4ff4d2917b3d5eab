"""The neighbours' means: every measurement averaged over an object's nearest objects, the same
whether a few objects (training) or all (predicting) are measured."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.objects.families import family_of
from svetlana.core.objects.measurements import column_names, measure_objects
from svetlana.core.objects.neighbours import K


def _grid(n_side=5, step=20, radius=5):
    """A grid of discs whose brightness grows with their id (id k: 10 * k)."""
    size = n_side * step + step
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    k = 0
    for i in range(n_side):
        for j in range(n_side):
            k += 1
            cy, cx = step + i * step, step + j * step
            labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = k
    image = np.zeros((1, size, size), np.float32)
    image[0] = np.where(labels > 0, 10.0 * labels, 1.0)
    return image, labels


def test_each_column_has_its_neighbours_mean_from_the_nearest_objects():
    image, labels = _grid()
    m = measure_objects(image, labels)
    assert m.names == column_names(2, 1)[0]
    assert all(("nb_" + n) in m.names for n in m.names if not n.startswith("nb_"))
    assert family_of("nb_ch0_mean") == "neighbours"
    mean, nb_mean = m.column("ch0_mean"), m.column("nb_ch0_mean")
    # The centre disc (id 13) of the 5x5 grid: its 8 nearest are the ring of discs around it.
    ring = [7, 8, 9, 12, 14, 17, 18, 19]
    assert nb_mean[12] == pytest.approx(np.mean(mean[np.array(ring) - 1]), rel=1e-4)
    # A corner disc's neighbours are brighter or darker than itself, on average: not its own.
    assert nb_mean[0] > mean[0] and nb_mean[24] < mean[24]


def test_measuring_some_objects_gives_their_neighbour_means_of_measuring_all():
    image, labels = _grid()
    every = measure_objects(image, labels)
    some = measure_objects(image, labels, ids=[1, 13, 25])
    assert some.names == every.names
    for name in ("nb_ch0_mean", "nb_area", "nb_ch0_median", "nb_context_nn1"):
        assert some.column(name) == pytest.approx(every.column(name)[[0, 12, 24]], rel=1e-4), name


def test_a_lone_object_is_its_own_neighbourhood():
    image, labels = _grid(n_side=1)
    m = measure_objects(image, labels)
    assert len(m) == 1
    assert m.column("nb_ch0_mean") == pytest.approx(m.column("ch0_mean"))
    assert np.isfinite(m.values).all()


def test_fewer_objects_than_neighbours_averages_all_the_others():
    image, labels = _grid(n_side=2)  # 4 objects < K
    assert K > 3
    m = measure_objects(image, labels)
    mean = m.column("ch0_mean")
    assert m.column("nb_ch0_mean")[0] == pytest.approx(mean[1:].mean(), rel=1e-4)


def test_a_larger_than_memory_image_gets_the_neighbour_means_of_in_memory():
    da = pytest.importorskip("dask.array")
    image, labels = _grid()
    ref = measure_objects(image, labels, ids=[2, 13])
    got = measure_objects(
        da.from_array(image, chunks=(1, 40, 40)), da.from_array(labels, chunks=40), ids=[2, 13]
    )
    assert got.names == ref.names
    np.testing.assert_allclose(
        got.column("nb_ch0_mean"), ref.column("nb_ch0_mean"), rtol=1e-4, atol=1e-4
    )


def test_the_object_tables_centroids_give_the_values_of_the_mask_pass(monkeypatch):
    """Prediction passes the object table's centroids (no second pass over the mask for them):
    the same neighbours, the same values, with a physical spacing too."""
    import svetlana.core.objects.neighbours as nbmod
    from svetlana.core.objects.table import compute_objects

    image, labels = _grid()
    table = compute_objects(labels)
    real = nbmod._centroids
    calls = []

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(nbmod, "_centroids", counted)
    for spacing in (None, (0.7, 1.3)):
        ref = measure_objects(image, labels, spacing=spacing)
        assert calls == [1]
        got = measure_objects(
            image, labels, spacing=spacing, mask_ids=table.ids, mask_centroids=table.centroid
        )
        assert calls == [1]  # the mask was not read again for the centroids
        calls.clear()
        assert got.names == ref.names
        np.testing.assert_array_equal(got.values, ref.values)

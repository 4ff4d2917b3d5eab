"""The live preview of a big image measures the objects in view, the labelled ones and a fixed
sample, on crops around them: never the whole slide, and each object once."""

from __future__ import annotations

import numpy as np
import pytest

import svetlana.core.usecases.live_preview as lp
from svetlana.core.objects.measurements import measure_objects
from svetlana.core.objects.table import compute_objects


@pytest.fixture(scope="module")
def slide():
    """A 1,600 x 1,600 image with 6,400 small objects on a grid (20 px apart)."""
    rng = np.random.default_rng(0)
    labels = np.zeros((1600, 1600), np.int32)
    k = 0
    for y in range(6, 1600, 20):
        for x in range(6, 1600, 20):
            k += 1
            r = int(rng.integers(3, 7))
            labels[y : y + r, x : x + r] = k
    image = (rng.normal(100, 10, labels.shape) + 80 * (labels % 3 == 0)).astype(np.float32)
    return image[np.newaxis], labels, compute_objects(labels)


def test_a_refit_measures_only_the_view_the_labels_and_the_sample(slide, monkeypatch):
    image, labels, table = slide
    calls = []
    real = lp.measure_objects
    monkeypatch.setattr(lp, "measure_objects", lambda img, lab, **k: calls.append((k["ids"], lab.shape)) or real(img, lab, **k))  # fmt: skip
    region = ((100.0, 300.0), (200.0, 400.0))
    far = table.ids[[-1, -50]]  # labelled objects far from the view
    store = lp.PreviewStore()
    m, sample = lp.preview_measurements(image, labels, table, region, far, store, seed=3)
    view = lp.in_view(table, region)
    expected = np.unique(np.concatenate([view, far, sample]))
    measured = np.unique(np.concatenate([ids for ids, _ in calls]))
    assert np.array_equal(measured, expected) and np.array_equal(m.ids, expected)
    assert 0 < len(view) < 200 and len(expected) < len(table.ids) / 4
    pixels = sum(int(np.prod(shape)) for _, shape in calls)
    assert pixels < labels.size / 4  # crops around the objects, not the slide
    # The same view again measures nothing; a pan measures only the objects it brings in.
    calls.clear()
    lp.preview_measurements(image, labels, table, region, far, store, seed=3)
    assert calls == []
    moved = ((100.0, 300.0), (300.0, 500.0))
    lp.preview_measurements(image, labels, table, moved, far, store, seed=3)
    new = np.concatenate([ids for ids, _ in calls])
    assert set(new.tolist()) == set(lp.in_view(table, moved).tolist()) - set(expected.tolist())


def test_a_crop_gives_the_objects_their_whole_image_shape_and_intensity(slide):
    image, labels, table = slide
    store = lp.PreviewStore()
    region = ((400.0, 520.0), (400.0, 520.0))
    m, _ = lp.preview_measurements(image, labels, table, region, np.zeros(0), store, seed=1)
    full = measure_objects(image, labels, ids=m.ids)
    for name in ("area", "perimeter", "ch0_mean", "ch0_max", "ch0_ring_mean"):
        np.testing.assert_allclose(m.column(name), full.column(name), rtol=1e-5)


def test_small_images_are_measured_whole_and_a_huge_view_is_capped(slide):
    _, _, table = slide
    assert not lp.bounded(lp.FULL_MAX_OBJECTS) and lp.bounded(lp.FULL_MAX_OBJECTS + 1)
    everything = ((0.0, 1600.0), (0.0, 1600.0))
    assert len(lp.in_view(table, everything, limit=500)) == 500

"""Which object comes next."""

import numpy as np

from svetlana.core.objects.sampling import next_unlabelled, random_order, uncertain_order


def test_random_order_is_a_stable_permutation_per_project_and_image():
    ids = np.array([5, 9, 2, 100, 7, 3, 11, 40])
    a = random_order(42, "img", ids)
    assert sorted(a.tolist()) == sorted(ids.tolist())
    assert np.array_equal(a, random_order(42, "img", ids[::-1]))
    assert not np.array_equal(a, random_order(43, "img", ids)) or not np.array_equal(
        a, random_order(42, "other", ids)
    )


def test_random_order_is_not_spatial_order():
    ids = np.arange(1, 201)
    order = random_order(0, "img", ids)
    # the first 50 shown are spread over the whole id (= raster) range, not the top of the image
    assert order[:50].max() > 150 and order[:50].min() < 50


def test_uncertain_first_and_skipping_labelled():
    ids = np.array([1, 2, 3, 4])
    order = uncertain_order(ids, np.array([0.1, 0.9, 0.5, 0.9]))
    assert order.tolist() == [2, 4, 3, 1]
    assert next_unlabelled(order, {2, 4}) == 2
    assert next_unlabelled(order, {2, 4}, start=3, step=-1) == 3
    assert next_unlabelled(order, {1, 2, 3, 4}) is None

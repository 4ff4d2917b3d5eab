"""Per-image reference statistics (core/objects/image_stats.py): a constant column is only
shifted, a damaged column (NaN, infinities) gives the same statistics whether they are taken
from the measurements as measured (training) or from the forest's input (prediction), and an
image's identity follows its content, not its name."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.ml.forest import _as_matrix
from svetlana.core.objects import image_stats
from svetlana.core.objects.table import compute_objects
from tests.conftest import blobs


def test_a_constant_column_is_shifted_not_divided_by_zero():
    x = np.column_stack([np.full(9, 4.0), np.arange(9.0)])
    centre, spread = image_stats.reference_stats(x)
    np.testing.assert_array_equal(centre, [4.0, 4.0])
    np.testing.assert_array_equal(spread, [1.0, 4.0])
    scaled = image_stats.scale(x, centre, spread)
    assert np.isfinite(scaled).all() and np.all(scaled[:, 0] == 0)


def test_nan_and_infinite_values_give_the_statistics_the_forest_input_gives():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    x[:, 1] = np.nan  # a column never measured
    x[:15, 2] = np.inf  # a ratio over a zero
    x[15:20, 2] = -np.inf
    as_measured = image_stats.reference_stats(x)
    as_read = image_stats.reference_stats(_as_matrix(x, 3))
    for a, b in zip(as_measured, as_read, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert as_measured[0][1] == 0 and as_measured[1][1] == 1


def test_an_image_without_objects_has_no_statistics_but_a_clear_error():
    with pytest.raises(ValueError, match="at least one"):
        image_stats.reference_stats(np.zeros((0, 3)))


def test_image_identity_follows_the_pixels_and_the_mask():
    image, labels = blobs(n=10, seed=1)
    image = image[None]  # channel first
    same = image_stats.image_identity(compute_objects(labels, image))
    assert same == image_stats.image_identity(compute_objects(labels.copy(), image.copy()))
    brighter = image_stats.image_identity(compute_objects(labels, image * 1.5))
    other_mask = image_stats.image_identity(
        compute_objects(np.where(labels == labels.max(), 0, labels), image)
    )
    assert len({same, brighter, other_mask}) == 3

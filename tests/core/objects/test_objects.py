"""Object table: agrees with scikit-image regionprops, handles sparse ids and looks up rows."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from svetlana.core.errors import InputError
from svetlana.core.objects.table import compute_objects


def _labels_2d() -> np.ndarray:
    lab = np.zeros((40, 50), np.int32)
    lab[2:10, 3:12] = 40
    lab[15:30, 20:24] = 7
    lab[31:40, 40:50] = 1000  # touches the border
    lab[5, 30] = 3  # single pixel
    lab[20:25, 30:35] = 12
    lab[22, 36:40] = 12  # non-convex, disconnected part of the same object
    return lab


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int64])
def test_matches_regionprops_2d(dtype):
    lab = _labels_2d().astype(dtype)
    rng = np.random.default_rng(0)
    image = rng.random((2, *lab.shape))
    table = compute_objects(lab, image)
    props = regionprops(lab.astype(np.int64))
    assert len(table) == len(props) == 5
    assert table.ndim == 2
    np.testing.assert_array_equal(table.ids, [p.label for p in props])
    assert table.ids.dtype == np.int64
    np.testing.assert_array_equal(table.bbox, [p.bbox for p in props])
    np.testing.assert_allclose(table.centroid, [p.centroid for p in props])
    np.testing.assert_array_equal(table.area, [p.area for p in props])
    for c in range(2):
        expected = [image[c][lab == p.label].mean() for p in props]
        np.testing.assert_allclose(table.mean_intensity[:, c], expected)


def test_matches_regionprops_3d():
    lab = np.zeros((8, 20, 20), np.int32)
    lab[1:4, 2:9, 3:7] = 5
    lab[4:8, 10:20, 10:15] = 2
    table = compute_objects(lab)
    props = regionprops(lab)
    np.testing.assert_array_equal(table.bbox, [p.bbox for p in props])
    np.testing.assert_allclose(table.centroid, [p.centroid for p in props])
    assert table.mean_intensity.shape == (2, 0)


def test_huge_sparse_ids():
    lab = np.zeros((10, 10), np.int64)
    lab[1:3, 1:3] = 2**40
    lab[5:8, 5:7] = 3
    table = compute_objects(lab)
    np.testing.assert_array_equal(table.ids, [3, 2**40])
    np.testing.assert_array_equal(table.area, [6, 4])
    np.testing.assert_array_equal(table.bbox[1], [1, 1, 3, 3])


def test_rows_and_contains():
    table = compute_objects(_labels_2d())
    np.testing.assert_array_equal(table.rows([1000, 3, 40]), [4, 0, 3])
    np.testing.assert_array_equal(table.contains([3, 4, 1000]), [True, False, True])
    with pytest.raises(InputError, match="unknown object id"):
        table.rows([3, 4, 99])


def test_empty_and_bad_inputs():
    table = compute_objects(np.zeros((5, 5), np.int32))
    assert len(table) == 0
    assert not table.contains([1]).any()
    with pytest.raises(InputError):
        compute_objects(np.zeros((5, 5), np.float32))
    with pytest.raises(InputError, match="does not match"):
        compute_objects(np.zeros((5, 5), np.int32), np.zeros((1, 5, 6)))

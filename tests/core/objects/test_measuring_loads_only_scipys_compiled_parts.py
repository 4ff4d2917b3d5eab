"""The measurements use scipy's compiled Gaussian correlation and k-d tree without importing
scipy.ndimage and scipy.spatial (whose imports cost a quarter of a whole prediction): the same
values, and a later import of the packages still works."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from svetlana.core.objects.measure_texture import gaussian_filter


@pytest.mark.parametrize(
    "shape,sigma",
    [((64, 80), 1.0), ((63, 81), [2.0, 0.5]), ((9, 30, 31), [0.0, 1.5, 1.5]), ((40, 50), 0.0)],
)
def test_the_gaussian_gives_scipys_values_bit_for_bit(shape, sigma):
    from scipy import ndimage

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 100).astype(np.float32)
    for truncate in (3.0, 4.0):
        ours = gaussian_filter(x, sigma, truncate)
        theirs = ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=truncate)
        assert ours.dtype == theirs.dtype
        assert np.array_equal(ours, theirs)


def test_measuring_a_2d_image_imports_neither_scipy_ndimage_nor_scipy_spatial():
    code = (
        "import sys, numpy as np\n"
        "from svetlana.core.objects.measurements import measure_objects\n"
        "labels = np.zeros((64, 64), np.int32)\n"
        "for k in range(6): labels[8 * k + 2 : 8 * k + 7, 5 + 9 * k : 12 + 9 * k] = k + 1\n"
        "image = np.random.default_rng(0).random((64, 64)).astype(np.float32)\n"
        "m = measure_objects(image, labels)\n"
        "print('scipy.ndimage' in sys.modules, 'scipy.spatial' in sys.modules)\n"
        "from scipy import ndimage, spatial\n"  # the packages, imported after: the same parts
        "again = measure_objects(image, labels)\n"
        "print(np.array_equal(m.values, again.values), len(m.names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first == "False False"
    assert second.split()[0] == "True" and int(second.split()[1]) > 100


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_per_object_sums_are_bincounts_bit_for_bit(dtype):
    """Groups.sum (scipy's compiled sparse product) gives a bincount's bits: the same additions
    in pixel order, for pixels in runs (raster order), a subset of them, and non-finite ones."""
    from svetlana.core.objects.measure_stats import _CSR_MIN_PIXELS, Groups

    rng = np.random.default_rng(1)
    runs = rng.integers(1, 30, 3000)  # object pixels come in runs along the rows
    rows = np.repeat(rng.integers(0, 700, runs.size), runs)
    assert rows.size > 4 * _CSR_MIN_PIXELS
    grp = Groups.of(rows, 1000)
    w = (rng.standard_normal(rows.size) * 10.0 ** rng.integers(-3, 6, rows.size)).astype(dtype)
    w[[5, 900]] = [np.nan, np.inf]
    for g in (grp, grp.pick(rng.random(rows.size) < 0.3), grp.pick(np.arange(0, rows.size, 4))):
        v = w[: g.idx.size] if g is grp else w[rng.permutation(w.size)[: g.idx.size]]
        ours = g.sum(v)
        theirs = np.bincount(g.idx, v, minlength=g.uniq.size)
        assert np.array_equal(ours.view(np.uint64), theirs.view(np.uint64))

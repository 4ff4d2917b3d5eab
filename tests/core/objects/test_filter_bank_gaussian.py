"""The filter bank's Gaussian is scipy.ndimage's, value for value, without importing scipy.ndimage
(whose import costs a tenth of a whole prediction)."""

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


def test_measuring_a_2d_image_does_not_import_scipy_ndimage():
    code = (
        "import sys, numpy as np\n"
        "from svetlana.core.objects.measurements import measure_objects\n"
        "labels = np.zeros((64, 64), np.int32); labels[10:20, 10:25] = 1; labels[30:50, 5:9] = 2\n"
        "image = np.random.default_rng(0).random((64, 64)).astype(np.float32)\n"
        "measure_objects(image, labels)\n"
        "print('scipy.ndimage' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]

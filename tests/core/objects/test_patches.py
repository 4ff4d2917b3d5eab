"""Patches: content, object channel, border padding, 3D anisotropy, patch size, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.objects.patches import (
    Normalisation,
    PatchSource,
    apply_normalisation,
    auto_patch_size,
    extract_patches,
    fit_normalisation,
    object_patch,
    patch_shape,
)
from svetlana.core.objects.table import compute_objects


def _scene():
    lab = np.zeros((60, 60), np.int32)
    lab[20:30, 20:30] = 5  # centre object
    lab[20:30, 30:34] = 8  # touching neighbour
    lab[0:4, 0:4] = 11  # corner object
    image = np.arange(2 * 60 * 60, dtype=np.float32).reshape(2, 60, 60)
    return image, lab, compute_objects(lab)


def test_object_channel_marks_only_this_object():
    image, lab, table = _scene()
    patches = extract_patches(image, lab, table, [5, 8], 16)
    assert patches.shape == (2, 3, 16, 16)
    assert patches.dtype == np.float32
    # Object 5 has centroid (24.5, 24.5) -> rounded to (25, 25); patch covers [17, 33).
    mask5 = patches[0, -1]
    assert set(np.unique(mask5)) == {0.0, 1.0}
    assert mask5.sum() == 100
    np.testing.assert_array_equal(mask5, lab[17:33, 17:33] == 5)
    np.testing.assert_array_equal(patches[0, :2], image[:, 17:33, 17:33])
    # The neighbour (8) is in the patch but not in the object channel.
    assert (lab[17:33, 17:33] == 8).any()
    assert patches[1, -1].sum() == (lab == 8).sum()


def test_border_zero_padding():
    image, lab, table = _scene()
    patch = extract_patches(image + 1, lab, table, [11], 16)[0]
    # Centre (1.5, 1.5) -> (2, 2): the patch starts 6 pixels before the image.
    assert np.all(patch[:, :6, :] == 0)
    assert np.all(patch[:, :, :6] == 0)
    np.testing.assert_array_equal(patch[0, 6:, 6:], image[0, :10, :10] + 1)
    assert patch[-1].sum() == 16


def test_patch_source_matches_and_checks_ids():
    image, lab, table = _scene()
    ids = [11, 5, 8]
    source = PatchSource(image, lab, table, ids, 16)
    assert len(source) == 3
    assert source.shape == (3, 16, 16)
    full = extract_patches(image, lab, table, ids, 16)
    np.testing.assert_array_equal(source[1:3], full[1:3])
    np.testing.assert_array_equal(source[0], full[:1])
    with pytest.raises(InputError, match="unknown object id"):
        PatchSource(image, lab, table, [5, 6], 16)


def test_3d_anisotropic_patches():
    lab = np.zeros((10, 40, 40), np.int32)
    lab[4:6, 15:25, 15:25] = 3
    image = np.ones((1, 10, 40, 40), np.float32)
    table = compute_objects(lab)
    assert patch_shape(32, 3, spacing=(2.0, 0.5, 0.5)) == (8, 32, 32)
    assert patch_shape(32, 3, spacing=(10.0, 0.1, 0.1)) == (4, 32, 32)
    assert patch_shape(32, 3) == (32, 32, 32)
    assert patch_shape(32, 2) == (32, 32)
    patches = extract_patches(image, lab, table, [3], 16, spacing=(4.0, 1.0, 1.0))
    assert patches.shape == (1, 2, 4, 16, 16)
    assert patches[0, -1].sum() == 200


def test_auto_patch_size_ignores_one_outlier():
    lab = np.zeros((600, 600), np.int32)
    for k in range(50):
        y, x = divmod(k, 10)
        lab[10 + 40 * y : 30 + 40 * y, 10 + 40 * x : 30 + 40 * x] = k + 1  # 20 x 20 objects
    typical = auto_patch_size(compute_objects(lab))
    assert typical == 30
    lab[300:590, 10:590] = 999  # one huge merged blob
    assert auto_patch_size(compute_objects(lab)) == typical
    tiny = np.zeros((20, 20), np.int32)
    tiny[5, 5] = 1
    assert auto_patch_size(compute_objects(tiny)) == 16
    assert auto_patch_size(compute_objects(np.ones((500, 500), np.int32))) == 128


def test_normalisation_roundtrip_and_constant_channel():
    rng = np.random.default_rng(0)
    image = np.stack([rng.normal(1000, 100, (64, 64)), np.full((64, 64), 7.0)]).astype(np.uint16)
    norm = fit_normalisation(image)
    assert Normalisation.from_dict(norm.to_dict()) == norm
    out = apply_normalisation(image, norm)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert 0.4 < np.median(out[0]) < 0.6
    assert np.all(out[1] == 0)
    assert out.min() >= -1 and out.max() <= 5
    with pytest.raises(InputError, match="channel"):
        apply_normalisation(image[:1], norm)


@pytest.mark.parametrize("obj", [5, 8, 11])
def test_one_objects_patch_from_a_crop_equals_the_whole_image_patch(obj):
    """The gallery and the Explain view cut one patch from a crop: the values must be those
    training and prediction see (border objects included)."""
    image, lab, table = _scene()
    whole = extract_patches(image, lab, table, [obj], 16)[0]
    np.testing.assert_array_equal(object_patch(image, lab, table, obj, 16), whole)

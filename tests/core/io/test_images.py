"""Reading images and masks: formats, axes, spacing, Cellpose files, safety and bad inputs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from svetlana.core.errors import InputError, UnsafeFileError
from svetlana.core.io.folders import find_pairs
from svetlana.core.io.images import estimate_bytes, read_image, read_mask, read_pair

DATA = Path(__file__).resolve().parents[2] / "data" / "stardist"


def _mask(shape=(20, 30)) -> np.ndarray:
    m = np.zeros(shape, np.uint16)
    m[..., 2:6, 3:9] = 4
    m[..., 10:15, 12:20] = 9
    return m


# ---------------------------------------------------------------- images


def test_tif_2d_grey(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.arange(600, dtype=np.uint16).reshape(20, 30))
    img = read_image(tmp_path / "a.tif")
    assert img.data.shape == (1, 20, 30)
    assert img.data.dtype == np.uint16
    assert img.axes == "YX"
    assert img.spacing is None


def test_tif_3d_matches_mask(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (5, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", data)
    img = read_image(tmp_path / "a.tif", mask_shape=(5, 20, 30))
    assert img.data.shape == (1, 5, 20, 30)
    assert img.axes == "ZYX"
    np.testing.assert_array_equal(img.data[0], data)


@pytest.mark.parametrize(
    ("shape", "axes", "channel_axis"),
    [
        ((20, 30, 3), "YXC", 2),
        ((2, 20, 30), "CYX", 0),
        ((5, 2, 20, 30), "ZCYX", 1),
        ((2, 5, 20, 30), "CZYX", 0),
    ],
)
def test_channel_axis_found_from_mask_shape(tmp_path, shape, axes, channel_axis):
    data = np.random.default_rng(1).random(shape).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    mask_shape = tuple(n for i, n in enumerate(shape) if i != channel_axis)
    img = read_image(tmp_path / "a.npy", mask_shape=mask_shape)
    assert img.axes == axes
    assert img.data.dtype == np.float32
    np.testing.assert_array_equal(img.data, np.moveaxis(data, channel_axis, 0))


def test_rgb_tif_and_png(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb")
    Image.fromarray(rgb).save(tmp_path / "b.png")
    for name in ("a.tif", "b.png"):
        img = read_image(tmp_path / name, mask_shape=(20, 30))
        assert img.axes == "YXC"
        assert img.data.shape == (3, 20, 30)
        np.testing.assert_array_equal(img.data, np.moveaxis(rgb, -1, 0))
    # Without a mask the colour axis is still recognised.
    assert read_image(tmp_path / "b.png").data.shape == (3, 20, 30)


def test_imagej_hyperstack_axes_and_spacing(tmp_path):
    data = np.zeros((6, 2, 20, 30), np.uint16)  # ZCYX
    data[:, 1] = 7
    tifffile.imwrite(
        tmp_path / "a.tif",
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "um"},
    )
    img = read_image(tmp_path / "a.tif")
    assert img.axes == "ZCYX"
    assert img.data.shape == (2, 6, 20, 30)
    assert np.all(img.data[1] == 7)
    assert img.spacing == pytest.approx((1.5, 0.25, 0.25))


def test_ome_tiff_spacing(tmp_path):
    data = np.zeros((4, 20, 30), np.uint16)
    tifffile.imwrite(
        tmp_path / "a.ome.tif",
        data,
        metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5},
    )
    img = read_image(tmp_path / "a.ome.tif", mask_shape=(4, 20, 30))
    assert img.data.shape == (1, 4, 20, 30)
    assert img.spacing == pytest.approx((2.0, 0.5, 0.5))


def test_axes_override_and_singleton_time(tmp_path):
    data = np.random.default_rng(3).random((1, 3, 4, 20, 30)).astype(np.float32)  # TZCYX, T=1
    np.save(tmp_path / "a.npy", data)
    img = read_image(tmp_path / "a.npy", axes="TZCYX")
    assert img.data.shape == (4, 3, 20, 30)
    np.testing.assert_array_equal(img.data, np.moveaxis(data[0], 1, 0))
    # The returned axes string can be passed back in and gives the same data.
    auto = read_image(tmp_path / "a.npy", mask_shape=(3, 20, 30))
    again = read_image(tmp_path / "a.npy", axes=auto.axes)
    np.testing.assert_array_equal(auto.data, again.data)


def test_axes_override_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 20, 30), np.uint8))
    with pytest.raises(InputError, match="has 4 letters but the image has 3"):
        read_image(tmp_path / "a.npy", axes="ZCYX")
    with pytest.raises(InputError, match="only use the letters"):
        read_image(tmp_path / "a.npy", axes="QYX")
    with pytest.raises(InputError, match="time points"):
        read_image(tmp_path / "a.npy", axes="TYX")
    with pytest.raises(InputError, match="does not match mask shape"):
        read_image(tmp_path / "a.npy", mask_shape=(20, 30), axes="YXC")


def test_unsupported_dimensionality(tmp_path):
    np.save(tmp_path / "img5d.npy", np.zeros((2, 3, 4, 20, 30), np.uint8))
    with pytest.raises(InputError, match="unsupported image dimensionality"):
        read_image(tmp_path / "img5d.npy")
    np.save(tmp_path / "img1d.npy", np.zeros(30, np.uint8))
    with pytest.raises(InputError, match="unsupported image dimensionality"):
        read_image(tmp_path / "img1d.npy")
    np.save(tmp_path / "mask1d.npy", np.arange(30, dtype=np.int32))
    with pytest.raises(InputError, match="mask must be 2D"):
        read_mask(tmp_path / "mask1d.npy")
    np.save(tmp_path / "mask4d.npy", np.ones((2, 3, 4, 5), np.int32))
    with pytest.raises(InputError, match="mask must be 2D"):
        read_mask(tmp_path / "mask4d.npy")


# ---------------------------------------------------------------- masks


def test_mask_ids_kept_non_contiguous(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", _mask())
    mask = read_mask(tmp_path / "m.tif")
    assert mask.labels.dtype == np.int32
    assert not mask.was_binary
    assert set(np.unique(mask.labels)) == {0, 4, 9}


def test_binary_mask_split_into_components(tmp_path):
    m = (_mask() > 0).astype(np.uint8) * 255
    Image.fromarray(m).save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.was_binary
    assert set(np.unique(mask.labels)) == {0, 1, 2}
    np.save(tmp_path / "b.npy", _mask() > 0)
    assert read_mask(tmp_path / "b.npy").was_binary


def test_cp_masks_png_16bit(tmp_path):
    m = _mask().astype(np.uint16) * 300  # ids above 255 need 16-bit PNG
    Image.fromarray(m).save(tmp_path / "x_cp_masks.png")
    mask = read_mask(tmp_path / "x_cp_masks.png")
    assert set(np.unique(mask.labels)) == {0, 1200, 2700}


def test_cellpose_seg_npy(tmp_path):
    masks = _mask()
    seg = {
        "masks": masks,
        "outlines": np.zeros_like(masks),
        "chan_choose": [0, 0],
        "ismanual": np.zeros(2, bool),
        "filename": "x.tif",
        "flows": [np.zeros((2, 20, 30), np.float32), np.zeros((20, 30), np.float32)],
        "est_diam": np.float64(12.5),
        "diameter": 30.0,
    }
    np.save(tmp_path / "x_seg.npy", seg, allow_pickle=True)
    mask = read_mask(tmp_path / "x_seg.npy")
    np.testing.assert_array_equal(mask.labels, masks)
    # numpy 1.x wrote pickle protocol 3 naming numpy.core instead of numpy._core.
    holder = np.empty((), dtype=object)
    holder[()] = seg
    payload = pickle.dumps(holder, protocol=3).replace(b"numpy._core.", b"numpy.core.")
    with open(tmp_path / "old_seg.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        f.write(payload)
    np.testing.assert_array_equal(read_mask(tmp_path / "old_seg.npy").labels, masks)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "x_seg.npy", {"masks": _mask(), "x": _Evil(marker)}, allow_pickle=True)
    with pytest.raises(UnsafeFileError, match="refused"):
        read_mask(tmp_path / "x_seg.npy")
    assert not marker.exists()
    # A pickle that is not even a dict of arrays is refused as well.
    with open(tmp_path / "y_seg.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        pickle.dump(_Evil(marker), f)
    with pytest.raises(UnsafeFileError):
        read_mask(tmp_path / "y_seg.npy")
    assert not marker.exists()


def test_object_npy_refused(tmp_path):
    np.save(tmp_path / "m.npy", np.array([_mask(), None], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError):
        read_mask(tmp_path / "m.npy")
    with pytest.raises(UnsafeFileError):
        read_image(tmp_path / "m.npy")


def test_float_masks(tmp_path):
    np.save(tmp_path / "whole.npy", _mask().astype(np.float32))
    assert set(np.unique(read_mask(tmp_path / "whole.npy").labels)) == {0, 4, 9}
    np.save(tmp_path / "frac.npy", _mask().astype(np.float32) * 0.3)
    with pytest.raises(InputError, match="mask must contain integer labels, found float values"):
        read_mask(tmp_path / "frac.npy")


def test_negative_and_empty_masks(tmp_path):
    neg = _mask().astype(np.int16)
    neg[0, 0] = -1
    np.save(tmp_path / "neg.npy", neg)
    with pytest.raises(InputError, match="negative"):
        read_mask(tmp_path / "neg.npy")
    np.save(tmp_path / "empty.npy", np.zeros((20, 30), np.uint8))
    with pytest.raises(InputError, match="the mask contains no objects"):
        read_mask(tmp_path / "empty.npy")


def test_shape_mismatch_names_both_files(tmp_path):
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((20, 31), np.uint8))
    tifffile.imwrite(tmp_path / "cells_masks.tif", _mask())
    with pytest.raises(InputError) as info:
        read_pair(tmp_path / "cells.tif", tmp_path / "cells_masks.tif")
    text = str(info.value)
    assert "cells.tif" in text and "cells_masks.tif" in text
    assert "(20, 31)" in text and "(20, 30)" in text


def test_read_pair_spacing_override(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 20, 30), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", _mask((4, 20, 30)), photometric="minisblack")
    image, mask = read_pair(tmp_path / "a.tif", tmp_path / "m.tif", spacing=(3, 1, 1))
    assert image.spacing == (3.0, 1.0, 1.0)
    assert mask.labels.shape == (4, 20, 30)
    with pytest.raises(InputError, match="spacing"):
        read_pair(tmp_path / "a.tif", tmp_path / "m.tif", spacing=(1, 1))


def test_corrupt_and_missing_files(tmp_path):
    data = np.random.default_rng(4).integers(0, 60000, (64, 64), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "full.tif", data)
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "garbage.tif").write_bytes(b"this is not an image at all" * 10)
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "garbage.npy").write_bytes(b"nope")
    (tmp_path / "notes.txt").write_text("hello")
    for name in ("cut.tif", "garbage.tif", "garbage.png", "garbage.npy", "notes.txt"):
        with pytest.raises(InputError, match="cannot read") as info:
            read_image(tmp_path / name)
        assert info.value.path == tmp_path / name
    with pytest.raises(InputError, match="file not found"):
        read_image(tmp_path / "nothing.tif")
    with pytest.raises(InputError, match="file not found"):
        read_mask(tmp_path / "nothing.tif")


def test_files_are_not_modified(tmp_path):
    Image.fromarray((_mask() > 0).astype(np.uint8)).save(tmp_path / "m.png")
    before = (tmp_path / "m.png").read_bytes()
    read_mask(tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes() == before


# ---------------------------------------------------------------- folders and sizes


def test_find_pairs(tmp_path):
    for name in ("a.tif", "b.tif", "c.png", "d.tif", "e.tif", "f.ome.tif", "lonely.tif"):
        (tmp_path / name).write_bytes(b"")
    for name in ("a_cp_masks.png", "b_masks.tif", "c_mask.png", "d_seg.npy", "f_masks.tif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "e.tif").write_bytes(b"")
    pairs = find_pairs(tmp_path)
    assert [(i.name, m.name) for i, m in pairs] == [
        ("a.tif", "a_cp_masks.png"),
        ("b.tif", "b_masks.tif"),
        ("c.png", "c_mask.png"),
        ("d.tif", "d_seg.npy"),
        ("e.tif", "e.tif"),
        ("f.ome.tif", "f_masks.tif"),
    ]
    assert pairs[4][1].parent.name == "masks"
    with pytest.raises(InputError, match="folder not found"):
        find_pairs(tmp_path / "missing")


def test_estimate_bytes(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 20, 30), np.uint16), photometric="minisblack")
    np.save(tmp_path / "a.npy", np.zeros((20, 30), np.float32))
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    assert estimate_bytes(tmp_path / "a.tif") == 3 * 20 * 30 * 2
    assert estimate_bytes(tmp_path / "a.npy") == 20 * 30 * 4
    assert estimate_bytes(tmp_path / "a.png") == 20 * 30 * 3
    (tmp_path / "bad.tif").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read"):
        estimate_bytes(tmp_path / "bad.tif")


# ---------------------------------------------------------------- real data


@pytest.mark.parametrize("dim", ["2d", "3d"])
def test_real_stardist_files(dim):
    image, mask = read_pair(DATA / f"img{dim}.tif", DATA / f"mask{dim}.tif")
    nd = 2 if dim == "2d" else 3
    assert image.data.ndim == nd + 1 and image.data.shape[0] == 1
    assert image.data.shape[1:] == mask.labels.shape
    assert not mask.was_binary
    assert len(np.unique(mask.labels)) > 50


def test_find_pairs_accepts_cellpose_tif_masks(tmp_path):
    """Cellpose's --save_tif writes x_cp_masks.tif (not only .png)."""
    labels = np.zeros((8, 8), np.uint16)
    labels[2:5, 2:5] = 1
    tifffile.imwrite(tmp_path / "b.tif", labels)
    tifffile.imwrite(tmp_path / "b_cp_masks.tif", labels)
    assert [(i.name, m.name) for i, m in find_pairs(tmp_path)] == [("b.tif", "b_cp_masks.tif")]

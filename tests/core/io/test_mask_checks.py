"""Masks that are not label masks are refused before anything is written: swapped arguments, JPEG."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from svetlana.core.io.mask_checks import mask_stats
from svetlana.core.synthetic.easy import infection_scene, sphere_scene, texture_scene
from tests.conftest import ok, run_cli, snapshot


@pytest.fixture
def bundle(tmp_path):
    b = tmp_path / "p.svetlana"
    ok("init", b)
    return b


def _scene_files(tmp_path, scene, name):
    ip, mp = tmp_path / f"{name}.tif", tmp_path / f"{name}_masks.tif"
    tifffile.imwrite(ip, scene.image if scene.image.shape[0] > 1 else scene.image[0])
    tifffile.imwrite(mp, scene.labels)
    return ip, mp


def _refused_as_swapped(bundle, image, mask):
    before = snapshot(bundle)
    code, _, err = run_cli("add", bundle, image, mask)
    assert code == 1, err
    assert "does not look like a label mask" in err and "swapped" in err, err
    assert str(mask) in err and "--force-mask" in err
    assert snapshot(bundle) == before


SCENES = {
    "texture": lambda: texture_scene(seed=3),
    "infection (2 channels)": lambda: infection_scene(seed=3),
    "spheres 3D": lambda: sphere_scene(n_objects=20, shape=(32, 96, 96), seed=3),
}


@pytest.mark.parametrize("which", list(SCENES))
def test_generated_scenes_swapped_are_refused_and_right_way_round_accepted(tmp_path, bundle, which):
    scene = SCENES[which]()
    ip, mp = _scene_files(tmp_path, scene, "cells")
    if scene.image.shape[0] > 1:  # give one channel as the "mask"
        tifffile.imwrite(tmp_path / "c1.tif", scene.image[1])
        _refused_as_swapped(bundle, mp, tmp_path / "c1.tif")
    else:
        _refused_as_swapped(bundle, mp, ip)
    out = ok("add", bundle, ip, mp)
    assert f"{len(scene.classes)} objects" in out


def test_real_stardist_masks_pass_and_swapped_ones_are_refused(stardist_dir, bundle, tmp_path):
    for dim in ("2d", "3d"):
        image, mask = stardist_dir / f"img{dim}.tif", stardist_dir / f"mask{dim}.tif"
        _refused_as_swapped(bundle, mask, image)
        # A project holds 2D or 3D images, not both: the 3D pair goes into a project of its own.
        target = bundle if dim == "2d" else tmp_path / "stack.svetlana"
        if dim == "3d":
            ok("init", target)
        ok("add", target, image, mask)
    # The override: the user insists that the file is a mask.
    out = ok("add", bundle, stardist_dir / "mask2d.tif", stardist_dir / "img2d.tif", "--force-mask")
    assert "233 objects" in out


def test_label_masks_that_are_unusual_but_real_pass(tmp_path, bundle):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    seeds = rng.integers(0, 256, (150, 2))
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    confluent = (d.argmin(-1) + 1).astype(np.uint16)  # a tissue: no background at all
    image = rng.normal(100, 10, confluent.shape).astype(np.float32)
    tifffile.imwrite(tmp_path / "t.tif", image)
    tifffile.imwrite(tmp_path / "t_masks.tif", confluent)
    assert "150 objects" in ok("add", bundle, tmp_path / "t.tif", tmp_path / "t_masks.tif")
    # Labels saved as float holding whole numbers (as Fiji does), with sparse large ids.
    scene = texture_scene(seed=4)
    floats = np.where(scene.labels > 0, scene.labels * 1000.0, 0).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", scene.image[0])
    tifffile.imwrite(tmp_path / "f_masks.tif", floats)
    out = ok("add", bundle, tmp_path / "f.tif", tmp_path / "f_masks.tif")
    assert f"{len(scene.classes)} objects" in out
    # Tiny objects (single-pixel spots) are objects, not noise.
    spots = np.zeros((128, 128), np.uint16)
    spots[::8, ::8] = np.arange(1, 257).reshape(16, 16)
    assert not mask_stats(spots).looks_like_intensities


def test_jpeg_masks_are_refused_asking_for_png_or_tiff(tmp_path, bundle):
    scene = texture_scene(seed=5)
    tifffile.imwrite(tmp_path / "c.tif", scene.image[0])
    labels8 = (scene.labels % 255).astype(np.uint8)
    Image.fromarray(labels8).save(tmp_path / "c_masks.jpg", quality=95)
    Image.fromarray(labels8).save(tmp_path / "renamed.png", format="JPEG")  # content decides
    tifffile.imwrite(tmp_path / "c_jpeg.tif", labels8, compression="jpeg")
    before = snapshot(bundle)
    for mask in ("c_masks.jpg", "renamed.png", "c_jpeg.tif"):
        code, _, err = run_cli("add", bundle, tmp_path / "c.tif", tmp_path / mask, "--force-mask")
        assert code == 1 and "JPEG" in err and "PNG or TIFF" in err and mask in err, err
    assert snapshot(bundle) == before
    # A JPEG *image* is fine (only the mask must be exact).
    Image.fromarray((scene.image[0] // 256).astype(np.uint8)).save(tmp_path / "c.jpg")
    tifffile.imwrite(tmp_path / "c_masks.tif", scene.labels)
    ok("add", bundle, tmp_path / "c.jpg", tmp_path / "c_masks.tif")


def test_ome_zarr_pairs_are_checked_too(tmp_path, bundle):
    from svetlana.core.objects.lazy import write_ome_zarr

    scene = texture_scene(seed=6)
    image, labels = scene.image[0], scene.labels.astype(np.uint32)

    def save(path, array):
        whole = tuple(slice(0, s) for s in array.shape)
        write_ome_zarr(
            path, [(whole, array)], shape=array.shape, chunks=(128, 128), dtype=array.dtype,
            axes="YX",
        )  # fmt: skip

    save(tmp_path / "img.ome.zarr", image)
    save(tmp_path / "img_masks.ome.zarr", labels)
    _refused_as_swapped(bundle, tmp_path / "img_masks.ome.zarr", tmp_path / "img.ome.zarr")
    out = ok("add", bundle, tmp_path / "img.ome.zarr", tmp_path / "img_masks.ome.zarr")
    assert f"{len(scene.classes)} objects" in out

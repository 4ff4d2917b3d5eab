"""Masks compressed lossily (JPEG, JPEG 2000, JPEG XL, lossy WebP) are refused as lossy, by their
compression, by `add` and by `predict --folder` alike; a swapped pair too."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.cli.folder_helpers import csv_rows, trained_bundle
from tests.conftest import blobs, run_cli, snapshot, write_pair

LOSSY_ARGS = {"webp": {"lossless": False, "level": 90}}  # imagecodecs' WebP is lossless by default
LOSSY = [("jpeg2000", "JPEG 2000"), ("jpegxl", "JPEG XL"), ("webp", "lossy WebP")]


def _write(path, labels8, compression, **args):
    if compression == "webp":  # WebP holds colour only
        labels8 = np.repeat(labels8[..., None], 3, axis=-1)
    tifffile.imwrite(path, labels8, compression=compression, compressionargs=args)


@pytest.mark.parametrize(("compression", "kind"), LOSSY)
def test_add_refuses_a_lossy_mask_as_lossy_not_as_swapped(tmp_path, compression, kind):
    image, labels = blobs(n=12, seed=2)
    ip, _ = write_pair(tmp_path, "c", image, labels)
    mask = tmp_path / f"c_{compression}.tif"
    _write(mask, labels.astype(np.uint8), compression, **LOSSY_ARGS.get(compression, {}))
    bundle = tmp_path / "p.svetlana"
    assert run_cli("init", bundle)[0] == 0
    before = snapshot(bundle)
    code, _, err = run_cli("add", bundle, ip, mask, "--force-mask")
    assert code == 1 and f"compressed as {kind}" in err and "lossy" in err, err
    assert "swapped" not in err and mask.name in err
    assert snapshot(bundle) == before


def test_webp_is_lossy_unless_its_stream_is_lossless(tmp_path):
    from svetlana.core.io.images import lossy_tiff_compression

    labels8 = blobs(n=12, seed=2)[1].astype(np.uint8)
    found = {}
    for name, args in (("lossy", LOSSY_ARGS["webp"]), ("lossless", {"lossless": True})):
        _write(tmp_path / f"{name}.tif", labels8, "webp", **args)
        with tifffile.TiffFile(tmp_path / f"{name}.tif") as tif:
            found[name] = lossy_tiff_compression(tif)
    assert found == {"lossy": "lossy WebP", "lossless": None}
    assert np.array_equal(tifffile.imread(tmp_path / "lossless.tif")[..., 0], labels8)


def test_predict_folder_refuses_what_add_refuses(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    image, labels = blobs(n=12, seed=5)
    write_pair(folder, "good", image, labels)
    # a swapped pair: the image given as the mask
    tifffile.imwrite(folder / "swapped.tif", labels)
    tifffile.imwrite(folder / "swapped_masks.tif", image)
    tifffile.imwrite(folder / "lossy.tif", image)
    _write(folder / "lossy_masks.tif", labels.astype(np.uint8), "jpegxl")
    code, out, err = run_cli("predict", bundle, "--folder", folder, "--out", tmp_path / "o")
    assert code == 1 and "2 of 3 images failed" in out, out + err
    errors = {r["image"]: r["error"] for r in csv_rows(tmp_path / "o" / "errors.csv")}
    assert set(errors) == {"swapped", "lossy"}
    assert "swapped" in errors["swapped"] and "compressed as JPEG XL" in errors["lossy"]
    assert {r["image"] for r in csv_rows(tmp_path / "o" / "predictions.csv")} == {"good"}

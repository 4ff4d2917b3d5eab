"""OME-Zarr images read lazily: the chunk-wise object table, patches and class mask equal the
in-memory ones, also for objects that cross chunk borders."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.objects.lazy import (
    LazyPatchSource,
    compute_objects_chunked,
    open_ome_zarr,
    open_pair,
    write_class_mask_zarr,
    write_ome_zarr,
)
from svetlana.core.objects.patches import PatchSource, fit_normalisation
from svetlana.core.objects.table import compute_objects
from svetlana.core.project.images import LargeImage
from tests.conftest import blobs


def _save(path, array, axes, chunks, spacing=None):
    return write_ome_zarr(
        path,
        [(tuple(slice(0, s) for s in array.shape), array)],
        shape=array.shape,
        chunks=chunks,
        dtype=array.dtype,
        axes=axes,
        spacing=spacing,
    )


@pytest.fixture
def scene(tmp_path):
    """Two channels, 96x96, 12 discs on a 16-pixel chunk grid: most objects cross borders."""
    image, labels = blobs(n=12, seed=1, radius=7)
    image2 = np.stack([image, (image // 2 + 7).astype(np.uint16)])
    _save(tmp_path / "img.ome.zarr", image2, "CYX", (1, 16, 16), spacing=(0.5, 0.5))
    _save(tmp_path / "img_masks.ome.zarr", labels, "YX", (16, 16))
    return tmp_path, image2, labels


def test_chunked_object_table_equals_the_in_memory_one(scene):
    folder, image, labels = scene
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    assert img.spacing == (0.5, 0.5) and img.axes == "CYX" and mask.shape == labels.shape
    crossing = 0
    ref = compute_objects(labels, image)
    for lo, hi in zip(ref.bbox[:, :2], ref.bbox[:, 2:], strict=True):
        crossing += bool(((lo // 16) != ((hi - 1) // 16)).any())
    assert crossing >= 8  # the test is about objects split between chunks
    got = compute_objects_chunked(mask.data, img.data)
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_array_equal(got.area, ref.area)
    np.testing.assert_array_equal(got.bbox, ref.bbox)
    np.testing.assert_array_equal(got.centroid, ref.centroid)
    np.testing.assert_allclose(got.mean_intensity, ref.mean_intensity, rtol=1e-12)


def test_3d_chunked_table_and_a_label_only_mask(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((10, 40, 40), np.uint32)
    for k in range(1, 15):
        z, y, x = rng.integers(0, 8), rng.integers(0, 34), rng.integers(0, 34)
        labels[z : z + 3, y : y + 7, x : x + 6] = k * 1000  # large sparse ids, overlapping
    _save(tmp_path / "m.zarr", labels, "ZYX", (4, 16, 16))
    lazy = open_ome_zarr(tmp_path / "m.zarr", labels=True)
    got, ref = compute_objects_chunked(lazy.data), compute_objects(labels)
    for field in ("ids", "area", "bbox", "centroid"):
        np.testing.assert_array_equal(getattr(got, field), getattr(ref, field))
    assert got.mean_intensity.shape == (len(ref), 0)


def test_lazy_patches_equal_in_memory_patches(scene):
    folder, image, labels = scene
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    table = compute_objects(labels, image)
    norm = fit_normalisation(image)
    from svetlana.core.objects.patches import apply_normalisation

    ref = PatchSource(apply_normalisation(image, norm), labels, table, table.ids, 24)
    lazy = LazyPatchSource(img.data, mask.data, table, 24, norm)
    assert sorted(lazy.ids) == sorted(table.ids)
    got = lazy[:]
    np.testing.assert_array_equal(got, ref[:][lazy.order])
    # read as inference's batch threads read it: slices of 3 on 4 threads at once, in any order
    from concurrent.futures import ThreadPoolExecutor

    fresh = LazyPatchSource(img.data, mask.data, table, 24, norm)
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda a: fresh[a : a + 3], range(0, len(fresh), 3)))
    np.testing.assert_array_equal(np.concatenate(parts), got)


def test_class_mask_is_written_chunk_by_chunk_as_ome_zarr(scene):
    folder, _, labels = scene
    from svetlana.core.io.masks import class_mask

    mask = open_ome_zarr(folder / "img_masks.ome.zarr", labels=True)
    table = compute_objects(labels)
    index = (np.arange(len(table)) % 3) + 1
    out = write_class_mask_zarr(
        folder / "out" / "img_classes.ome.zarr", mask.data, table.ids, index
    )
    back = open_ome_zarr(out, labels=True)
    np.testing.assert_array_equal(np.asarray(back.data), class_mask(labels, table.ids, index))
    assert not list((folder / "out").glob(".*"))  # no temporary folder left


def test_not_an_ome_zarr_is_one_clear_error(tmp_path):
    from svetlana.core.errors import InputError

    (tmp_path / "plain.zarr").mkdir()
    with pytest.raises(InputError, match="OME-Zarr"):
        open_ome_zarr(tmp_path / "plain.zarr")


@pytest.mark.slow
def test_cli_add_and_predict_an_ome_zarr_image_as_its_tiff_twin(tmp_path, scene):
    """`svetlana add` copies the OME-Zarr pair chunk by chunk; `predict` classifies it as the same
    pixels read whole from TIFF and writes the class mask as OME-Zarr."""
    import csv

    import tifffile

    from tests.conftest import ok, write_pair

    folder, image, labels = scene
    write_pair(folder, "twin", image, labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, folder / "twin.tif", folder / "twin_masks.tif")
    out = ok("add", bundle, folder / "img.ome.zarr", folder / "img_masks.ome.zarr", "--name", "big")
    assert "12 objects" in out
    assert (bundle / "images" / "big.ome.zarr").is_dir()
    ids = compute_objects(labels).ids
    rows = ["image,object,class"] + [
        f"twin,{i},{'bright' if k % 2 == 0 else 'dim'}" for k, i in enumerate(ids)
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "labels.csv")
    ok("train", bundle, "--epochs", "3", "--val-fraction", "0.25", "--patch-size", "24")
    ok("predict", bundle, "--out", tmp_path / "out")
    with (tmp_path / "out" / "predictions.csv").open(newline="") as f:
        got = list(csv.DictReader(f))
    by = {im: [r for r in got if r["image"] == im] for im in ("twin", "big")}
    assert len(by["big"]) == len(ids) == len(by["twin"])
    for a, b in zip(by["twin"], by["big"], strict=True):
        assert a["predicted"] == b["predicted"] and a["p_bright"] == b["p_bright"]
        assert a["centroid_y"] == b["centroid_y"] and a["area"] == b["area"]
    np.testing.assert_array_equal(  # one class-mask writer: a tiled TIFF for the large one
        tifffile.imread(tmp_path / "out" / "big_classes.tif"),
        tifffile.imread(tmp_path / "out" / "twin_classes.tif"),
    )


def test_lazy_measurements_equal_the_in_memory_ones(scene):
    """A forest measures a larger-than-memory image band by band: same values as in memory,
    also for objects split between chunks (none of the image is read whole)."""
    from svetlana.core.objects.measurements import measure_objects

    folder, image, labels = scene
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    ref = measure_objects(image, labels, spacing=(0.5, 0.5))
    got = measure_objects(img.data, mask.data, spacing=(0.5, 0.5))
    assert got.names == ref.names and len(ref) == 12
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-6, atol=1e-6)
    # A model reading a few columns: only their families are measured, with the same values.
    few = measure_objects(img.data, mask.data, spacing=(0.5, 0.5), columns=["ch0_gauss_s2_mean"])
    assert "ch0_gauss_s2_mean" in few.names and "ch0_ring_mean" not in few.names
    for name in few.names:
        np.testing.assert_array_equal(few.column(name), got.column(name))
    # A whole slide's table is the largest thing held: only the columns asked for are kept
    # (and the base columns of the neighbours' means asked for), not every column of their
    # families.
    asked = ["ch0_gauss_s2_mean", "nb_area", "ch0_ring_mean"]
    some = measure_objects(img.data, mask.data, spacing=(0.5, 0.5), columns=asked)
    assert set(some.names) == {*asked, "area"}
    for name in some.names:
        np.testing.assert_array_equal(some.column(name), got.column(name))


@pytest.mark.parametrize("band_rows", [10, 11])  # 11: bands (and crops) starting on odd rows
def test_a_lazy_image_measured_on_two_threads_gives_the_one_thread_values(
    scene, monkeypatch, band_rows
):
    """Bands of a lazy image are measured on both cores at any object count (here more objects
    than an image in memory is measured on threads for), each band into accumulators sized to
    the objects it touches, objects finished group by group (never all objects' histograms at
    once): the values of one thread, and of the image in memory."""
    from svetlana.core.objects import measurements as mod

    folder, image, labels = scene
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    monkeypatch.setattr(mod, "_BAND_PIXELS", 96 * band_rows)  # many bands: both threads get some
    monkeypatch.setattr(mod, "_THREADED_MAX_OBJECTS", 5)  # 12 objects: "many" for memory
    ref = mod.measure_objects(image, labels, spacing=(0.5, 0.5))  # in memory: one thread
    monkeypatch.setenv(mod.THREADS_ENV, "1")
    one = mod.measure_objects(img.data, mask.data, spacing=(0.5, 0.5))
    monkeypatch.setenv(mod.THREADS_ENV, "2")
    runs, finished = [], []
    real = mod.measure_tiles

    def spy(*a, **k):
        runs.append((len(a[0]), a[5]))  # bands, threads
        done = k["finish"]
        k["finish"] = lambda rows, acc: finished.append(rows.size) or done(rows, acc)
        return real(*a, **k)

    monkeypatch.setattr(mod, "measure_tiles", spy)
    two = mod.measure_objects(img.data, mask.data, spacing=(0.5, 0.5))
    assert runs and all(bands >= 4 and workers == 2 for bands, workers in runs)
    # Objects finished a group at a time: never every object's histograms at once.
    assert sum(finished) == len(ref) and max(finished) < len(ref)
    assert one.names == two.names == ref.names and np.array_equal(one.ids, two.ids)
    np.testing.assert_allclose(two.values, one.values, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(two.values, ref.values, rtol=2e-5, atol=1e-6)


def test_lazy_3d_measurements_of_chosen_ids(tmp_path):
    from svetlana.core.errors import InputError
    from svetlana.core.objects.measurements import measure_objects

    rng = np.random.default_rng(3)
    labels = np.zeros((12, 40, 40), np.uint32)
    for k in range(1, 10):
        z, y, x = rng.integers(0, 8), rng.integers(0, 32), rng.integers(0, 32)
        labels[z : z + 4, y : y + 8, x : x + 7] = k * 1000
    image = (rng.poisson(50, labels.shape) + (labels > 0) * 100).astype(np.uint16)
    _save(tmp_path / "i.zarr", image[np.newaxis], "CZYX", (1, 5, 16, 16))
    _save(tmp_path / "m.zarr", labels, "ZYX", (5, 16, 16))
    img = open_ome_zarr(tmp_path / "i.zarr")
    mask = open_ome_zarr(tmp_path / "m.zarr", labels=True)
    ids = np.unique(labels)[1:][::2]
    ref = measure_objects(image, labels, ids=ids, spacing=(2.0, 0.5, 0.5))
    got = measure_objects(img.data, mask.data, ids=ids, spacing=(2.0, 0.5, 0.5))
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="not in the mask"):
        measure_objects(img.data, mask.data, ids=[1000, 1234])


def test_cli_adds_a_large_tiled_tiff_lazily_with_the_in_memory_results(tmp_path, monkeypatch):
    """A tiled TIFF above the size threshold is read tile by tile (objects crossing tiles):
    the same object table, predictions and class mask as its plain-TIFF twin read whole."""
    import csv

    import tifffile

    from svetlana.core.objects import lazy
    from svetlana.core.project.bundle import Project
    from tests.conftest import ok, write_pair

    monkeypatch.setattr(lazy, "LAZY_TIFF_BYTES", 10_000)  # this 96x96 image counts as large
    monkeypatch.setattr(lazy, "_TIFF_CHUNK", {"z": 1, "y": 32, "x": 16})  # chunks of 1-2 tiles
    image, labels = blobs(n=12, seed=1, radius=7)
    image2 = np.stack([image, image / 2 + 7]).astype(np.float32)
    write_pair(tmp_path, "twin", image2, labels)
    big, big_mask = tmp_path / "big.tif", tmp_path / "big_masks.tif"
    tifffile.imwrite(big, image2, tile=(16, 16), metadata={"axes": "CYX"}, compression="zlib")
    tifffile.imwrite(big_mask, labels, tile=(16, 16), compression="zlib")
    assert lazy.is_large_tiled_tiff(big) and not lazy.is_large_tiled_tiff(tmp_path / "twin.tif")
    img, mask = lazy.open_pair(big, big_mask)
    assert img.data.chunks[1:] == mask.data.chunks == ((32, 32, 32), (16,) * 6)

    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, tmp_path / "twin.tif", tmp_path / "twin_masks.tif")
    assert "12 objects" in ok("add", bundle, big, big_mask)
    assert (bundle / "images" / "big.ome.zarr").is_dir()  # copied chunk by chunk as OME-Zarr
    ref = compute_objects(labels, image2)
    loaded = Project.open(bundle, readonly=True).load("big")
    assert isinstance(loaded, LargeImage)
    got = loaded.table
    np.testing.assert_array_equal(got.bbox, ref.bbox)
    np.testing.assert_array_equal(got.centroid, ref.centroid)
    rows = ["image,object,class"] + [
        f"twin,{i},{'bright' if k % 2 == 0 else 'dim'}" for k, i in enumerate(ref.ids)
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "labels.csv")
    ok("train", bundle, "--arch", "forest")
    ok("predict", bundle, "--out", tmp_path / "out")
    with (tmp_path / "out" / "predictions.csv").open(newline="") as f:
        got_rows = list(csv.DictReader(f))
    by = {im: [r for r in got_rows if r["image"] == im] for im in ("twin", "big")}
    assert len(by["big"]) == len(ref) == len(by["twin"])
    human = {"image", "class", "source", "label"}  # the twin's objects carry the labels
    for a, b in zip(by["twin"], by["big"], strict=True):
        assert {k: v for k, v in a.items() if k not in human} == {
            k: v for k, v in b.items() if k not in human
        }
    np.testing.assert_array_equal(  # one class-mask writer: a tiled TIFF for the large one
        tifffile.imread(tmp_path / "out" / "big_classes.tif"),
        tifffile.imread(tmp_path / "out" / "twin_classes.tif"),
    )


def test_a_large_tiff_of_unknown_axes_is_one_clear_error_then_added_with_axes(
    tmp_path, monkeypatch
):
    import tifffile

    from svetlana.core.objects import lazy
    from tests.conftest import ok, run_cli

    monkeypatch.setattr(lazy, "LAZY_TIFF_BYTES", 10_000)
    image, labels = blobs(n=6, seed=2)
    tifffile.imwrite(
        tmp_path / "a.tif", np.stack([image, image]), tile=(32, 32), photometric="minisblack"
    )
    tifffile.imwrite(tmp_path / "a_masks.tif", labels, tile=(32, 32))
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "x,y")
    code, out, err = run_cli("add", bundle, tmp_path / "a.tif", tmp_path / "a_masks.tif")
    assert code == 1 and "a.tif" in err and "--axes" in err, err
    assert not (bundle / "images" / "a.ome.zarr").exists()
    assert "6 objects" in ok(
        "add", bundle, tmp_path / "a.tif", tmp_path / "a_masks.tif", "--axes", "CYX"
    )


def test_training_patches_of_a_lazy_image_equal_its_twin(tmp_path, scene):
    """Objects labelled on an OME-Zarr image train from patches read around them only: the same
    patches as the same pixels read whole (the image is never normalised whole)."""

    from svetlana.core.usecases.train import training_set
    from tests.conftest import ok, write_pair

    folder, image, labels = scene
    write_pair(folder, "twin", image, labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, folder / "twin.tif", folder / "twin_masks.tif")
    ok("add", bundle, folder / "img.ome.zarr", folder / "img_masks.ome.zarr", "--name", "big")
    ids = compute_objects(labels).ids[::-1][:9]  # not in id order
    rows = ["image,object,class"] + [
        f"{im},{i},{'bright' if k % 2 == 0 else 'dim'}"
        for im in ("twin", "big")
        for k, i in enumerate(ids)
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "labels.csv")

    from svetlana.core.project.bundle import Project

    project = Project.open(bundle)
    try:
        big, twin = project.load("big"), project.load("twin")
        assert isinstance(big, LargeImage) and not isinstance(twin, LargeImage)
        with pytest.raises(TypeError):  # a large image is never normalised whole
            big.normalised  # noqa: B018
        ts = training_set(project, 24)
        # One object's patch (Annotate tab, gallery, Explain) is the same, read around it.
        for i in ids[:3]:
            np.testing.assert_array_equal(
                big.object_patch(int(i), 24), twin.object_patch(int(i), 24)
            )
    finally:
        project.close()
    by = {key: k for k, key in enumerate(ts.keys)}
    for i in ids:
        np.testing.assert_array_equal(
            ts.patches[by[("big", int(i))]], ts.patches[by[("twin", int(i))]]
        )


def test_preview_without_a_stored_level_and_too_large_a_preview(scene, monkeypatch):
    from svetlana.core.errors import InputError
    from svetlana.core.objects import lazy

    folder, image, labels = scene
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    loaded = LargeImage("big", img.data, mask.data, None)
    monkeypatch.setattr(lazy, "PREVIEW_SIDE", 40)  # 96 pixels a side: every 3rd
    k, small, small_labels = lazy.preview_pair(loaded)  # no stored level: read now
    assert k == 3
    np.testing.assert_array_equal(small, image[:, ::3, ::3])
    np.testing.assert_array_equal(small_labels, labels[::3, ::3])
    monkeypatch.setattr(lazy, "_PREVIEW_MAX_BYTES", 1000)
    with pytest.raises(InputError, match="too large to show"):
        lazy.preview_pair(loaded)


def test_adding_copies_both_files_and_counts_the_objects_in_one_pass(scene, tmp_path, monkeypatch):
    """``svetlana add`` of an OME-Zarr pair reads each chunk once, on two threads: the bundle's
    copies (full resolution and preview level) hold the source's pixels and the object table
    equals the one computed chunk by chunk (objects crossing chunk borders included)."""
    from svetlana.core.objects import lazy

    folder, image, labels = scene
    monkeypatch.setattr(lazy, "PREVIEW_SIDE", 40)  # 96 pixels a side: a preview of every 3rd
    reads = []
    real = lazy._read
    monkeypatch.setattr(lazy, "_read", lambda a, i: reads.append(1) or real(a, i))
    img, mask = open_pair(folder / "img.ome.zarr", folder / "img_masks.ome.zarr")
    table = lazy.copy_pair_with_table(img, mask, tmp_path / "i.ome.zarr", tmp_path / "m.ome.zarr")
    assert len(reads) == 2 * 36  # 36 chunks of 16x16, each read once from the image and mask
    ref = compute_objects(labels, image)
    for field in ("ids", "area", "bbox", "centroid"):
        np.testing.assert_array_equal(getattr(table, field), getattr(ref, field))
    np.testing.assert_allclose(table.mean_intensity, ref.mean_intensity, rtol=1e-12)
    for path, want in ((tmp_path / "i.ome.zarr", image), (tmp_path / "m.ome.zarr", labels)):
        full = open_ome_zarr(path, labels=want.ndim == 2)
        small = open_ome_zarr(path, labels=want.ndim == 2, level=1)
        np.testing.assert_array_equal(np.asarray(full.data), want)
        np.testing.assert_array_equal(np.asarray(small.data), want[..., ::3, ::3])


def test_strips_of_chunks_give_the_rows_asked_for_in_any_order(tmp_path):
    # a whole-slide pass keeps the newest strip of chunks and only the last rows of the one
    # before; rows asked for before those are read again, never wrong
    from svetlana.core.objects.measure_lazy import _Strips

    labels = np.arange(96 * 20, dtype=np.uint32).reshape(96, 20)
    _save(tmp_path / "m.zarr", labels, "YX", (32, 8))
    strips = _Strips(open_ome_zarr(tmp_path / "m.zarr", labels=True).data)
    for a0 in range(0, 90, 3):  # bands of 5 rows, overlapping, top to bottom
        np.testing.assert_array_equal(strips.rows(a0, a0 + 5), labels[a0 : a0 + 5])
    kept = sum(arr.shape[0] for arr, _ in strips._cache.values())
    assert kept < 2 * 32  # the older strip kept as its last rows only
    for a0, a1 in [(40, 50), (0, 7), (28, 36), (60, 96), (1, 95)]:  # back and forth
        np.testing.assert_array_equal(strips.rows(a0, a1), labels[a0:a1])
    assert strips.reread > 0

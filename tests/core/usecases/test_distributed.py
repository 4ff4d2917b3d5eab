"""Folder prediction in parts: single process and Dask workers give the same files; bad pairs,
killed workers and --resume lose nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import tifffile

from svetlana.core.usecases.predict import predict_folder
from tests.conftest import blobs, run_cli, write_pair


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny untrained CNN saved as Svetlana saves models (its outputs are what matters here)."""
    import torch

    from svetlana.core.ml.models import build_model, save_checkpoint

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("model") / "model-1"
    card = {
        "id": "model-1",
        "architecture": "minimal",
        "in_channels": 2,
        "channels": 1,
        "n_classes": 2,
        "ndim": 2,
        "classes": ["bright", "dim"],
        "patch_size": 16,
    }
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), card)
    return folder


def _screen(folder: Path, n: int = 6) -> list[str]:
    names = []
    for k in range(n):
        image, labels = blobs(n=6 + k, seed=k)
        write_pair(folder, f"well{k:02d}", image, labels)
        names.append(f"well{k:02d}")
    return names


def _add_bad_pairs(folder: Path) -> None:
    image, labels = blobs(seed=9)
    tifffile.imwrite(folder / "nomask.tif", image)  # no mask beside it
    tifffile.imwrite(folder / "shifted.tif", image)
    tifffile.imwrite(folder / "shifted_masks.tif", labels[:80])  # shape mismatch


def _rows(out: Path) -> list[dict]:
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_same_outputs(a: Path, b: Path) -> None:
    ra, rb = _rows(a), _rows(b)
    assert [(r["image"], r["object"]) for r in ra] == [(r["image"], r["object"]) for r in rb]
    assert ra and list(ra[0]) == list(rb[0])
    for x, y in zip(ra, rb, strict=True):
        for k in x:
            if k.startswith("p_") or k in ("confidence", "uncertainty"):
                assert abs(float(x[k]) - float(y[k])) <= 1e-6, (k, x, y)
            else:
                assert x[k] == y[k], (k, x, y)
    masks = sorted(p.name for p in a.glob("*_classes.tif"))
    assert masks == sorted(p.name for p in b.glob("*_classes.tif")) and masks
    for name in masks:
        np.testing.assert_array_equal(tifffile.imread(a / name), tifffile.imread(b / name))
    ja, jb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    ja.pop("date"), jb.pop("date")
    assert ja == jb


def test_a_bad_pair_is_listed_and_the_others_are_predicted(tmp_path, model_dir):
    names = _screen(tmp_path / "in", 3)
    _add_bad_pairs(tmp_path / "in")
    run = predict_folder(model_dir, tmp_path / "in", tmp_path / "out")
    assert sorted(run.counts) == names
    assert {r["image"] for r in _rows(tmp_path / "out")} == set(names)
    with (tmp_path / "out" / "errors.csv").open(newline="") as f:
        errors = {r["image"]: r for r in csv.DictReader(f)}
    assert set(errors) == {"nomask", "shifted"}
    assert "no mask" in errors["nomask"]["error"]
    assert "shape" in errors["shifted"]["error"] and errors["shifted"]["file"].endswith(".tif")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["images"] == names


def test_resume_keeps_complete_images_and_redoes_the_others(tmp_path, model_dir):
    names = _screen(tmp_path / "in", 4)
    first = predict_folder(model_dir, tmp_path / "in", tmp_path / "ref")
    assert first.resumed == 0 and sorted(first.counts) == names
    # an interrupted run: one image never finished, one's class mask was half-written
    predict_folder(model_dir, tmp_path / "in", tmp_path / "out")
    (tmp_path / "out" / "parts" / "well01.done.json").unlink()
    (tmp_path / "out" / "well02_classes.tif").write_bytes(b"half")
    (tmp_path / "out" / "predictions.csv").unlink()
    before = (tmp_path / "out" / "well00_classes.tif").stat().st_mtime_ns
    run = predict_folder(model_dir, tmp_path / "in", tmp_path / "out", resume=True)
    assert run.resumed == 2  # well00 and well03
    assert (tmp_path / "out" / "well00_classes.tif").stat().st_mtime_ns == before
    assert_same_outputs(tmp_path / "ref", tmp_path / "out")
    # an input changed since: its image is predicted again
    image, labels = blobs(n=3, seed=42)
    write_pair(tmp_path / "in", "well03", image, labels)
    run = predict_folder(model_dir, tmp_path / "in", tmp_path / "out", resume=True)
    assert run.resumed == 3 and run.counts["well03"] and sum(run.counts["well03"].values()) == 3


def test_cli_lists_bad_pairs_and_exits_1(tmp_path, model_dir):
    import shutil

    from svetlana.core.project.bundle import Project

    with Project.create(tmp_path / "p.svetlana", ["bright", "dim"]) as project:
        mid = project.models.new_id()
        shutil.copytree(model_dir, project.models.dir(mid))
        project.models.register(mid, {"architecture": "minimal"})
    _screen(tmp_path / "in", 2)
    _add_bad_pairs(tmp_path / "in")
    out_dir = tmp_path / "out"
    code, out, err = run_cli("predict", tmp_path / "p.svetlana", "--folder", tmp_path / "in",
                             "--out", out_dir, "-q")  # fmt: skip
    assert code == 1 and "Traceback" not in err
    assert "2 of 4 images failed" in out and "errors.csv" in out
    assert "nomask.tif: no mask found" in err and "shifted.tif" in err
    assert {r["image"] for r in _rows(out_dir)} == {"well00", "well01"}


def test_cli_folder_flags_need_a_folder(tmp_path):
    code, _, err = run_cli("predict", tmp_path / "x.svetlana", "--workers", "2")
    assert code == 1 and "--workers works with --folder" in err


# ---- on a Dask cluster ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


@pytest.mark.slow
def test_cluster_output_equals_the_single_process_output(tmp_path, model_dir, cluster):
    _screen(tmp_path / "in", 6)
    _add_bad_pairs(tmp_path / "in")
    one = predict_folder(model_dir, tmp_path / "in", tmp_path / "one")
    many = predict_folder(
        model_dir, tmp_path / "in", tmp_path / "many", scheduler=cluster.scheduler_address
    )
    assert many.counts == one.counts and many.errors == one.errors
    assert_same_outputs(tmp_path / "one", tmp_path / "many")
    assert (tmp_path / "many" / "errors.csv").read_text() == (
        tmp_path / "one" / "errors.csv"
    ).read_text()


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(tmp_path, model_dir, cluster):
    from distributed import Client

    _screen(tmp_path / "in", 8)
    predict_folder(model_dir, tmp_path / "in", tmp_path / "one")
    killed = []
    with Client(cluster.scheduler_address) as client:

        def kill_a_busy_worker(p) -> None:
            if killed or p.done == 0:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        run = predict_folder(
            model_dir,
            tmp_path / "in",
            tmp_path / "many",
            scheduler=cluster.scheduler_address,
            progress=kill_a_busy_worker,
        )
    assert killed, "no worker was busy when the first image finished"
    assert not run.errors and len(run.counts) == 8
    assert_same_outputs(tmp_path / "one", tmp_path / "many")


@pytest.mark.slow
def test_cli_workers_and_resume(tmp_path, model_dir, cluster, monkeypatch):
    """`--workers 2` starts its own local cluster; `--resume` then predicts nothing again."""
    _screen(tmp_path / "in", 3)
    run = predict_folder(model_dir, tmp_path / "in", tmp_path / "out", workers=2)
    assert len(run.counts) == 3 and run.resumed == 0
    again = predict_folder(
        model_dir, tmp_path / "in", tmp_path / "out", scheduler=cluster.scheduler_address,
        resume=True,
    )  # fmt: skip
    assert again.resumed == 3 and again.counts == run.counts


def test_a_large_tiled_tiff_in_a_folder_is_read_tile_by_tile(tmp_path, model_dir, monkeypatch):
    """A whole-slide pair in a screen is predicted lazily (objects crossing tiles) and its class
    mask written as a tiled BigTIFF tile by tile: the same rows and mask as its plain twin."""
    from svetlana.core.objects import lazy

    monkeypatch.setattr(lazy, "LAZY_TIFF_BYTES", 10_000)
    monkeypatch.setattr(lazy, "_TIFF_CHUNK", {"z": 1, "y": 32, "x": 32})
    image, labels = blobs(n=12, seed=5, radius=7)
    write_pair(tmp_path / "plain", "slide", image, labels)
    big = tmp_path / "tiled"
    big.mkdir()
    tifffile.imwrite(big / "slide.tif", image, tile=(16, 16), compression="zlib")
    tifffile.imwrite(big / "slide_masks.tif", labels, tile=(16, 16), compression="zlib")
    assert lazy.is_large_tiled_tiff(big / "slide.tif")
    assert not lazy.is_large_tiled_tiff(tmp_path / "plain" / "slide.tif")
    for name in ("plain", "tiled"):
        predict_folder(model_dir, tmp_path / name, tmp_path / f"out-{name}", device="cpu")
    assert _rows(tmp_path / "out-tiled") == _rows(tmp_path / "out-plain")
    with tifffile.TiffFile(tmp_path / "out-tiled" / "slide_classes.tif") as tif:
        assert tif.pages[0].is_tiled
        np.testing.assert_array_equal(
            tif.asarray(), tifffile.imread(tmp_path / "out-plain" / "slide_classes.tif")
        )

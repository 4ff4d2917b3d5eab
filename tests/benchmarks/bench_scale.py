"""Folder prediction throughput: single process vs a local Dask cluster of 1 and 2 workers.

python -m tests.benchmarks.bench_scale [--n 1000] [--data /tmp/svetlana-bench-scale]
       [--configs single,1,2] [--json out.json]
python -m tests.benchmarks.bench_scale --big [--size 20000] [--data /tmp/svetlana-bench-big]

Generates ``--n`` 512x512 image/mask pairs with ~150 objects each (discs and ellipses of spread
sizes, Poisson noise, brightness spread per image) once into ``--data`` (never into the repo),
saves a default ("minimal") CNN with fixed random weights (speed does not depend on training),
and times ``predict_folder`` on each configuration: wall time including the cluster's start,
images/s over the whole run and in steady state (after the first image), and the scheduler's
per-task overhead (1,000 no-op tasks on the same cluster).

``--big``: a SIZE x SIZE OME-Zarr image and label mask (~1,040 objects per million pixels,
crossing the 1024-pixel chunks); ``svetlana add`` and ``svetlana predict --image big`` with a CNN
and with a forest, each timed with its peak memory (``/usr/bin/time -v``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def generate(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` pairs ``img_XXXXX.tif`` / ``img_XXXXX_masks.tif`` (skipped when already there)."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / f".complete-{n}"
    if done.exists():
        return
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:512, :512]
    for k in range(n):
        labels = np.zeros((512, 512), np.int32)
        gain = rng.uniform(0.5, 2.0)
        image = np.full((512, 512), 80.0 * gain)
        centres = rng.uniform(12, 500, (400, 2))
        kept = 0
        for cy, cx in centres:
            if kept >= rng.integers(130, 171):
                break
            a, b = rng.uniform(4, 11, 2)
            t = rng.uniform(0, np.pi)
            y0, y1 = int(max(cy - 12, 0)), int(min(cy + 13, 512))
            x0, x1 = int(max(cx - 12, 0)), int(min(cx + 13, 512))
            dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
            u, v = dy * np.cos(t) + dx * np.sin(t), -dy * np.sin(t) + dx * np.cos(t)
            inside = (u / a) ** 2 + (v / b) ** 2 <= 1
            if labels[y0:y1, x0:x1][inside].any():
                continue  # no overlaps
            kept += 1
            labels[y0:y1, x0:x1][inside] = kept
            image[y0:y1, x0:x1][inside] += gain * (300 if kept % 3 else 90)
        image = rng.poisson(image).astype(np.uint16)
        tifffile.imwrite(folder / f"img_{k:05d}.tif", image)
        tifffile.imwrite(folder / f"img_{k:05d}_masks.tif", labels)
    done.touch()


def save_model(folder: Path) -> Path:
    import torch

    from svetlana.core.ml.models import build_model, save_checkpoint

    torch.manual_seed(0)
    card = {
        "id": "bench",
        "architecture": "minimal",
        "in_channels": 2,
        "channels": 1,
        "n_classes": 2,
        "ndim": 2,
        "classes": ["bright", "dim"],
        "patch_size": 32,
    }
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), card)
    return folder


def _noop(x: int) -> int:
    return x


def run_config(config: str, model: Path, data: Path, out: Path) -> dict:
    from svetlana.core.usecases.predict import predict_folder

    shutil.rmtree(out, ignore_errors=True)
    first: list[float] = []
    t0 = time.perf_counter()

    def progress(p) -> None:
        if p.done >= 1 and not first:
            first.append(time.perf_counter())

    result: dict = {"config": config}
    if config == "single":
        run = predict_folder(model, data, out, device="cpu", progress=progress)
    else:
        from svetlana.core.usecases.cluster import dask_client

        with dask_client(workers=int(config)) as client:
            started = time.perf_counter()
            result["cluster_start_s"] = round(started - t0, 2)
            t1 = time.perf_counter()
            futs = client.map(_noop, range(1000), pure=False)
            client.gather(futs)
            result["per_task_overhead_ms"] = round((time.perf_counter() - t1) / 1000 * 1e3, 3)
            first.clear()
            t0 = time.perf_counter()
            run = predict_folder(
                model, data, out, scheduler=client.scheduler.address, progress=progress
            )
    wall = time.perf_counter() - t0
    n = len(run.counts)
    assert not run.errors, run.errors[:3]
    steady = (n - 1) / (wall - (first[0] - t0)) if first and n > 1 else float("nan")
    result.update(
        images=n,
        objects=sum(sum(c.values()) for c in run.counts.values()),
        wall_s=round(wall, 2),
        images_per_s=round(n / wall, 3),
        steady_images_per_s=round(steady, 3),
        first_image_s=round(first[0] - t0, 2) if first else None,
    )
    return result


CELL = 31  # one object per 31x31 cell of a jittered grid: ~1,040 objects per million pixels


def big_tile(y0: int, x0: int, h: int, w: int, size: int, seed: int = 0):
    """Pixels and labels of a region of the big scene (a pure function of the coordinates).

    Object ids are 1 + the cell's index; even ids are bright, odd ids dim (the truth)."""
    ncell = size // CELL
    cy = np.arange(y0, y0 + h) // CELL
    cx = np.arange(x0, x0 + w) // CELL
    cell = cy[:, None] * ncell + cx[None, :]
    rng = np.random.default_rng(seed)
    jit = rng.integers(-5, 6, (ncell * ncell, 2))
    rad = rng.uniform(4, 9.5, ncell * ncell)
    valid = (cy[:, None] < ncell) & (cx[None, :] < ncell)
    cell = np.where(valid, cell, 0)
    ccy = (cell // ncell) * CELL + CELL // 2 + jit[cell, 0]
    ccx = (cell % ncell) * CELL + CELL // 2 + jit[cell, 1]
    yy = np.arange(y0, y0 + h)[:, None]
    xx = np.arange(x0, x0 + w)[None, :]
    inside = valid & ((yy - ccy) ** 2 + (xx - ccx) ** 2 <= rad[cell] ** 2)
    labels = np.where(inside, cell + 1, 0).astype(np.uint32)
    noise = np.random.default_rng((seed, y0, x0)).poisson(100.0, (h, w))
    bright = inside & (labels % 2 == 0)
    image = noise + np.where(bright, 300, np.where(inside, 80, 0))
    return image.astype(np.uint16), labels


def make_big(folder: Path, size: int) -> tuple[Path, Path]:
    """``big.ome.zarr`` (1 channel) and ``big_masks.ome.zarr``, written tile by tile."""
    from svetlana.core.objects.lazy import write_ome_zarr

    ip, mp = folder / "big.ome.zarr", folder / "big_masks.ome.zarr"
    if (folder / f".complete-{size}").exists():
        return ip, mp
    tile = 2000  # not the chunk size: objects cross the 1024-pixel chunk borders

    import zarr

    raw = zarr.open_array(
        str(folder / ".labels-raw.zarr"), mode="w", shape=(size, size), chunks=(1024, 1024),
        dtype=np.uint32, zarr_format=2,
    )  # fmt: skip

    def fill_image(arr):  # one pass: the labels go to a scratch array, copied below
        for y0 in range(0, size, tile):
            for x0 in range(0, size, tile):
                h, w = min(tile, size - y0), min(tile, size - x0)
                img, lab = big_tile(y0, x0, h, w, size)
                arr[0, y0 : y0 + h, x0 : x0 + w] = img
                raw[y0 : y0 + h, x0 : x0 + w] = lab

    def fill_mask(arr):
        for y0 in range(0, size, 1024):
            arr[y0 : y0 + 1024] = raw[y0 : y0 + 1024]

    kw = {"spacing": (0.5, 0.5)}
    write_ome_zarr(
        ip, None, shape=(1, size, size), chunks=(1, 1024, 1024), dtype=np.uint16, axes="CYX",
        fill=fill_image, **kw,
    )  # fmt: skip
    write_ome_zarr(
        mp, None, shape=(size, size), chunks=(1024, 1024), dtype=np.uint32, axes="YX",
        fill=fill_mask, **kw,
    )  # fmt: skip
    shutil.rmtree(folder / ".labels-raw.zarr", ignore_errors=True)
    (folder / f".complete-{size}").touch()
    return ip, mp


def _timed(args: list[str]) -> dict:
    """Run ``svetlana ARGS`` under /usr/bin/time -v: wall seconds and peak memory (MB)."""
    import re
    import subprocess
    import sys

    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "svetlana", *args]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return {
        "command": args[0],
        "wall_s": round(wall, 1),
        "peak_mb": round(peak / 1024),
        "out": p.stdout.strip()[-300:],
    }


def run_big(folder: Path, size: int, models: tuple[str, ...] = ("cnn", "forest")) -> list[dict]:
    import csv
    import sys

    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    ip, mp = make_big(folder, size)
    print(f"big scene: {ip} ({time.perf_counter() - t:.0f} s to generate or find)", flush=True)
    bundle = folder / "big.svetlana"
    shutil.rmtree(bundle, ignore_errors=True)
    img, lab = big_tile(0, 0, 512, 512, size, seed=0)
    tifffile.imwrite(folder / "train.tif", img)
    tifffile.imwrite(folder / "train_masks.tif", lab)
    ids = np.unique(lab[lab > 0])[:120]
    with (folder / "labels.csv").open("w") as f:
        f.write("image,object,class\n")
        f.writelines(f"train,{i},{'bright' if i % 2 == 0 else 'dim'}\n" for i in ids)
    env_cli = [sys.executable, "-m", "svetlana"]
    import subprocess

    for args in (
        ["init", bundle, "--classes", "bright,dim"],
        ["add", bundle, folder / "train.tif", folder / "train_masks.tif"],
        ["import-labels", bundle, folder / "labels.csv"],
        # Both kinds of model: a CNN reads patches tile by tile, a forest measures the objects
        # band by band (`train` without --arch may pick either).
        ["train", bundle, "--arch", "small", "--epochs", "20", "--name", "cnn", "-q"],
        ["train", bundle, "--arch", "forest", "--name", "forest", "-q"],
    ):
        if args[0] == "train" and args[-2] not in models:
            continue
        subprocess.run([*env_cli, *map(str, args)], check=True, capture_output=True)
    results = [_timed(["add", str(bundle), str(ip), str(mp), "--name", "big"])]
    for model in models:
        out = folder / f"out-{model}"
        shutil.rmtree(out, ignore_errors=True)
        args = ["predict", str(bundle), "--model", model, "--image", "big", "--out", str(out)]
        results.append(_timed([*args, "-q"]) | {"model": model})
        right = total = 0
        with (out / "predictions.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                total += 1
                right += row["predicted"] == ("bright" if int(row["object"]) % 2 == 0 else "dim")
        results.append(
            {"model": model, "objects": total, "accuracy": round(right / max(total, 1), 4)}
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="the larger-than-memory OME-Zarr run")
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--models", default="cnn,forest", help="--big: the models to predict with")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/svetlana-bench-scale"))
    ap.add_argument("--configs", default="single,1,2")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.big:
        data = (
            a.data
            if a.data != Path("/tmp/svetlana-bench-scale")
            else Path("/tmp/svetlana-bench-big")
        )
        for r in run_big(data, a.size, tuple(m for m in a.models.split(",") if m)):
            print(json.dumps(r), flush=True)
        return
    src = a.data / f"pairs-{a.n}"
    t = time.perf_counter()
    generate(src, a.n)
    print(f"data: {src} ({time.perf_counter() - t:.0f} s to generate or find)", flush=True)
    model = save_model(a.data / "model")
    results = []
    for config in a.configs.split(","):
        r = run_config(config, model, src, a.data / f"out-{config}")
        r["cpus"] = os.cpu_count()
        print(json.dumps(r), flush=True)
        results.append(r)
    ref = (
        (a.data / "out-single" / "predictions.csv").read_bytes() if "single" in a.configs else None
    )
    for config in a.configs.split(","):
        if ref is not None and config != "single":
            same = (a.data / f"out-{config}" / "predictions.csv").read_bytes() == ref
            print(f"{config} worker(s): predictions.csv identical to single-process: {same}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

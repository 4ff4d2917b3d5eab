"""Folder prediction throughput: single process vs a local Dask cluster of 1 and 2 workers.

python -m tests.benchmarks.bench_scale [--n 1000] [--data /tmp/svetlana-bench-scale]
       [--configs single,1,2] [--json out.json]

Generates ``--n`` 512x512 image/mask pairs with ~150 objects each (discs and ellipses of spread
sizes, Poisson noise, brightness spread per image) once into ``--data`` (never into the repo),
saves a default ("minimal") CNN with fixed random weights (speed does not depend on training),
and times ``predict_folder`` on each configuration: wall time including the cluster's start,
images/s over the whole run and in steady state (after the first image), and the scheduler's
per-task overhead (1,000 no-op tasks on the same cluster).
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

    from svetlana.core.models import build_model, save_checkpoint

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
    from svetlana.core.predicting import predict_folder

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
        from svetlana.core.cluster import dask_client

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/svetlana-bench-scale"))
    ap.add_argument("--configs", default="single,1,2")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
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

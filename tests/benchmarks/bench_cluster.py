"""A cluster that costs nothing: ``predict --folder`` in one process x 2 threads vs 2 Dask workers
x 1 thread each, on the same cores, with the default forest.

python -m tests.benchmarks.bench_cluster [--n 200] [--rounds 2] [--data /tmp/svetlana-bench-cluster]

Generates ``--n`` 256x256 image/mask pairs with ~40 textured objects each
(``core/synthetic/easy.texture_scene``) once into ``--data`` (never into the repo), trains a forest
on one more such image (all its objects labelled), then runs the ``svetlana predict --folder``
command as a user would, both sides back to back, ``--rounds`` times: wall time of the process
from start to exit. Checks that the two sides wrote byte-identical ``predictions.csv`` and class
masks, and that the workers' terminal shows no traceback and no INFO line.

Where the kernel shares the CPU fairly between sessions (``/proc/sys/kernel/sched_autogroup_enabled``
= 1) and other sessions keep the cores busy, this session gets the same share whatever the number
of its processes: the workers cannot run in parallel then, and the CPU seconds (also printed) are
the fairer comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def generate(folder: Path, n: int) -> Path:
    """``n`` pairs in ``folder/plate`` and a trained bundle ``folder/p.svetlana`` (once)."""
    import tifffile

    from svetlana.core.synthetic.easy import texture_scene
    from tests.conftest import ok

    plate = folder / "plate"
    done = folder / f".complete-{n}"
    if done.exists():
        return folder / "p.svetlana"
    plate.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        s = texture_scene(n_objects=40, shape=(256, 256), seed=1000 + k)
        tifffile.imwrite(plate / f"img_{k:04d}.tif", s.image)
        tifffile.imwrite(plate / f"img_{k:04d}_masks.tif", s.labels)
    train = texture_scene(n_objects=150, shape=(512, 512), seed=7)
    tifffile.imwrite(folder / "train.tif", train.image)
    tifffile.imwrite(folder / "train_masks.tif", train.labels)
    bundle = folder / "p.svetlana"
    ok("init", bundle, "--classes", ",".join(train.class_names))
    ok("add", bundle, folder / "train.tif", folder / "train_masks.tif", "--name", "train")
    rows = ["image,object,class"] + [
        f"train,{i},{train.class_names[c]}" for i, c in sorted(train.classes.items())
    ]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, folder / "labels.csv")
    ok("train", bundle, "--arch", "forest")
    done.touch()
    return bundle


def run_side(bundle: Path, plate: Path, out: Path, workers: int | None) -> dict:
    """One ``svetlana predict --folder`` process: wall seconds and its terminal (stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "app"))
    if workers is None:  # one process, every thread of the 2 cores
        env.update({"SVETLANA_MEASURE_THREADS": "2", "OMP_NUM_THREADS": "2"})
    args = [sys.executable, "-m", "svetlana", "predict", str(bundle), "--folder", str(plate)]
    args += ["--out", str(out)] + (["--workers", str(workers)] if workers else [])
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers too, once reaped
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"predict failed ({p.returncode}):\n{p.stderr}")
    return {"wall_s": wall, "cpu_s": cpu, "stderr": p.stderr}


def same_outputs(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "run.json")
    names_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "run.json")
    return files == names_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path("/tmp/svetlana-bench-cluster"))
    a = ap.parse_args()
    bundle = generate(a.data, a.n)
    plate = a.data / "plate"
    for r in range(a.rounds):
        one = run_side(bundle, plate, a.data / "out-single", None)
        two = run_side(bundle, plate, a.data / "out-workers", 2)
        noisy = [
            line
            for line in two["stderr"].splitlines()
            if "Traceback" in line or line.startswith("INFO") or "Error" in line
        ]
        load = os.getloadavg()[0]
        print(
            f"round {r + 1}: 1 process x 2 threads {one['wall_s']:.1f} s; 2 workers x 1 thread "
            f"{two['wall_s']:.1f} s (ratio {two['wall_s'] / one['wall_s']:.2f}); CPU s "
            f"{one['cpu_s']:.1f} vs {two['cpu_s']:.1f}; identical outputs: "
            f"{same_outputs(a.data / 'out-single', a.data / 'out-workers')}; noisy lines: "
            f"{len(noisy)}; load {load:.1f}",
            flush=True,
        )
        for line in noisy[:5]:
            print("   ", line)


if __name__ == "__main__":
    main()

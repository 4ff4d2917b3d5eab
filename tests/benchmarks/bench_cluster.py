"""A cluster that costs nothing: ``predict --folder`` in one process x 2 threads vs 2 Dask workers
x 1 thread each, on the same cores, with the default forest.

python -m tests.benchmarks.bench_cluster [--n 200] [--rounds 4] [--data /tmp/svetlana-bench-cluster]

Generates ``--n`` 256x256 image/mask pairs with ~40 textured objects each
(``core/synthetic/easy.texture_scene``) once into ``--data`` (never into the repo), trains a forest
on one more such image (all its objects labelled; trained again when the measurement code
changed), then runs the ``svetlana predict --folder`` command as a user would, both sides back to
back, ``--rounds`` times, the side that goes first alternating: wall time of the process from
start to exit, and CPU seconds of it and of every process it started (the workers, the fork
server: this process adopts them, ``PR_SET_CHILD_SUBREAPER``, and reaps them). The inputs are read
once before (warm page cache for both sides). Checks that the two sides wrote byte-identical files
(``run.json`` aside: its date), and that the workers' terminal shows no traceback and no INFO line.
Ends with the mean and the range of the ratios and the load average over the rounds.

Where the kernel shares the CPU fairly between sessions (``/proc/sys/kernel/sched_autogroup_enabled``
= 1) and other sessions keep the cores busy, this session gets the same share whatever the number
of its processes: the workers cannot run in parallel then, and the wall ratio follows the CPU
seconds ratio (also printed).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import os
import resource
import statistics
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
    trained = folder / ".trained"
    if done.exists() and trained.exists() and trained.read_text() == _measurement_code():
        return folder / "p.svetlana"
    if not done.exists():
        plate.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            s = texture_scene(n_objects=40, shape=(256, 256), seed=1000 + k)
            tifffile.imwrite(plate / f"img_{k:04d}.tif", s.image)
            tifffile.imwrite(plate / f"img_{k:04d}_masks.tif", s.labels)
        done.touch()
    import shutil

    shutil.rmtree(folder / "p.svetlana", ignore_errors=True)
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
    trained.write_text(_measurement_code())
    return bundle


def _measurement_code() -> str:
    """A digest of the measurement code: a forest trained by another version may need columns
    this one does not compute."""
    h = hashlib.sha256()
    for p in sorted((REPO / "app" / "svetlana" / "core" / "objects").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def _adopt_orphans() -> None:
    """Make this process the reaper of every process its children start (Linux): the CPU of
    the workers and of the fork server is then counted in RUSAGE_CHILDREN once they are reaped."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


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
    _reap()  # the workers and the fork server, adopted when the command exited
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--data", type=Path, default=Path("/tmp/svetlana-bench-cluster"))
    a = ap.parse_args()
    _adopt_orphans()
    bundle = generate(a.data, a.n)
    plate = a.data / "plate"
    for f in plate.iterdir():  # warm page cache for both sides
        f.read_bytes()
    rows = []
    for r in range(a.rounds):
        load0 = os.getloadavg()[0]
        sides = {}
        for workers in (None, 2) if r % 2 == 0 else (2, None):
            out = a.data / ("out-workers" if workers else "out-single")
            sides[workers] = run_side(bundle, plate, out, workers)
        one, two = sides[None], sides[2]
        noisy = [
            line
            for line in two["stderr"].splitlines()
            if "Traceback" in line or line.startswith("INFO") or "Error" in line
        ]
        load = (load0 + os.getloadavg()[0]) / 2
        rows.append((two["wall_s"] / one["wall_s"], two["cpu_s"] / one["cpu_s"], load))
        first = "one process" if r % 2 == 0 else "workers"
        print(
            f"round {r + 1} ({first} first): 1 process x 2 threads {one['wall_s']:.1f} s; "
            f"2 workers x 1 thread {two['wall_s']:.1f} s (ratio {rows[-1][0]:.2f}); CPU s "
            f"{one['cpu_s']:.1f} vs {two['cpu_s']:.1f} (ratio {rows[-1][1]:.2f}); identical "
            f"outputs: {same_outputs(a.data / 'out-single', a.data / 'out-workers')}; noisy "
            f"lines: {len(noisy)}; load {load:.1f}",
            flush=True,
        )
        for line in noisy[:5]:
            print("   ", line)
    walls, cpus, loads = zip(*rows, strict=True)
    print(
        f"wall ratio {statistics.mean(walls):.2f} (range {min(walls):.2f}-{max(walls):.2f}); "
        f"CPU ratio {statistics.mean(cpus):.2f} (range {min(cpus):.2f}-{max(cpus):.2f}); "
        f"load {min(loads):.1f}-{max(loads):.1f}; {a.rounds} rounds of {a.n} images"
    )


if __name__ == "__main__":
    main()

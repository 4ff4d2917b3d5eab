"""Where the time of one ``svetlana predict`` goes: read, label table, measure, trees, write.

python -m tests.benchmarks.bench_predict_stages BUNDLE [--out DIR] [--cold] [--model ID] [--image NAME]

Runs the CLI's ``predict`` in this process with timers around its stages (wall and this
process's CPU seconds); ``--cold`` deletes the bundle's measurement cache first (a first run).
The rest (``other``) is the start (imports, the argument parser), the model and the run record.
Make a bundle with ``python -m tests.benchmarks.run --only big --keep DIR`` (DIR/big-0/bench.svetlana).
"""

from __future__ import annotations

import argparse
import functools
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

STAGES = {
    "read": [("svetlana.core.project.bundle", "Project", "_read_tiff")],
    "label table": [("svetlana.core.project.bundle", "Project", "_cached_table")],
    "measure": [("svetlana.core.objects.measurement_cache", "MeasurementCache", "measure")],
    "trees": [("svetlana.core.ml.forest", "ForestModel", "predict_proba")],
    "network": [("svetlana.core.ml.inference", None, "predict_probabilities")],  # a CNN's
    "class mask": [("svetlana.core.usecases.results", None, "write_class_mask")],
    "csv": [("svetlana.core.usecases.predict", None, "write_predictions_csv")],
}


def main(argv: list[str] | None = None) -> int:
    t_start, c_start = time.perf_counter(), time.process_time()
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_predict_stages")
    p.add_argument("bundle", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--cold", action="store_true", help="delete the measurement cache first")
    p.add_argument("--model", help="the model's id (default: the bundle's default)")
    p.add_argument("--image", help="one image of the bundle (default: every image)")
    a = p.parse_args(argv)
    if a.cold:
        shutil.rmtree(a.bundle / "measurements", ignore_errors=True)
    import importlib

    spent: dict[str, list[float]] = {k: [0.0, 0.0] for k in STAGES}

    def timed(stage, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage][0] += time.perf_counter() - t
                spent[stage][1] += time.process_time() - c

        return run

    for stage, targets in STAGES.items():
        for mod_name, cls_name, attr in targets:
            mod = importlib.import_module(mod_name)
            owner = getattr(mod, cls_name) if cls_name else mod
            setattr(owner, attr, timed(stage, getattr(owner, attr)))
    from svetlana.cli.entry import main as cli

    out = a.out or Path(tempfile.mkdtemp(prefix="svpredict-"))
    pick = [*(["--model", a.model] if a.model else []), *(["--image", a.image] if a.image else [])]
    rc = cli(["-q", "predict", str(a.bundle), "--out", str(out), *pick])
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'stage':<12} {'wall s':>7} {'cpu s':>7}")
    for stage, (w, c) in spent.items():
        print(f"{stage:<12} {w:>7.2f} {c:>7.2f}")
    print(f"{'other':<12} {wall - sum(w for w, _ in spent.values()):>7.2f} "
          f"{cpu - sum(c for _, c in spent.values()):>7.2f}")  # fmt: skip
    print(f"{'total':<12} {wall:>7.2f} {cpu:>7.2f}   peak {peak:.0f} MB")
    return rc


if __name__ == "__main__":
    sys.exit(main())

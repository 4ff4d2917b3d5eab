"""Compare classifiers on the hard scenes through the `svetlana` CLI, as a user would run it.

python -m tests.benchmarks.classifiers --scenes texture2d,spot_position --seeds 2,3,4 \
    --arch minimal@100,small,forest,auto [--labels N] [--json out.json] [--keep DIR]

Per scene and seed: one bundle (init, add every image, import-labels of N random objects drawn
from the scene's labelling images), then per architecture `train --arch X` and `predict`
(`X@N` trains with `--epochs N`, e.g. `minimal@100`, the paper network's own recipe).
Errors are counted on the objects that were NOT labelled, on every image. An architecture the
CLI refuses (e.g. `forest` before it exists) is skipped with a note. Tune on seeds 0-1, report
on seeds 2-4.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from svetlana.core.synthetic.hard import SCENES, SceneSet


@dataclass
class ArchResult:
    scene: str
    seed: int
    arch: str
    n_unlabelled: int
    errors: int | None  # None: the CLI refused this architecture
    accuracy: float | None
    balanced_accuracy: float | None
    train_wall_s: float | None  # the whole `svetlana train` process
    train_cpu_s: float | None  # its CPU time (user + system): less inflated by a busy machine
    fit_s: float | None  # the seconds `train` reports
    load: float
    note: str = ""


def _cli(args: list[str], cwd: Path) -> tuple[int, str, str, float, float]:
    """Run `svetlana ARGS`: (exit code, stdout, stderr, wall s, CPU s of that process alone)."""
    cmd = [sys.executable, "-m", "svetlana", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, etext = out.read(), err.read()
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), text, etext, wall, cpu


def _ok(args: list[str], cwd: Path) -> str:
    rc, out, err, _, _ = _cli(args, cwd)
    if rc != 0:
        raise RuntimeError(f"`svetlana {' '.join(args)}` failed ({rc}):\n{err}")
    return out


def pick_labels(scene: SceneSet, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` random (image index, object id) from the labelling images, as a user labels in
    random order; redrawn until every class has at least two labels (a user keeps going)."""
    pool = [(i, o) for i in scene.label_images for o in sorted(scene.images[i].classes)]
    n = min(n, len(pool))
    for _ in range(1000):
        picked = [pool[k] for k in rng.choice(len(pool), n, replace=False)]
        counts = np.bincount(
            [scene.images[i].classes[o] for i, o in picked], minlength=len(scene.class_names)
        )
        if counts.min() >= 2:
            return picked
    raise RuntimeError(f"{scene.name}: cannot draw {n} labels with two of every class")


def _write_images(scene: SceneSet, folder: Path) -> list[list[str]]:
    """TIFFs of every image and mask; the `add` arguments for each."""
    import tifffile

    adds = []
    for i, im in enumerate(scene.images):
        img, msk = folder / f"img{i}.tif", folder / f"img{i}_mask.tif"
        multi = im.image.shape[0] > 1
        tifffile.imwrite(img, im.image if multi else im.image[0])
        tifffile.imwrite(msk, im.labels)
        args = [str(img), str(msk), "--name", f"img{i}"]
        if multi:
            args += ["--axes", "CYX" if im.labels.ndim == 2 else "CZYX"]
        if im.spacing is not None:
            args += ["--spacing", ",".join(f"{s:g}" for s in im.spacing)]
        adds.append(args)
    return adds


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _balanced_accuracy(truth: list[int], pred: list[int], n_classes: int) -> float:
    t, p = np.asarray(truth), np.asarray(pred)
    recalls = [float(np.mean(p[t == c] == c)) for c in range(n_classes) if np.any(t == c)]
    return float(np.mean(recalls))


def run_scene(
    name: str, seed: int, archs: list[str], n_labels: int | None, keep: Path | None
) -> list[ArchResult]:
    scene = SCENES[name](seed)
    results: list[ArchResult] = []
    with tempfile.TemporaryDirectory(prefix=f"svcls-{name}-") as tmp:
        work = keep / f"{name}-{seed}" if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bundle = work / "bench.svetlana"
        _ok(["-q", "init", str(bundle), "--classes", ",".join(scene.class_names)], work)
        for args in _write_images(scene, work):
            _ok(["-q", "add", str(bundle), *args], work)
        rng = np.random.default_rng([seed, 1000])
        labelled = pick_labels(scene, n_labels or scene.n_labels, rng)
        (work / "labels.csv").write_text(
            "image,object,class\n"
            + "".join(
                f"img{i},{o},{scene.class_names[scene.images[i].classes[o]]}\n" for i, o in labelled
            )
        )
        _ok(["-q", "import-labels", str(bundle), str(work / "labels.csv")], work)
        done = set(labelled)
        unl = [
            (i, o) for i, im in enumerate(scene.images) for o in im.classes if (i, o) not in done
        ]
        truth = [scene.images[i].classes[o] for i, o in unl]
        for arch in archs:
            load = _load()
            name_arch, _, epochs = arch.partition("@")
            model = arch.replace("@", "-e")
            args = ["-q", "train", str(bundle), "--arch", name_arch, "--name", model]
            rc, out, err, wall, cpu = _cli(args + (["--epochs", epochs] if epochs else []), work)
            if rc != 0:
                note = (err.strip().splitlines() or ["failed"])[-1]
                if "--arch" not in err and "architecture" not in err:
                    raise RuntimeError(f"train --arch {arch} failed ({rc}):\n{err}")
                results.append(
                    ArchResult(name, seed, arch, len(unl), None, None, None, None, None, None, load,
                               f"skipped: {note}")
                )  # fmt: skip
                continue
            m = re.search(r" ([\d.]+) s on", out)
            fit = float(m.group(1)) if m else None
            out_dir = work / f"pred-{model}"
            _ok(["-q", "predict", str(bundle), "--model", model, "--out", str(out_dir)], work)
            with open(out_dir / "predictions.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            column = "predicted" if rows and "predicted" in rows[0] else "class"
            index = {n: k for k, n in enumerate(scene.class_names)}
            predicted = {(r["image"], int(r["object"])): index[r[column]] for r in rows}
            pred = [predicted[(f"img{i}", o)] for i, o in unl]
            errors = int(sum(p != t for p, t in zip(pred, truth, strict=True)))
            results.append(
                ArchResult(
                    name, seed, arch, len(unl), errors, 1 - errors / len(unl),
                    _balanced_accuracy(truth, pred, len(scene.class_names)), wall, cpu, fit, load,
                )
            )  # fmt: skip
    return results


def markdown(results: list[ArchResult]) -> str:
    lines = [
        "| scene | seed | arch | errors | accuracy | balanced acc. | train wall s | train CPU s "
        "| fit s | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.errors is None:
            lines.append(
                f"| {r.scene} | {r.seed} | {r.arch} | - | - | - | - | - | - | {r.load:.1f} |"
            )
            continue
        lines.append(
            f"| {r.scene} | {r.seed} | {r.arch} | {r.errors}/{r.n_unlabelled} | "
            f"{100 * r.accuracy:.1f} % | {100 * r.balanced_accuracy:.1f} % | "
            f"{r.train_wall_s:.1f} | {r.train_cpu_s:.1f} | {r.fit_s if r.fit_s is not None else float('nan'):.1f} | "
            f"{r.load:.1f} |"
        )
    notes = sorted({f"{r.arch}: {r.note}" for r in results if r.note})
    return "\n".join(lines + [f"\n{n}" for n in notes])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.classifiers", description=__doc__)
    p.add_argument("--scenes", default=",".join(SCENES), help="comma-separated scene names")
    p.add_argument("--seeds", default="2,3,4", help="comma-separated seeds (tune on 0,1)")
    p.add_argument("--arch", default="minimal,small", help="comma-separated architectures")
    p.add_argument("--labels", type=int, help="labels per scene (default: the scene's own)")
    p.add_argument("--json", type=Path, help="append the results to this JSON file")
    p.add_argument("--keep", type=Path, help="keep the bundles under this folder")
    a = p.parse_args(argv)
    scenes = [s for s in a.scenes.split(",") if s]
    unknown = [s for s in scenes if s not in SCENES]
    if unknown:
        p.error(f"unknown scene(s) {unknown}; choose from {', '.join(SCENES)}")
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    archs = [s for s in a.arch.split(",") if s]
    everything: list[ArchResult] = []
    for name in scenes:
        for seed in seeds:
            results = run_scene(name, seed, archs, a.labels, a.keep)
            everything += results
            print(markdown(results), "\n", flush=True)
            if a.json:
                a.json.write_text(json.dumps([asdict(r) for r in everything], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

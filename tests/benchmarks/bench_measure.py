"""Object measurements: speed on the 16,671-object 4096^2 image, and what they are worth to a
random forest on the hard scenes (raw vs gain/offset-robust intensity columns).

python -m tests.benchmarks.bench_measure [--speed] [--forest] [--seeds 2,3,4] [--scenes a,b]

--speed: measure_objects on ``big_scene`` in a fresh process with one thread: wall and CPU
seconds and peak memory (the `svetlana predict` target: 5 s / 1 GB end to end), and on the 3D
sphere scene. --forest: per scene and seed, a random forest (scikit-learn, 300 trees) trained on
the scene's labels (drawn from its labelling images, as a user would) and judged on every other
object of every image, with three column sets: all, robust (raw-intensity columns left out), raw
(normalised columns left out), and the ablation shape + the object's raw intensity statistics vs
shape + the same statistics normalised per image. Includes a scene of dim vs bright objects under
4 gains/offsets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

_SPEED = r"""
import os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
import numpy as np
from svetlana.core.objects.measurements import measure_objects
def hwm():  # this process's peak resident memory in MB (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
image, labels = np.load(sys.argv[1]), np.load(sys.argv[2])
base = hwm()
w, c = time.perf_counter(), time.process_time()
m = measure_objects(image, labels)
w, c = time.perf_counter() - w, time.process_time() - c
print(f"{len(m)} {m.values.shape[1]} {w:.2f} {c:.2f} {base:.0f} {hwm():.0f}")
"""


def speed(repeats: int = 3) -> list[dict]:
    """measure_objects in a fresh process per run (the arrays loaded from .npy files, as a
    command would read them): wall, CPU, resident memory before and at the peak."""
    import tempfile
    from pathlib import Path

    from tests.benchmarks.scenes import big_scene, sphere3d_scene

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("big", big_scene), ("sphere3d", sphere3d_scene)):
            scene = make(0)
            ip, lp = Path(tmp) / f"{name}_image.npy", Path(tmp) / f"{name}_labels.npy"
            np.save(ip, scene.image)
            np.save(lp, scene.labels)
            del scene
            for _ in range(repeats):
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [sys.executable, "-c", _SPEED, str(ip), str(lp)],
                    capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                n, cols, wall, cpu, base, peak = out
                rows.append(
                    {"scene": name, "objects": int(n), "columns": int(cols),
                     "wall_s": float(wall), "cpu_s": float(cpu), "rss_before_mb": float(base),
                     "peak_rss_mb": float(peak), "load": round(load, 2)}
                )  # fmt: skip
                print(rows[-1], flush=True)
    return rows


def brightness_gain(seed: int = 0, scale: float = 1.0):
    """Dim vs bright objects (2x photons, log-normal spread) in 4 images of different gain and
    offset; labels from the first two images."""
    from svetlana.core.synthetic import hard as sc
    from svetlana.core.synthetic.easy import Scene

    rng = np.random.default_rng([seed, 61])
    shape, n = sc._scaled((512, 512), 110, scale)
    cams = (
        sc._Camera(gain=0.7, offset=100.0),
        sc._Camera(gain=1.3, offset=400.0),
        sc._Camera(gain=2.5, offset=900.0),
        sc._Camera(gain=4.0, offset=1800.0),
    )
    images = []
    for cam in cams:
        cls_all = sc._balanced(rng, n, (0.5, 0.5))
        bright = sc._brightness(rng, n, 80.0, spread=0.2) * np.where(cls_all == 1, 2.0, 1.0)
        ids_all = sc._ids(rng, n)
        labels = np.zeros(shape, np.int32)
        photons = np.full(shape, rng.uniform(20, 40), np.float32)
        k = -1
        for k, obj in enumerate(sc._objects(rng, shape, rng.uniform(7, 12, n))):
            inside = sc._ball(obj)
            sc._paint(labels, photons, obj, inside, ids_all[k], bright[k])
        ids, cls = ids_all[: k + 1], cls_all[: k + 1]
        images.append(
            Scene(sc._image(rng, photons, cam)[np.newaxis], labels, sc._finish(labels, ids, cls),
                  ("dim", "bright"))
        )  # fmt: skip
    return sc.SceneSet(
        "brightness_gain", tuple(images), ("dim", "bright"), 100, (0, 1),
        "2D, 4 images of different gain/offset: dim vs 2x bright; labels from images 1-2",
    )  # fmt: skip


def forest(scene_names: list[str], seeds: list[int]) -> list[dict]:
    from sklearn.ensemble import RandomForestClassifier

    from svetlana.core.objects.measurements import measure_objects
    from svetlana.core.synthetic.hard import SCENES

    makers = dict(SCENES, brightness_gain=brightness_gain)
    rows = []
    for name in scene_names:
        for seed in seeds:
            ss = makers[name](seed)
            feats, truth, img_of = [], [], []
            t0 = time.process_time()
            for k, sc in enumerate(ss.images):
                spacing = getattr(sc, "spacing", None)
                m = measure_objects(sc.image, sc.labels, spacing=spacing)
                keep = np.array([int(i) in sc.classes for i in m.ids])
                feats.append(m.values[keep])
                truth += [sc.classes[int(i)] for i in m.ids[keep]]
                img_of += [k] * int(keep.sum())
            names, units = m.names, m.units
            measure_s = time.process_time() - t0
            x = np.concatenate(feats)
            y = np.asarray(truth)
            img_of = np.asarray(img_of)
            rng = np.random.default_rng(seed)
            pool = np.flatnonzero(np.isin(img_of, ss.label_images))
            lab = rng.choice(pool, size=min(ss.n_labels, pool.size), replace=False)
            test = np.setdiff1d(np.arange(y.size), lab)
            raw = np.array([u == "intensity" for u in units])
            norm = np.array(["norm_" in n for n in names])
            shape = np.array([not n.startswith("ch") for n in names])
            stats = ("mean", "std", "min", "max", "q05", "q25", "median", "q75", "q95")
            own_raw = np.array([n.split("_", 1)[-1] in stats and n.startswith("ch") for n in names])
            own_norm = np.array([n.split("_norm_", 1)[-1] in stats and "_norm_" in n
                                 and "ring" not in n for n in names])  # fmt: skip
            sets = {
                "all": np.ones(len(names), bool), "robust": ~raw, "raw": ~norm,
                "shape+raw": shape | own_raw, "shape+norm": shape | own_norm,
            }  # fmt: skip
            row = {
                "scene": name,
                "seed": seed,
                "objects": int(y.size),
                "measure_cpu_s": round(measure_s, 2),
            }
            for key, cols in sets.items():
                clf = RandomForestClassifier(300, random_state=seed, n_jobs=1)
                clf.fit(x[lab][:, cols], y[lab])
                pred = clf.predict(x[test][:, cols])
                row[f"errors_{key}"] = int((pred != y[test]).sum())
                row["n_test"] = int(test.size)
            rows.append(row)
            print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--forest", action="store_true")
    ap.add_argument("--seeds", default="2,3,4")
    ap.add_argument(
        "--scenes",
        default="brightness_gain,size_gain,marker_uneven,texture2d,spot_position,shape_lobed",
    )
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    out = {}
    if a.speed or not a.forest:
        out["speed"] = speed()
    if a.forest:
        out["forest"] = forest(a.scenes.split(","), [int(s) for s in a.seeds.split(",")])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

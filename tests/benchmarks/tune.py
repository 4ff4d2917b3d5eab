"""Tune the CNN recipe in-process: the same patches, labels and scoring as `classifiers`, no CLI.

python -m tests.benchmarks.tune --scenes texture2d --seeds 0,1 --arch small --set epochs=40

Patches are made exactly as `svetlana train`/`predict` make them (per-image percentile
normalisation, auto patch size, object-mask channel), cached per scene and seed in
``--cache`` (default /tmp/svetlana-tune), so each trial costs only the training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from svetlana.core.synthetic.hard import SCENES
from tests.benchmarks.classifiers import pick_labels


def scene_patches(name: str, seed: int, cache: Path, n_labels: int | None = None) -> dict:
    """All objects' patches, their classes, and which were labelled (as the harness picks)."""
    path = cache / f"{name}-{seed}-{n_labels}.npz"
    if path.exists():
        with np.load(path) as z:
            return dict(z)
    from svetlana.core.objects.patches import (
        apply_normalisation,
        auto_patch_size,
        extract_patches,
        fit_normalisation,
    )
    from svetlana.core.objects.table import compute_objects

    scene = SCENES[name](seed)
    labelled = set(
        pick_labels(scene, n_labels or scene.n_labels, np.random.default_rng([seed, 1000]))
    )
    tables = [compute_objects(im.labels) for im in scene.images]
    size = max(auto_patch_size(t, im.spacing) for t, im in zip(tables, scene.images, strict=True))
    xs, ys, lab = [], [], []
    for i, (im, table) in enumerate(zip(scene.images, tables, strict=True)):
        norm = apply_normalisation(im.image, fit_normalisation(im.image))
        ids = np.array(sorted(im.classes), dtype=np.int64)
        xs.append(extract_patches(norm, im.labels, table, ids, size, im.spacing))
        ys += [im.classes[int(o)] for o in ids]
        lab += [(i, int(o)) in labelled for o in ids]
    out = {"x": np.concatenate(xs), "y": np.asarray(ys), "labelled": np.asarray(lab)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def trial(data: dict, n_classes: int, settings: dict) -> dict:
    import torch

    from svetlana.core.ml.training import TrainingConfig, train

    config = TrainingConfig.from_dict({**TrainingConfig().to_dict(), **settings})
    lab = data["labelled"]
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(data["x"][lab], data["y"][lab], n_classes, config)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    with torch.inference_mode():
        logits = result.model(torch.from_numpy(data["x"][~lab]))
    pred = logits.argmax(1).numpy()
    truth = data["y"][~lab]
    recalls = [float(np.mean(pred[truth == c] == c)) for c in np.unique(truth)]
    return {
        "errors": int((pred != truth).sum()),
        "n": int(len(truth)),
        "balanced_accuracy": float(np.mean(recalls)),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "epochs_run": len(result.history),
        "val_accuracy": result.metrics["accuracy"],
    }


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.tune", description=__doc__)
    p.add_argument("--scenes", default="texture2d")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--arch", default="small")
    p.add_argument("--set", action="append", default=[], help="TrainingConfig field=value")
    p.add_argument("--cache", type=Path, default=Path("/tmp/svetlana-tune"))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    settings = {"arch": a.arch, "threads": a.threads}
    for item in a.set:
        key, _, val = item.partition("=")
        settings[key] = _value(val)
    for name in a.scenes.split(","):
        for seed in [int(s) for s in a.seeds.split(",")]:
            data = scene_patches(name, seed, a.cache)
            n_classes = int(data["y"].max()) + 1
            r = trial(data, n_classes, settings)
            print(
                f"{name} seed {seed} {settings}: {r['errors']}/{r['n']} errors, "
                f"bal.acc {r['balanced_accuracy']:.3f}, {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} CPU s), "
                f"{r['epochs_run']} epochs, val acc {r['val_accuracy']:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Labelling with suggestions vs random order; flipped labels found; live refit speed.

Run (not in the default test run):
    python -m tests.benchmarks.bench_hitl                 # everything (~minutes on a busy 2-core CPU)
    python -m tests.benchmarks.bench_hitl --only rare --seeds 3,4,5
Scenes come from core/synthetic/hard.py (Poisson noise, brightness spread). The labelling loop uses
exactly what the app uses: core.fast_model.fit_fast (the forest refitted on every label) and
core.suggest.suggest; the score is the balanced accuracy of that forest on the objects not
labelled yet, judged against the truth. Seeds 0-2 were used while tuning the rule; report on
others (3-5 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

TARGET = 0.95
ROUND = 10
MAX_LABELS = 300


def scene_table(name: str, seed: int):
    """(LabelTable without labels, true class per row) of one benchmark scene."""
    from svetlana.core.annotations.label_table import LabelTable
    from svetlana.core.objects.measurements import measure_objects
    from svetlana.core.synthetic import hard as scenes

    if name == "rare":  # 700 objects, 5 % of the rare class
        ss = scenes.rare_class(seed, scale=1.75)
    elif name == "spot":  # balanced and easy: a spot at the centre or at the rim (700 objects)
        ss = scenes.spot_position(seed, scale=700 / 300)
    else:  # balanced and harder: striped vs dotted textures, equal mean (~700 objects)
        ss = scenes.texture2d(seed, scale=700 / 345)
    sc = ss.images[0]
    m = measure_objects(sc.image.astype(np.float32), sc.labels)
    truth = np.array([sc.classes[int(i)] for i in m.ids], np.int64)
    n = len(truth)
    table = LabelTable(
        ("scene",), np.zeros(n, np.int64), np.asarray(m.ids, np.int64), tuple(m.names),
        np.asarray(m.values, np.float32), np.full(n, -1, np.int64), tuple(ss.class_names),
    )  # fmt: skip
    return table, truth


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def start_labels(truth: np.ndarray, seed: int, rare: bool) -> np.ndarray:
    """10 random labels; on the rare scene 2 of them rare (the issue's start)."""
    rng = np.random.default_rng([seed, 99])
    if rare:
        r = rng.choice(np.flatnonzero(truth == 1), 2, replace=False)
        c = rng.choice(np.flatnonzero(truth == 0), 8, replace=False)
        return np.r_[r, c]
    return np.r_[[rng.choice(np.flatnonzero(truth == k)) for k in (0, 1)],
                 rng.choice(np.flatnonzero(truth >= 0), 8, replace=False)]  # fmt: skip


def labels_needed(table, truth, start, strategy: str, seed: int) -> tuple[int | None, list]:
    """Labels given when the forest first reaches TARGET on the unlabelled objects."""
    from svetlana.core.ml.fast_model import fit_fast
    from svetlana.core.usecases.suggest import suggest

    labels = np.full(len(truth), -1, np.int64)
    labels[np.unique(start)] = truth[np.unique(start)]
    curve = []
    while True:
        t = table.with_labels(labels)
        fast = fit_fast(t, seed=seed)
        rest = labels < 0
        score = balanced_accuracy(truth[rest], fast.predicted[rest]) if fast else 0.0
        n = int((labels >= 0).sum())
        curve.append((n, round(score, 4)))
        if score >= TARGET:
            return n, curve
        if n >= MAX_LABELS or not rest.any():
            return None, curve
        if strategy == "suggest":
            rows = suggest(t, ROUND, seed=seed, fast=fast).rows
        else:
            rows = suggest(t, ROUND, seed=seed, fast=None).rows  # the random order
        labels[rows] = truth[rows]


def bench_labelling(name: str, seeds: list[int]) -> list[dict]:
    out = []
    for seed in seeds:
        table, truth = scene_table(name, seed)
        start = start_labels(truth, seed, name == "rare")
        row = {"scene": name, "seed": seed, "objects": len(truth), "rare": int((truth == 1).sum())}
        for strategy in ("suggest", "random"):
            t0 = time.perf_counter()
            n, curve = labels_needed(table, truth, start, strategy, seed)
            row[strategy] = n
            row[f"{strategy}_curve"] = curve
            row[f"{strategy}_s"] = round(time.perf_counter() - t0, 1)
        print(
            f"{name} seed {seed}: {len(truth)} objects, labels to {TARGET:.0%} balanced accuracy:"
            f" suggest {row['suggest'] or f'>{MAX_LABELS}'}, random {row['random'] or f'>{MAX_LABELS}'}",
            flush=True,
        )
        out.append(row)
    return out


def bench_flipped(seeds: list[int], n_labels: int = 100, n_flip: int = 12) -> list[dict]:
    """12 of 100 random labels flipped: how many of the top 12 suspects are flipped ones."""
    from svetlana.core.usecases.label_check import check_labels

    out = []
    for seed in seeds:
        for name in ("spot", "rare"):
            table, truth = scene_table(name, seed)
            rng = np.random.default_rng([seed, 7])
            if name == "rare":  # keep a few rare labels in the 100
                idx = np.r_[rng.choice(np.flatnonzero(truth == 1), 10, replace=False),
                            rng.choice(np.flatnonzero(truth == 0), n_labels - 10, replace=False)]  # fmt: skip
            else:
                idx = rng.choice(len(truth), n_labels, replace=False)
            labels = np.full(len(truth), -1, np.int64)
            labels[idx] = truth[idx]
            flipped = rng.choice(idx, n_flip, replace=False)
            labels[flipped] = 1 - labels[flipped]
            for rule, only in (("app", False), ("cleanlab-only", True)):
                t0 = time.perf_counter()
                check = check_labels(table.with_labels(labels), seed=seed, confident_only=only)
                secs = time.perf_counter() - t0
                top = [s.row for s in check.suspects[:n_flip]]
                hits = len(set(top) & set(flipped.tolist()))
                listed = len(check.suspects)
                found = len({s.row for s in check.suspects} & set(flipped.tolist()))
                print(
                    f"flipped {name} seed {seed} ({rule}): {hits} of the top {n_flip} suspects "
                    f"are flipped; {listed} listed, {found} of {n_flip} flipped among them; "
                    f"{secs:.1f} s",
                    flush=True,
                )
                out.append({"scene": name, "seed": seed, "rule": rule, "top_hits": hits,
                            "listed": listed, "found": found, "seconds": round(secs, 2)})  # fmt: skip
    return out


def bench_refit(n_objects: int = 16384, n_labels: int = 300, repeats: int = 5) -> dict:
    """The live refit: fast forest on 300 labels, predictions for 16k objects."""
    from svetlana.core.ml.fast_model import LIVE_TREES, fit_fast

    table, truth = scene_table("spot", 3)
    reps = int(np.ceil(n_objects / len(truth)))
    rng = np.random.default_rng(0)
    values = np.tile(table.values, (reps, 1))[:n_objects]
    values = values * rng.normal(1, 0.02, values.shape).astype(np.float32)
    tr = np.tile(truth, reps)[:n_objects]
    labels = np.full(n_objects, -1, np.int64)
    idx = rng.choice(n_objects, n_labels, replace=False)
    labels[idx] = tr[idx]
    from svetlana.core.annotations.label_table import from_arrays

    t = from_arrays(values, labels, table.class_names, table.feature_names)
    fit_fast(t, n_trees=LIVE_TREES)  # imports, thread pool
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit_fast(t, n_trees=LIVE_TREES)
        times.append(time.perf_counter() - t0)
    res = {"objects": n_objects, "labels": n_labels, "trees": LIVE_TREES,
           "median_s": round(float(np.median(times)), 3), "max_s": round(max(times), 3),
           "load": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}  # fmt: skip
    print(f"live refit: {res}", flush=True)
    return res


def bench_gui_keys(n_labels: int = 300, presses: int = 30, pace: float = 0.2) -> dict:
    """Key -> next object shown while live refits run (4096x4096, 16,384 objects), a key every
    ``pace`` seconds (0.2: fast labelling, refits wait for a pause; 0.6: refits run meanwhile)."""
    import tempfile
    from pathlib import Path

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from svetlana.core.usecases.setup import create_project
    from svetlana.gui.main_window import MainWindow
    from tests.benchmarks.bench_gui import make_data

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ip, mp = make_data(tmp)
        project = create_project(tmp / "b.svetlana", [(ip, mp, "big")], ["a", "b"])
        win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
        win.resize(1400, 900)
        win.show()
        win.set_project(project)
        tab = win.annotation_tab
        ids = project.load("big").table.ids
        rng = np.random.default_rng(0)
        pick = rng.choice(ids, n_labels, replace=False)
        win.session.label([int(i) for i in pick[::2]], "a")
        win.session.label([int(i) for i in pick[1::2]], "b")
        t0 = time.perf_counter()
        while tab.live.result is None or tab.live.result.fast is None or tab.live.running:
            app.processEvents()
            time.sleep(0.01)
        first = time.perf_counter() - t0
        refits, times, during = [], [], []
        last = tab.live.result
        for i in range(presses):
            before = tab.current
            running = tab.live.running
            t = time.perf_counter()
            QTest.keyClick(win, "1" if i % 2 else "2")
            # One turn of the event loop: the overlay's visible tiles first (image_view), then
            # the paint of the next object (one paint, as the window does).
            app.processEvents()
            times.append(time.perf_counter() - t)
            win.view.flush()  # the rest of the overlay, off the clock (the user's next turns)
            during.append(running)
            assert tab.current != before
            end = time.perf_counter() + pace  # the user's pace
            while time.perf_counter() < end:
                app.processEvents()
                time.sleep(0.005)
            if tab.live.result is not last and tab.live.result.fast is not None:
                last = tab.live.result
                refits.append(last.fast.seconds)
        ms = np.array(times) * 1000
        busy = ms[np.array(during)] if any(during) else np.zeros(0)
        res = {
            "objects": len(ids), "labels": n_labels, "first_result_s": round(first, 1),
            "refit_median_s": round(float(np.median(refits)), 3) if refits else None,
            "refits": len(refits), "key_median_ms": round(float(np.median(ms)), 1),
            "key_max_ms": round(float(ms.max()), 1),
            "key_while_refit_median_ms": round(float(np.median(busy)), 1) if len(busy) else None,
            "key_while_refit_max_ms": round(float(busy.max()), 1) if len(busy) else None,
            "keys_while_refit": int(len(busy)), "pace_s": pace,
            "load": round(os.getloadavg()[0], 1),
        }  # fmt: skip
        tab.shutdown()
        win.close()
    print(f"GUI keys during live refits: {res}", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="3,4,5")
    p.add_argument("--only", default="rare,balanced,spot,flipped,refit,gui")
    p.add_argument("--json")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    only = a.only.split(",")
    res: dict = {}
    if "rare" in only:
        res["rare"] = bench_labelling("rare", seeds)
    if "balanced" in only:
        res["balanced"] = bench_labelling("balanced", seeds)
    if "spot" in only:
        res["spot"] = bench_labelling("spot", seeds)
    if "flipped" in only:
        res["flipped"] = bench_flipped(seeds)
    if "refit" in only:
        res["refit"] = bench_refit()
    if "gui" in only:
        res["gui"] = [bench_gui_keys(pace=0.2), bench_gui_keys(pace=0.6)]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

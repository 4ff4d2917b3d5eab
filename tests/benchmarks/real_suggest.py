"""`suggest` vs random order on real, people-labelled data, round by round.

python -m tests.benchmarks.real_suggest [--sets mitocheck,consep] [--part report] [--seeds 0,1]
    [--start 32] [--step 32] [--rounds 9]

One project per set part (the objects of tests.benchmarks.real's part, measured by the app):
both arms start from the same ``--start`` labels in the app's random order; then each round adds
``--step`` labels, either the next ones of the random order or the rows ``core.usecases.suggest``
picks with the fast forest (``core.ml.fast_model.fit_fast``) fitted on the labels so far, as the
Annotate tab's *Suggest* and ``svetlana suggest`` do. After each round the default forest
(``fit_forest``) is fitted on the labels and judged on the part's unlabelled objects: balanced
accuracy, mean over seeds.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from tests.benchmarks.real import app_measurements, load_set, scores


def _score(table, truth, seed) -> float:
    from svetlana.core.ml.forest import fit_forest

    rows = table.labelled
    model = fit_forest(
        table.values[rows], table.labels[rows], table.class_names, table.feature_names, seed=seed
    )
    rest = table.unlabelled
    return scores(truth[rest], model.predict_proba(table.values[rest]).argmax(1))[1]


def simulate(set_name: str, part: str, seeds, start: int, step: int, rounds: int) -> dict:
    from svetlana.core.annotations.label_table import LabelTable
    from svetlana.core.ml.fast_model import fit_fast
    from svetlana.core.usecases.suggest import random_rows, suggest

    s = load_set(set_name)
    names, features = app_measurements(s)
    keep = np.flatnonzero(s.part == part)
    images = tuple(sorted({s.keys[i][0] for i in keep}))
    image_index = np.array([images.index(s.keys[i][0]) for i in keep])
    ids = np.array([s.keys[i][1] for i in keep], np.int64)
    order = np.lexsort((ids, image_index))
    keep, image_index, ids = keep[order], image_index[order], ids[order]
    truth = s.y[keep]

    def table(labels):
        return LabelTable(images, image_index, ids, names, features[keep], labels, s.class_names)

    curves = {"random": [], "suggest": []}
    for seed in seeds:
        blank = np.full(len(keep), -1, np.int64)
        order = random_rows(table(blank), seed)
        arms = {}
        for arm in curves:
            lab = blank.copy()
            lab[order[:start]] = truth[order[:start]]
            arms[arm] = lab
        curve = {a: [] for a in curves}
        for r in range(rounds + 1):
            for arm, lab in arms.items():
                t = table(lab)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    curve[arm].append(_score(t, truth, seed))
                if r == rounds:
                    continue
                if arm == "random":
                    nxt = [i for i in order if lab[i] < 0][:step]
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fast = fit_fast(t, seed=seed)
                    nxt = suggest(t, step, seed=seed, fast=fast).rows
                lab[nxt] = truth[nxt]
        for a in curves:
            curves[a].append(curve[a])
    return {a: np.mean(np.array(c), 0) for a, c in curves.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="mitocheck,consep")
    p.add_argument("--part", default="report", choices=("tune", "report"))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--start", type=int, default=32)
    p.add_argument("--step", type=int, default=32)
    p.add_argument("--rounds", type=int, default=9)
    a = p.parse_args(argv)
    seeds = [int(x) for x in a.seeds.split(",") if x]
    for name in [x for x in a.sets.split(",") if x]:
        c = simulate(name, a.part, seeds, a.start, a.step, a.rounds)
        labels = [a.start + a.step * r for r in range(a.rounds + 1)]
        print(f"\n## {name}, part `{a.part}`, seeds {seeds}: balanced accuracy on the unlabelled")
        print("| labels | " + " | ".join(map(str, labels)) + " |")
        print("|---" * (len(labels) + 1) + "|")
        for arm, v in c.items():
            print(f"| {arm} | " + " | ".join(f"{x:.3f}" for x in v) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which objects to label next: uncertain ones, spread over the measurements, plus random ones.

The rule (``suggest``):

1. Without a model (fewer than two classes labelled): the unbiased random order of
   core.sampling (per image, interleaved across images in proportion to their sizes).
2. With the fast forest (core.fast_model) fitted on every label, a batch of ``n`` holds
   - a share of the next objects of that random order, so that the labelled set keeps a random
     part and accuracy estimates stay honest: 20 %, more while the model is weak. Weak by its
     labels (fewer than ``COLD_LABELS_PER_CLASS`` per class: 1 - labels / (8 x classes), e.g.
     75 % at 32 labels of 16 classes) or by its own out-of-bag balanced accuracy (0.85 - that
     estimate: 35 % at 0.5, a fifth from 0.65 on). Uncertainty sampling while the model is weak picks a biased set
     and fell behind random order on real data (MitoCheck, 16 classes, at 64-96 labels;
     CoNSeP, 4 classes, at 96-128 labels, where the label rule had already ended at 32);
     tests/benchmarks/real_suggest.py;
   - the rest taken in turn from each class the model predicts, rarest first (a rare class gets
     as many picks as a common one, so it is found and its border learnt); within a class, the
     object with the best uncertainty (1 - margin: best minus second-best probability) times its
     distance to the nearest labelled or already-picked object, in standardised measurements
     weighted by the forest's importances (a k-means++-like spread, not ten look-alikes), times
     how typical it is (1 / (1 + its distance to its 10 nearest objects / the median of that):
     an isolated object, far from every label, no longer wins on its distance alone).
3. Never an object that already has a label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from svetlana.core.annotations.label_table import LabelTable
from svetlana.core.ml.fast_model import FastModel
from svetlana.core.objects.sampling import random_order

log = logging.getLogger(__name__)

RANDOM_SHARE = 0.2
COLD_LABELS_PER_CLASS = 8  # below this many labels per class the random share is larger
# ... and while the out-of-bag balanced accuracy is below WEAK_SHARE - RANDOM_SHARE (0.65); chosen
# on the tuning part of tests/benchmarks/real_suggest.py among 1 - it, 0.85 - it, 2 (0.75 - it).
WEAK_SHARE = 0.85
POOL_PER_PICK = 10  # uncertain candidates considered per pick for the spread
MIN_POOL = 200
DENSITY_NEIGHBOURS = 10  # typicality: mean distance to this many nearest objects
DENSITY_SAMPLE = 2000  # ... among at most this many objects of the table (a fixed sample)


@dataclass(frozen=True)
class Suggestion:
    """Rows of a table to label next (most useful first) and how they were chosen."""

    rows: np.ndarray  # (m,) int64 row indices
    strategy: str  # "random" (no model yet) | "suggest"
    note: str = ""


def random_rows(table: LabelTable, seed: int) -> np.ndarray:
    """All rows in the unbiased random order (core.sampling's per image, images interleaved)."""
    keys = np.empty(len(table), np.float64)
    rows_all = np.arange(len(table))
    for k, image in enumerate(table.images):
        rows = rows_all[table.image_index == k]
        if not len(rows):
            continue
        order = random_order(seed, image, table.ids[rows])  # ids in their random order
        rank = np.empty(len(rows), np.float64)
        pos = {int(i): r for r, i in enumerate(order)}
        for j, r in enumerate(rows):
            rank[j] = pos[int(table.ids[r])]
        keys[rows] = (rank + 0.5) / len(rows)
    return np.lexsort((table.image_index, keys)).astype(np.int64)


def _standardised(values: np.ndarray) -> np.ndarray:
    """Robust z-scores (median, inter-quartile range) clipped to +-5: a few outliers do not
    dominate the distances."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return v
    med = np.median(v, axis=0)
    q1, q3 = np.percentile(v, [25, 75], axis=0)
    scale = (q3 - q1) / 1.349
    std = v.std(axis=0)
    scale = np.where(scale > 1e-12, scale, np.where(std > 1e-12, std, 1.0))
    return np.clip((v - med) / scale, -5.0, 5.0)


def suggest(
    table: LabelTable,
    n: int = 10,
    *,
    seed: int = 0,
    fast: FastModel | None = None,
    random_share: float | None = None,
) -> Suggestion:
    """Up to ``n`` unlabelled rows to label next; ``fast`` = the current fast model, if any;
    ``random_share``: the random part of a batch (default: see the module's rule)."""
    unlabelled = table.labels < 0
    n = max(0, min(int(n), int(unlabelled.sum())))
    rand = random_rows(table, seed)
    rand = rand[unlabelled[rand]]
    if fast is None or n == 0:
        why = "" if n else "every object is labelled"
        if fast is None and n:
            why = "random order until objects of two classes are labelled"
        return Suggestion(rand[:n], "random", why)
    if random_share is None:
        random_share = weak_random_share(
            len(table.labelled), len(table.class_names), fast.balanced_accuracy
        )
    n_random = int(round(random_share * n))
    n_active = n - n_random
    picked = _active(table, fast, n_active) if n_active else np.zeros(0, np.int64)
    taken = set(picked.tolist())
    randoms = [int(r) for r in rand if int(r) not in taken][:n_random]
    return Suggestion(_interleave(picked, np.asarray(randoms, np.int64), n), "suggest")


def cold_random_share(n_labels: int, n_classes: int) -> float:
    """The random part of a batch: RANDOM_SHARE, more while there are few labels per class."""
    cold = 1.0 - n_labels / max(1, COLD_LABELS_PER_CLASS * n_classes)
    return float(min(1.0, max(RANDOM_SHARE, cold)))


def weak_random_share(n_labels: int, n_classes: int, estimate: float | None) -> float:
    """The random part of a batch: ``cold_random_share``, or more while the model's own
    out-of-bag balanced accuracy is low (WEAK_SHARE - that estimate: 35 % at 0.5)."""
    share = cold_random_share(n_labels, n_classes)
    if estimate is not None and np.isfinite(estimate):
        share = max(share, WEAK_SHARE - float(estimate))
    return float(min(1.0, share))


def _interleave(active: np.ndarray, randoms: np.ndarray, n: int) -> np.ndarray:
    """Random picks spread evenly through the batch (the 5th and 10th of 10, ...)."""
    m = len(active) + len(randoms)
    places = (
        {(k + 1) * m // len(randoms) - 1 for k in range(len(randoms))} if len(randoms) else set()
    )
    a, r = iter(active.tolist()), iter(randoms.tolist())
    out = [next(r) if i in places else next(a) for i in range(m)]
    return np.asarray(out, np.int64)


def _active(table: LabelTable, fast: FastModel, n: int) -> np.ndarray:
    """``n`` rows taken in turn from each predicted class (rarest first): within a class, the
    best uncertainty x distance to the nearest labelled or picked object."""
    cand = table.unlabelled
    uncertainty = 1.0 - fast.margin()[cand].astype(np.float64)
    predicted = fast.predicted[cand]
    classes, counts = np.unique(predicted, return_counts=True)
    classes = classes[np.argsort(counts, kind="stable")]
    pool_size = max(MIN_POOL, POOL_PER_PICK * n)
    pools = []
    for c in classes:
        members = np.flatnonzero(predicted == c)
        pools.append(members[np.argsort(-uncertainty[members], kind="stable")[:pool_size]])
    pool = np.concatenate(pools)
    owner = np.concatenate([np.full(len(p), k) for k, p in enumerate(pools)])
    w = _weights(fast, table.values.shape[1])
    used = w > 0  # columns the model left out (the neighbours' means, say) weigh nothing
    z = _standardised(table.values[:, used]) * w[used]
    zc = z[cand[pool]]
    typical = _typicality(zc, z)
    dmin = _min_dist(zc, z[table.labelled])
    dmin[~np.isfinite(dmin)] = np.finfo(np.float64).max / 4
    picks: list[int] = []
    while len(picks) < n:
        before = len(picks)
        for k in range(len(pools)):
            if len(picks) >= n:
                break
            free = (owner == k) & (dmin >= 0)
            if not free.any():
                continue
            scale = max(float(dmin[dmin >= 0].max()), 1e-12)
            score = np.where(free, uncertainty[pool] * (dmin / scale + 1e-9) * typical, -1.0)
            j = int(np.argmax(score))
            picks.append(int(pool[j]))
            dmin = np.minimum(dmin, np.sqrt(((zc - zc[j]) ** 2).sum(1)))
            dmin[j] = -1.0
        if len(picks) == before:
            break
    return cand[np.asarray(picks, np.int64)]


def _typicality(points: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per point, 1 / (1 + d / median d), d = its mean distance to its DENSITY_NEIGHBOURS nearest
    objects (among up to DENSITY_SAMPLE of the table): an isolated object (a debris, a badly
    segmented one) is uncertain and far from every label, yet teaches the model little."""
    if len(z) > DENSITY_SAMPLE:
        z = z[np.random.default_rng(0).choice(len(z), DENSITY_SAMPLE, replace=False)]
    k = min(DENSITY_NEIGHBOURS + 1, len(z))
    if k < 2 or not len(points):
        return np.ones(len(points))
    zz = (z**2).sum(1)
    d = np.empty(len(points))
    for s in range(0, len(points), 256):
        p = points[s : s + 256]
        sq = np.maximum((p**2).sum(1)[:, None] + zz[None, :] - 2.0 * p @ z.T, 0.0)
        near = np.sqrt(np.partition(sq, k - 1, axis=1)[:, :k])
        d[s : s + 256] = np.sort(near, axis=1)[:, 1:].mean(1)  # the nearest may be itself
    return 1.0 / (1.0 + d / max(float(np.median(d)), 1e-12))


def _weights(fast: FastModel, n_features: int) -> np.ndarray:
    """Per column: the square root of the forest's importance (0 for a column it left out)."""
    imp = np.asarray(getattr(fast.model.estimator, "feature_importances_", []), np.float64)
    columns = getattr(fast.model, "columns", None)
    if columns is not None and imp.shape == (len(columns),):
        full = np.zeros(n_features)
        full[np.asarray(columns)] = imp
        imp = full
    if imp.shape != (n_features,) or imp.sum() <= 0:
        return np.ones(n_features)
    return np.sqrt(imp / imp.sum())


def _min_dist(points: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Per point, the distance to the nearest anchor (|a|^2 + |b|^2 - 2ab, in blocks)."""
    if not len(anchors):
        return np.full(len(points), np.inf)
    out = np.full(len(points), np.inf)
    pp = (points**2).sum(1)
    for s in range(0, len(anchors), 1024):
        block = anchors[s : s + 1024]
        d = pp[:, None] + (block**2).sum(1)[None, :] - 2.0 * points @ block.T
        out = np.minimum(out, d.min(1))
    return np.sqrt(np.maximum(out, 0.0))


def suggested_objects(table: LabelTable, rows: Sequence[int]) -> list[tuple[str, int]]:
    """``(image, object id)`` of rows."""
    return [(table.image_of(r), int(table.ids[r])) for r in rows]


def suggest_project(
    project,
    n: int = 10,
    images: Sequence[str] | None = None,
    *,
    progress=None,
    cancel=None,
) -> tuple[Suggestion, list[tuple[str, int]]]:
    """The suggestion for a project's images and its ``(image, object)`` pairs."""
    from svetlana.core.annotations.label_table import project_table
    from svetlana.core.ml.fast_model import fit_fast

    table = project_table(project, images, progress=progress, cancel=cancel)
    fast = fit_fast(table, cancel=cancel)
    s = suggest(table, n, seed=project.sampling_seed, fast=fast)
    return s, suggested_objects(table, s.rows)

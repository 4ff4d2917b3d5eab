"""Real, people-labelled objects (CoNSeP H&E, MitoCheck H2B-GFP): every candidate, learning
curves, random and grouped splits, on a tuning part and a held-out report part.

python -m tests.benchmarks.real [--sets consep,mitocheck] [--part report|tune]
    [--candidates auto,forest,forest-v5,floor,cnn,hybrid,ssl,linear,vote*] [--mode quick|thorough] [--labels 100,300,1000] [--seeds 0,1]
    [--splits random,grouped] [--drop FAMILY,...] [--json out.json]

Each set is cut once into two parts that share no image (CoNSeP) or movie (MitoCheck):

* ``tune``: what every setting of the app (measurement families, forest defaults) was chosen on;
* ``report``: what the README's tables show; the tuning never saw it.

Inside a part, two splits (the data's READMEs explain why both):

* ``random``: N labels drawn in random order from the part, every other object of the part judged
  (one project: label some objects, predict the others);
* ``grouped``: N labels drawn from some images (CoNSeP: 2 of the part's 3, each image left out in
  turn) or movies (MitoCheck: 2/3 of the part's movies, 3 folds), judged on the others (a model
  travelling to the next experiment).

Candidates, through the project's own code (what a user gets):

* ``auto``: ``core.ml.choosing.choose`` as ``svetlana train`` runs it (forest vs CNN
  cross-validated in the default budget; groups = the labels' images);
* ``forest``: ``core.ml.forest.fit_forest`` on every column of ``measure_objects``, with the
  linear model averaged in (``core.ml.linear.add_linear``) and the forest for new images, as
  ``svetlana train`` fits them (``forest-v5``: without the linear model);
* ``cnn``: ``core.ml.training.train`` with the default ``small`` network on the app's patches;
* ``floor``: an ilastik-style classic: regionprops shape + per-object mean/std of a filter
  bank (Gaussian, LoG, gradient magnitude, Hessian and structure-tensor eigenvalues at
  2 scales per channel), a balanced 300-tree random forest.

Measurements and patches are cached under ``$TMPDIR/svetlana_real`` (keyed by the measurement
version). Accuracy, balanced accuracy (mean recall over the classes present in the judged
objects) and train seconds (fit on the labels; measuring is cached and not counted) are
averaged over the seeds (and grouped folds).
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
CACHE = Path(tempfile.gettempdir()) / "svetlana_real"

# The parts: no image (CoNSeP) or movie (MitoCheck) is in both. CoNSeP's 3+3 images were chosen
# so that both parts hold every class (inflammatory 356 / 316, other 103 / 84).
CONSEP_PARTS = {
    "tune": ("train_10", "train_19", "train_22"),
    "report": ("train_1", "train_8", "train_24"),
}
MITOCHECK_SPLIT_SEED = 0  # StratifiedGroupKFold(2) by movie: fold 0 = tune, fold 1 = report


@dataclass
class RealSet:
    name: str
    images: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (image CYX raw, labels)
    keys: list[tuple[str, int]]  # (image, object) of every labelled object
    y: np.ndarray  # class index per key
    class_names: tuple[str, ...]
    groups: np.ndarray  # per key: image (CoNSeP) or movie (MitoCheck)
    part: np.ndarray  # per key: "tune" / "report"
    spacing: dict = field(default_factory=dict)


def _truth(path: Path) -> list[tuple[str, int, str]]:
    with open(path, newline="") as f:
        return [(r["image"], int(r["object"]), r["class"]) for r in csv.DictReader(f)]


def load_set(name: str) -> RealSet:
    from svetlana.core.io.images import read_pair

    folder = DATA / name
    rows = _truth(folder / "truth.csv")
    classes = tuple(sorted({c for _, _, c in rows}))
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if name == "consep":
        for im in sorted({r[0] for r in rows}):
            i, m = read_pair(folder / f"{im}.tif", folder / f"{im}_mask.tif")
            images[im] = (i.data, m.labels)
        groups = np.array([im for im, _, _ in rows])
        where = {im: p for p, ims in CONSEP_PARTS.items() for im in ims}
        part = np.array([where[im] for im, _, _ in rows])
    else:
        i, m = read_pair(folder / "image.tif", folder / "mask.tif")
        images["image"] = (i.data, m.labels)
        with open(folder / "provenance.csv", newline="") as f:
            movie = {int(r["object"]): r["group"] for r in csv.DictReader(f)}
        groups = np.array([movie[o] for _, o, _ in rows])
        from sklearn.model_selection import StratifiedGroupKFold

        y = np.array([classes.index(c) for _, _, c in rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sgk = StratifiedGroupKFold(2, shuffle=True, random_state=MITOCHECK_SPLIT_SEED)
            tune_idx, _ = next(sgk.split(np.zeros(len(y)), y, groups))
        part = np.full(len(rows), "report", dtype=object)
        part[tune_idx] = "tune"
        part = part.astype(str)
    y = np.array([classes.index(c) for _, _, c in rows], np.int64)
    keys = [(im, o) for im, o, _ in rows]
    return RealSet(name, images, keys, y, classes, groups, part)


# ---- features -------------------------------------------------------------------------------


def _key(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def app_measurements(s: RealSet, every: dict | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """``measure_objects`` (the app's columns) of every labelled object, cached; ``every``
    (a dict) receives ``image -> (ids, values)`` of every object of each image."""
    from svetlana.core.objects import families as F
    from svetlana.core.objects import measurements as M
    from svetlana.core.objects import neighbours as N
    from svetlana.core.objects import stains as S

    CACHE.mkdir(parents=True, exist_ok=True)
    names: tuple[str, ...] = ()
    rows: dict[tuple[str, int], np.ndarray] = {}
    for im, (image, labels) in s.images.items():
        code = [Path(m.__file__).read_bytes() for m in (M, F, S, N)]  # any change: measured again
        path = (
            CACHE / f"{s.name}_{im}_app_{_key(M.VERSION, image.shape, image.dtype.str, code)}.npz"
        )
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                ids, nm, values = z["ids"], tuple(str(n) for n in z["names"]), z["values"]
        else:
            t0 = time.perf_counter()
            m = M.measure_objects(image, labels)
            ids, nm, values = m.ids, m.names, m.values
            np.savez(path, ids=ids, names=np.array(nm), values=values)
            print(f"  measured {s.name}/{im}: {len(ids)} objects, {len(nm)} columns, "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
        if names and nm != names:
            raise SystemExit("images of one set give different measurement columns")
        names = nm
        if every is not None:
            every[im] = (np.asarray(ids, np.int64), np.asarray(values, np.float32))
        for i, o in enumerate(ids):
            rows[(im, int(o))] = values[i]
    return names, np.stack([rows[k] for k in s.keys]).astype(np.float32)


def floor_features(s: RealSet) -> np.ndarray:
    """The ilastik-style floor's features: shape + filter-bank mean/std per object, cached."""
    from scipy import ndimage as ndi
    from skimage.feature import (
        hessian_matrix,
        hessian_matrix_eigvals,
        structure_tensor,
        structure_tensor_eigenvalues,
    )
    from skimage.measure import regionprops_table

    CACHE.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, int], np.ndarray] = {}
    for im, (image, labels) in s.images.items():
        path = CACHE / f"{s.name}_{im}_floor_{_key(2, image.shape)}.npz"
        if path.exists():
            with np.load(path) as z:
                ids, values = z["ids"], z["values"]
        else:
            props = regionprops_table(
                labels,
                properties=("label", "area", "perimeter", "eccentricity", "solidity", "extent",
                            "major_axis_length", "minor_axis_length", "euler_number"),
            )  # fmt: skip
            ids = props.pop("label")
            cols = [np.asarray(v, np.float64) for v in props.values()]
            index = ids
            for c in range(image.shape[0]):
                x = image[c].astype(np.float32)
                maps = []
                for sg in (1.0, 3.5):
                    maps.append(ndi.gaussian_filter(x, sg))
                    maps.append(ndi.gaussian_laplace(x, sg))
                    maps.append(ndi.gaussian_gradient_magnitude(x, sg))
                    maps += list(hessian_matrix_eigvals(hessian_matrix(x, sg, order="rc",
                                                                       use_gaussian_derivatives=False)))  # fmt: skip
                    maps += list(structure_tensor_eigenvalues(structure_tensor(x, sg, order="rc")))
                for f in maps:
                    mean = ndi.mean(f, labels, index)
                    std = ndi.standard_deviation(f, labels, index)
                    cols += [np.asarray(mean), np.asarray(std)]
            values = np.stack(cols, 1).astype(np.float32)
            np.savez(path, ids=ids, values=values)
        for i, o in enumerate(ids):
            rows[(im, int(o))] = values[i]
    return np.nan_to_num(np.stack([rows[k] for k in s.keys]))


def app_patches(s: RealSet) -> np.ndarray:
    """The app's patches (per-image normalisation, auto size) of every labelled object."""
    from svetlana.core.objects.patches import (
        apply_normalisation,
        auto_patch_size,
        extract_patches,
        fit_normalisation,
    )
    from svetlana.core.objects.table import compute_objects

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{s.name}_patches_{_key(1, len(s.keys))}.npy"
    if path.exists():
        return np.load(path)
    tables = {im: compute_objects(lab) for im, (_, lab) in s.images.items()}
    size = max(auto_patch_size(t) for t in tables.values())
    out = None
    order = {k: i for i, k in enumerate(s.keys)}
    for im, (image, labels) in s.images.items():
        ids = np.array([o for i2, o in s.keys if i2 == im], np.int64)
        norm = apply_normalisation(image.astype(np.float32), fit_normalisation(image))
        p = extract_patches(norm, labels, tables[im], ids, size)
        if out is None:
            out = np.zeros((len(s.keys), *p.shape[1:]), np.float32)
        out[[order[(im, int(o))] for o in ids]] = p
    np.save(path, out)
    return out


# ---- candidates -----------------------------------------------------------------------------


@dataclass
class Context:
    s: RealSet
    names: tuple[str, ...]
    features: np.ndarray
    floor: np.ndarray | None = None
    patches: np.ndarray | None = None
    keep: np.ndarray | None = None  # measurement columns used (family ablation)
    last_auto: str | None = None  # the candidate auto chose last
    params: dict = field(default_factory=dict)  # the "sk" candidate's settings
    mode: str = "quick"  # auto's mode (--mode)
    every: dict = field(default_factory=dict)  # image -> (ids, values) of every object
    memo: dict = field(default_factory=dict)  # a trial's forest / linear probabilities
    last_model: object = None  # the forest _forest fitted last
    last_weight: str | None = None  # the weight of its linear model


def _forest(ctx: Context, tr, te, seed):
    """The app's forest: the raw forest for the labels' images and, when the labels span
    several images (and their class mixes or a cross-validation grouped by image allow it), a
    forest on per-image scaled columns for the others (``core.ml.forest.add_new_image_forest``), each image's
    reference statistics from its first ``REFERENCE_OBJECTS`` objects in the app's random order
    (seeded by the trial's seed, as a project's sampling seed)."""
    from svetlana.core.ml.forest import fit_forest

    x = ctx.features if ctx.keep is None else ctx.features[:, ctx.keep]
    names = ctx.names if ctx.keep is None else tuple(np.array(ctx.names)[ctx.keep])
    m = fit_forest(x[tr], ctx.s.y[tr], ctx.s.class_names, names, seed=seed)
    if ctx.params.get("linear", True):  # the linear model averaged in, as run_training does
        from svetlana.core.ml.linear import add_linear

        m = add_linear(m, x[tr], ctx.s.y[tr], seed=seed)
        ctx.last_weight = f"w{m.linear_weight:g}"
    ctx.last_model = m
    return _predict_images(ctx, m, x, tr, te, seed)


def _with_params(fn: Callable, **override) -> Callable:
    """``fn`` run with ``override`` on top of ``--params``."""

    def run(ctx: Context, tr, te, seed):
        saved = ctx.params
        ctx.params = {**saved, **override}
        try:
            return fn(ctx, tr, te, seed)
        finally:
            ctx.params = saved

    return run


def _predict_images(ctx: Context, m, x, tr, te, seed):
    """``m`` with the forest for new images added as ``svetlana train`` adds it (unless
    ``new_images`` is false), then every judged image predicted as ``predict`` does."""
    from svetlana.core.ml.forest import add_new_image_forest
    from svetlana.core.objects.image_stats import REFERENCE_OBJECTS

    images = np.array([im for im, _ in ctx.s.keys])
    if ctx.params.get("new_images", True):
        n_ref = int(ctx.params.get("reference_objects", REFERENCE_OBJECTS))
        stats = {im: _image_stats(ctx, im, seed, n_ref) for im in np.unique(images[tr])}
        m = add_new_image_forest(
            m, x[tr], ctx.s.y[tr], images[tr], stats, seed=seed, reference_seed=seed,
            reference_objects=n_ref, always=ctx.params.get("new_images") == "always",
        )  # fmt: skip
        ctx.last_auto = "scaled" if m.new_images is not None else "raw"
        ctx.last_model = m
    out = np.zeros((len(te), len(ctx.s.class_names)), np.float32)
    if m.linear is not None and ctx.params.get("linear_images", "labels") == "labels":
        # as train records it: the linear part serves the labels' images (here known by name)
        m = replace(m, linear_identities=tuple(sorted(set(images[tr].tolist()))))
    for im in np.unique(images[te]):  # each judged image as predict sees it: all its objects
        rows = images[te] == im
        if not m.uses_scaled(str(im)):
            out[rows] = m.for_image(str(im)).predict_proba(x[te][rows])
            continue
        ids, values = ctx.every[str(im)]
        values = values if ctx.keep is None else values[:, ctx.keep]
        probs = m.predict_image(values, str(im), ids)
        pos = {int(o): i for i, o in enumerate(ids)}
        out[rows] = probs[[pos[o] for _, o in np.array(ctx.s.keys, dtype=object)[te][rows]]]
    return out  # probabilities: scored and put in the reliability table


def _image_stats(ctx: Context, im: str, seed: int, n: int):
    from svetlana.core.objects.image_stats import reference_ids, reference_stats

    ids, values = ctx.every[str(im)]
    values = values if ctx.keep is None else values[:, ctx.keep]
    return reference_stats(values[np.isin(ids, reference_ids(seed, str(im), ids, n))])


def _sk(ctx: Context, tr, te, seed):
    """A scikit-learn ensemble on the app's measurements with ``--params`` (tuning only)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    params = dict(ctx.params)
    kind = params.pop("kind", "rf")
    x = ctx.features if ctx.keep is None else ctx.features[:, ctx.keep]
    x = np.nan_to_num(x)
    how = params.pop("norm_image", False)
    if how:  # each column robust-scaled per image (an experiment); "both": added to the raw
        raw = x
        x = x.astype(np.float64).copy()
        images = np.array([im for im, _ in ctx.s.keys])
        for im in np.unique(images):
            rows = images == im
            med = np.median(x[rows], 0)
            iqr = np.subtract(*np.percentile(x[rows], [75, 25], 0))
            x[rows] = (x[rows] - med) / np.where(iqr > 1e-9, iqr, 1.0)
        if how == "both":
            x = np.concatenate([raw, x], 1)
    if kind == "hgb":
        est = HistGradientBoostingClassifier(random_state=seed, **params)
    else:
        cls = ExtraTreesClassifier if kind == "et" else RandomForestClassifier
        params.setdefault("n_estimators", 100)
        params.setdefault("class_weight", "balanced")
        est = cls(random_state=seed, n_jobs=2, **params)
    est.fit(x[tr], ctx.s.y[tr])
    return est.predict(x[te])


def _linear_fit(x: np.ndarray, y: np.ndarray, n_classes: int, params: dict, seed: int):
    """A standardized L2 logistic regression (balanced class weights) on ``x``: each column
    clipped to its labelled objects' 1st-99th percentiles, then centred and scaled by their
    mean and standard deviation (``log``: a signed log first). Returns ``proba(x) -> (N, K)``."""
    from sklearn.linear_model import LogisticRegression

    log = bool(params.get("log", False))

    def prep(v):
        v = np.nan_to_num(np.asarray(v, np.float64), posinf=0.0, neginf=0.0)
        return np.sign(v) * np.log1p(np.abs(v)) if log else v

    xt = prep(x)
    lo, hi = np.percentile(xt, [1, 99], 0)
    xc = np.clip(xt, lo, hi)
    mu, sd = xc.mean(0), xc.std(0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # BLAS threads on 2 busy cores: 10x the CPU for the same fit
        lr = LogisticRegression(
            C=float(params.get("C", 0.1)), class_weight="balanced", max_iter=300, random_state=seed
        ).fit((xc - mu) / sd, y)

    def proba(v):
        out = np.zeros((len(v), n_classes), np.float32)
        with threadpool_limits(1):
            out[:, lr.classes_] = lr.predict_proba((np.clip(prep(v), lo, hi) - mu) / sd)
        return out

    return proba


def _linear(ctx: Context, tr, te, seed):
    """``_linear_fit`` on the app's measurements (``--params '{"C": 0.1, "log": false}'``)."""
    key = ("linear", seed, hashlib.sha1(tr.tobytes() + te.tobytes()).hexdigest())
    if key not in ctx.memo:
        x = ctx.features if ctx.keep is None else ctx.features[:, ctx.keep]
        proba = _linear_fit(x[tr], ctx.s.y[tr], len(ctx.s.class_names), ctx.params, seed)
        ctx.memo[key] = proba(x[te])
    return ctx.memo[key]


def _linear_oof(ctx: Context, tr, seed, folds: int = 5) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    x = ctx.features if ctx.keep is None else ctx.features[:, ctx.keep]
    y = ctx.s.y[tr]
    out = np.zeros((len(tr), len(ctx.s.class_names)), np.float32)
    k = max(2, min(folds, int(np.bincount(y).max())))
    for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(tr, y):
        out[b] = _linear_fit(x[tr][a], y[a], out.shape[1], ctx.params, seed)(x[tr][b])
    return out


def _forest_memo(ctx: Context, tr, te, seed):
    """``_forest``'s probabilities and model, once per trial (the vote's weights share it)."""
    key = ("forest", seed, hashlib.sha1(tr.tobytes() + te.tobytes()).hexdigest())
    if key not in ctx.memo:
        f = _with_params(_forest, linear=False)(ctx, tr, te, seed)
        ctx.memo[key] = (f, ctx.last_model, ctx.last_auto)
    f, m, ctx.last_auto = ctx.memo[key]
    return f, m


def _vote(ctx: Context, tr, te, seed, w=None):
    """The app's forest (as ``forest``) and ``_linear`` averaged on the images of the labels
    (other images: the forest alone), the linear model weighted ``w`` (``--params '{"w": 0.5}'``;
    ``"oof"``: the weight of 0, 0.25 ... 1 with the best balanced accuracy of the forest's
    out-of-bag and the linear model's out-of-fold probabilities of the labels)."""
    f, m = _forest_memo(ctx, tr, te, seed)
    lin = _linear(ctx, tr, te, seed)
    w = ctx.params.get("w", 0.5) if w is None else w
    if w == "oof":
        est = m.estimator
        oob = np.zeros_like(lin[:0], shape=(len(tr), lin.shape[1]))
        d = getattr(est, "oob_decision_function_", None)
        if d is None:
            w = 0.0
        else:
            oob[:, est.classes_] = np.nan_to_num(d)
            lo = _linear_oof(ctx, tr, seed)
            y = ctx.s.y[tr]
            best = None
            for cand in (0.0, 0.25, 0.5, 0.75, 1.0):
                b = scores(y, ((1 - cand) * oob + cand * lo).argmax(1))[1]
                if best is None or b > best[0] + 1e-9:
                    best = (b, cand)
            w = best[1]
        ctx.last_auto = f"{ctx.last_auto}+w{w}"
    w = float(w)
    images = np.array([im for im, _ in ctx.s.keys])
    seen = np.isin(images[te], np.unique(images[tr]))
    out = f.copy()
    out[seen] = (1 - w) * f[seen] + w * lin[seen]
    return out


def _vote_new(ctx: Context, tr, te, seed):
    """Tuning: on images without labels, the forest for new images averaged with a linear
    model fitted on the same per-image scaled columns (weight ``w``, default 0.25); the images
    of the labels as ``forest``."""
    from svetlana.core.objects.image_stats import REFERENCE_OBJECTS, scale, scale_by_image

    f = _forest(ctx, tr, te, seed)
    m = ctx.last_model
    images = np.array([im for im, _ in ctx.s.keys])
    new = [im for im in np.unique(images[te]) if m.uses_scaled(str(im))]
    if not new:
        return f
    x = ctx.features if ctx.keep is None else ctx.features[:, ctx.keep]
    stats = {im: _image_stats(ctx, im, seed, REFERENCE_OBJECTS) for im in np.unique(images)}
    xs = scale_by_image(np.nan_to_num(x), images, stats)
    cols = m.columns if m.columns is not None else slice(None)
    lin = _linear_fit(xs[tr][:, cols], ctx.s.y[tr], len(ctx.s.class_names), ctx.params, seed)
    w = float(ctx.params.get("w", 0.25))
    out = f.copy()
    for im in new:
        rows = images[te] == im
        c, sp = stats[im]
        xi = scale(np.nan_to_num(x[te][rows]), c, sp)
        out[rows] = (1 - w) * f[rows] + w * lin(xi[:, cols])
    return out


def _floor(ctx: Context, tr, te, seed):
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(300, class_weight="balanced", random_state=seed, n_jobs=2)
    rf.fit(ctx.floor[tr], ctx.s.y[tr])
    return rf.predict(ctx.floor[te])


def _cnn(ctx: Context, tr, te, seed):
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import TrainingConfig, train

    config = TrainingConfig(seed=seed, val_fraction=0.0)
    r = train(ctx.patches[tr], ctx.s.y[tr], len(ctx.s.class_names), config)
    return predict_probabilities(r.model, ctx.patches[te], device=r.device).argmax(1)


def _hybrid(ctx: Context, tr, te, seed):
    """The forest on measurements + the CNN's out-of-fold probabilities (core/ml/hybrid.py),
    with the folds auto would use (grouped by image when the labels span several)."""
    from svetlana.core.ml.choosing import make_folds
    from svetlana.core.ml.hybrid import fit_hybrid_cv
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import TrainingConfig

    images = np.array([im for im, _ in ctx.s.keys])
    folds = make_folds(ctx.s.y[tr], images[tr], seed=seed)
    m = fit_hybrid_cv(
        ctx.features[tr], ctx.names, ctx.patches[tr], ctx.s.y[tr], ctx.s.class_names,
        TrainingConfig(seed=seed), folds.splits,
    )  # fmt: skip
    cnn = predict_probabilities(m.cnn, ctx.patches[te])
    return m.predict_proba(ctx.features[te], cnn).argmax(1)


def _ssl(ctx: Context, tr, te, seed):
    """The forest on measurements + the embedding of a network pretrained without labels
    (SimCLR-like, ``core.ml.hybrid.pretrain``) on every object of the part, for ``seconds``
    (``--params '{"seconds": 60}'``). Measured, not used by the app."""
    from svetlana.core.ml.forest import fit_forest
    from svetlana.core.ml.hybrid import embed, embedding_names, pretrain

    part = np.flatnonzero(ctx.s.part == ctx.s.part[tr[0]])
    p = ctx.params
    device = str(p.get("device", "cpu"))
    key = ("ssl", ctx.s.name, str(ctx.s.part[tr[0]]), seed)  # no labels used: one per part
    if key not in ctx.memo:
        pre = pretrain(
            ctx.patches[part], seconds=float(p.get("seconds", 60)), seed=seed, device=device,
            batch_size=int(p.get("batch", 64)), max_epochs=int(p.get("epochs", 30)),
        )  # fmt: skip
        print(f"# ssl pretraining ({ctx.s.name}): {pre.epochs:.1f} epochs, {pre.steps} steps "
              f"in {pre.seconds:.1f} s on {device}", flush=True)  # fmt: skip
        emb = np.zeros((len(ctx.s.y), pre.model.fc.in_features), np.float32)
        emb[part] = embed(pre.model, ctx.patches[part], device=device)
        ctx.memo[key] = emb
    emb = ctx.memo[key]
    x = np.concatenate([ctx.features, emb], 1)
    names = ctx.names + embedding_names(emb.shape[1])
    m = fit_forest(x[tr], ctx.s.y[tr], ctx.s.class_names, names, seed=seed)
    return m.predict_proba(x[te]).argmax(1)


def _auto(ctx: Context, tr, te, seed):
    from svetlana.core.ml.choosing import choose
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import TrainingConfig

    images = np.array([im for im, _ in ctx.s.keys])
    r = choose(
        features=ctx.features[tr],
        feature_names=ctx.names,
        patches=ctx.patches[tr],
        labels=ctx.s.y[tr],
        groups=images[tr],
        class_names=ctx.s.class_names,
        config=TrainingConfig(seed=seed),
        candidates=("forest", "cnn", "hybrid") if ctx.mode == "thorough" else ("forest", "cnn"),
        mode=ctx.mode,
    )
    chosen = r.selection.get("chosen")
    if r.kind == "forest":  # with the forest for new images, as run_training adds it (the
        # linear model: choose adds it, as its folds judge the forest with it)
        import dataclasses

        m = r.model
        if not ctx.params.get("linear", True):
            m = dataclasses.replace(m, linear=None, linear_weight=0.0)
        out = _predict_images(ctx, m, ctx.features, tr, te, seed)
        ctx.last_auto = f"{chosen}+{ctx.last_auto}" if ctx.last_auto else chosen
        return out
    ctx.last_auto = chosen
    if r.kind == "hybrid":
        cnn = predict_probabilities(r.model.cnn, ctx.patches[te])
        return r.model.predict_proba(ctx.features[te], cnn)
    return predict_probabilities(r.model, ctx.patches[te], device=r.device)


CANDIDATES: dict[str, Callable] = {
    "auto": _auto,
    "forest": _forest,
    # the forest without the new-image forest (v4): the raw columns for every image
    "forest-raw": _with_params(_forest, new_images=False, linear=False),
    # the raw forest for every image with its linear model (v6 when no forest for new images
    # is kept: the linear part then serves new images too)
    "forest-raw-lin": _with_params(_forest, new_images=False, linear_images="every"),
    # the same, the linear part for the labels' images only (this version)
    "forest-raw-lin-own": _with_params(_forest, new_images=False),
    # the forest without the linear model (v5)
    "forest-v5": _with_params(_forest, linear=False),
    "vote-new": _vote_new,
    "floor": _floor,
    "cnn": _cnn,
    "hybrid": _hybrid,
    "ssl": _ssl,
    "sk": _sk,
    "linear": _linear,
    "vote": _vote,
    # the forest, once per trial, shared with the votes below (tuning runs)
    "forest-m": lambda ctx, tr, te, seed: _forest_memo(ctx, tr, te, seed)[0],
    **{
        f"vote{k}": functools.partial(_vote, w=w)
        for k, w in (("25", 0.25), ("50", 0.5), ("75", 0.75), ("oof", "oof"))
    },
}


# ---- splits and scoring ---------------------------------------------------------------------


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    acc = float(np.mean(y_true == y_pred))
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)]
    return acc, float(np.mean(recalls))


RELIABILITY_BINS = np.linspace(0.0, 1.0, 11)


def reliability(conf: np.ndarray, correct: np.ndarray) -> tuple[float, list[tuple]]:
    """Expected calibration error (10 equal-width bins of the top probability) and the table:
    (bin low, bin high, objects, mean confidence, accuracy) per non-empty bin."""
    rows, ece = [], 0.0
    which = np.clip(np.digitize(conf, RELIABILITY_BINS[1:-1]), 0, len(RELIABILITY_BINS) - 2)
    for b in range(len(RELIABILITY_BINS) - 1):
        sel = which == b
        if sel.any():
            c, a = float(conf[sel].mean()), float(correct[sel].mean())
            ece += sel.sum() / len(conf) * abs(c - a)
            rows.append((RELIABILITY_BINS[b], RELIABILITY_BINS[b + 1], int(sel.sum()), c, a))
    return float(ece), rows


def draw(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """``n`` labels in random order (the app's order), or None when the pool is too small."""
    if n >= len(pool):
        return None
    return rng.permutation(pool)[:n]


def trials(s: RealSet, part: str, split: str, n: int, seed: int):
    """(train indices, judged indices) pairs of one split, part, label count and seed."""
    idx = np.flatnonzero(s.part == part)
    rng = np.random.default_rng(1000 * seed + n)
    if split == "random":
        if n > 0.8 * len(idx):
            return []
        tr = draw(idx, n, rng)
        return [(tr, np.setdiff1d(idx, tr))]
    # grouped: labels from some images/movies, the rest judged
    out = []
    groups = s.groups[idx]
    uniq = np.unique(groups)
    if len(uniq) <= 4:  # images: leave each out in turn
        folds = [groups == g for g in uniq]
    else:  # movies: 3 folds of movies, seeded
        order = np.random.default_rng(seed).permutation(uniq)
        folds = [np.isin(groups, order[k::3]) for k in range(3)]
    for held in folds:
        tr = draw(idx[~held], n, rng)
        if tr is not None and len(np.unique(s.y[tr])) >= 2:
            out.append((tr, idx[held]))
    return out


def run(args) -> list[dict]:
    results = []
    reliabilities: list[tuple] = []
    for set_name in args.sets:
        s = load_set(set_name)
        every: dict = {}
        names, features = app_measurements(s, every)
        ctx = Context(s, names, features, params=json.loads(args.params), mode=args.mode)
        ctx.every = every
        if args.drop or args.only_families:
            from svetlana.core.objects.families import family_of

            fam = np.array([family_of(n) for n in names])
            keep = np.ones(len(names), bool)
            if args.only_families:
                keep &= np.isin(fam, args.only_families)
            if args.drop:
                keep &= ~np.isin(fam, args.drop)
            ctx.keep = np.flatnonzero(keep)
        if "floor" in args.candidates:
            ctx.floor = floor_features(s)
        if {"cnn", "auto", "hybrid", "ssl"} & set(args.candidates):
            ctx.patches = app_patches(s)
        n_cols = len(names) if ctx.keep is None else len(ctx.keep)
        print(f"\n## {set_name}: part `{args.part}`, {int(np.sum(s.part == args.part))} objects, "
              f"{n_cols} measurement columns", flush=True)  # fmt: skip
        for split in args.splits:
            for n in args.labels:
                for cand in args.candidates:
                    accs, bals, secs, chosen, confs, oks = [], [], [], [], [], []
                    for seed in args.seeds:
                        for tr, te in trials(s, args.part, split, n, seed):
                            t0 = time.perf_counter()
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore")
                                pred = CANDIDATES[cand](ctx, tr, te, seed)
                            secs.append(time.perf_counter() - t0)
                            if pred.ndim == 2:  # probabilities
                                confs.append(pred.max(1))
                                pred = pred.argmax(1)
                                oks.append(pred == s.y[te])
                            a, b = scores(s.y[te], pred)
                            accs.append(a)
                            bals.append(b)
                            if cand == "auto" or (
                                cand.startswith(("forest", "vote")) and ctx.last_auto
                            ):
                                weight = f"+{ctx.last_weight}" if ctx.last_weight else ""
                                chosen.append(f"{ctx.last_auto}{weight}")
                                ctx.last_auto = ctx.last_weight = None
                    if not accs:
                        continue
                    row = {
                        "set": set_name, "part": args.part, "split": split, "labels": n,
                        "candidate": cand, "trials": len(accs),
                        "accuracy": round(float(np.mean(accs)), 4),
                        "balanced_accuracy": round(float(np.mean(bals)), 4),
                        "balanced_sd": round(float(np.std(bals)), 4),
                        "train_s": round(float(np.median(secs)), 2),
                        "columns": n_cols,
                        **({"chosen": chosen} if chosen else {}),
                    }  # fmt: skip
                    extra = f"  chosen {','.join(chosen)}" if chosen else ""
                    if confs:
                        ece, table = reliability(np.concatenate(confs), np.concatenate(oks))
                        row["ece"] = round(ece, 4)
                        row["reliability"] = [[round(v, 3) for v in r] for r in table]
                        extra += f"  ECE {ece:.3f}"
                        reliabilities.append((f"{set_name} {split} {n} {cand}", ece, table))
                    results.append(row)
                    print(f"| {split} | {n} | {cand} | {row['accuracy']:.3f} | "
                          f"{row['balanced_accuracy']:.3f} ± {row['balanced_sd']:.3f} | "
                          f"{row['train_s']:.1f} s | {len(accs)} |{extra}", flush=True)  # fmt: skip
    if reliabilities and args.reliability:
        print("\n### Reliability (top probability vs how often it is right, judged objects)")
        edges = RELIABILITY_BINS
        print("| set split labels candidate | ECE | " + " | ".join(
            f"{edges[b]:.1f}-{edges[b + 1]:.1f}" for b in range(len(edges) - 1)) + " |")  # fmt: skip
        print("|---" * (len(RELIABILITY_BINS) + 1) + "|")
        for what, ece, table in reliabilities:
            cells = {round(lo, 1): f"{a:.2f} ({k})" for lo, _, k, _, a in table}
            print(f"| {what} | {ece:.3f} | " + " | ".join(
                cells.get(round(lo, 1), "") for lo in RELIABILITY_BINS[:-1]) + " |")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="consep,mitocheck")
    p.add_argument("--part", default="report", choices=("tune", "report"))
    p.add_argument("--candidates", default="auto,forest,floor")
    p.add_argument("--labels", default="100,300,500,1000")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--splits", default="random,grouped")
    p.add_argument("--drop", default="", help="measurement families left out (ablation)")
    p.add_argument("--only-families", default="", help="only these measurement families")
    p.add_argument("--mode", choices=("quick", "thorough"), default="quick", help="auto's mode")
    p.add_argument("--params", default="{}", help='"sk" candidate: {"kind": "rf"|"et"|"hgb", ...}')
    p.add_argument("--reliability", action="store_true",
                   help="print the reliability table (accuracy per confidence bin) of every row")  # fmt: skip
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    a.sets = [x for x in a.sets.split(",") if x]
    a.candidates = [x for x in a.candidates.split(",") if x]
    unknown = set(a.candidates) - set(CANDIDATES)
    if unknown:
        p.error(f"unknown candidate(s) {', '.join(sorted(unknown))}")
    a.labels = [int(x) for x in a.labels.split(",") if x]
    a.seeds = [int(x) for x in a.seeds.split(",") if x]
    a.splits = [x for x in a.splits.split(",") if x]
    a.drop = [x for x in a.drop.split(",") if x]
    a.only_families = [x for x in a.only_families.split(",") if x]
    print(f"# real data, part `{a.part}` (tune: settings chosen on it; report: never tuned on); "
          f"seeds {a.seeds}; cpu {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| split | labels | candidate | accuracy | balanced accuracy ± sd | train s | trials |")
    print("|---|---|---|---|---|---|---|")
    results = run(a)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

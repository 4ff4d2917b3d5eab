"""A linear model next to the forest: a standardized L2 logistic regression, saved as plain arrays.

On real labelled cells a logistic regression on the same measurements holds what the forest's
axis-parallel splits miss (CoNSeP's tuning part, random split: +1 to +12 points of balanced
accuracy over the forest) and loses where few labels spread over many classes (MitoCheck: −6):
so the forest's probabilities and the linear model's are averaged with a weight chosen on the
labels themselves (the forest's out-of-bag and the linear model's out-of-fold probabilities,
balanced accuracy), 0 when it does not pay. The linear part serves the images the forest serves
with its raw measurements; images that go to the forest for new images keep that forest alone
(raw values do not travel: labels from 2 CoNSeP images judged on the 3rd, the linear model alone
lost 10–16 points to the forest).

Saved in the forest's ``forest.npz`` as ``linear_*`` arrays (``allow_pickle=False``), its weight
and settings in the card's ``linear`` field, every shape and value checked on load.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from svetlana.core.errors import ModelError
from svetlana.core.jobs import CancelToken, ensure_token

LINEAR_PREFIX = "linear_"  # its arrays in forest.npz
LINEAR_CARD = "linear"  # its card field: {"weight": w, ...}
# L2 strength (scikit-learn's C) on standardized columns: 0.1 chosen on the tuning part
C = 0.1
MAX_ITER = 300
# The weights tried for the linear model (1 - w for the forest), and below this many labels
# none is fitted (the out-of-bag / out-of-fold estimates are too noisy to choose on).
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_LABELS = 30
FOLDS = 5
# Each column is clipped to its labelled objects' 1st-99th percentiles before it is
# standardized: a stray extreme value must not swing a linear model.
CLIP_PERCENTILES = (1.0, 99.0)
_BLOCK = 4096  # rows predicted at once
_ARRAYS = ("low", "high", "centre", "scale", "coef", "intercept", "classes")


@dataclass(frozen=True, eq=False)
class LinearModel:
    """``p = softmax(((clip(x, low, high) - centre) / scale) @ coef.T + intercept)`` over
    ``classes`` (indices into the project's classes). Every array has one value per column
    of the model's measurement table (``coef``: one row per class)."""

    low: np.ndarray
    high: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (classes, columns)
    intercept: np.ndarray  # (classes,)
    classes: np.ndarray  # (classes,) int64
    # The table's columns it was fitted on (None: every one), to fit it again on a fold's
    # labels (``same_blend``); not saved (a loaded model is never refitted).
    columns: np.ndarray | None = None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(N, len(classes))`` float32 probabilities of a cleaned (finite) table, a few
        thousand rows at a time (the float64 copies stay ~30 MB at 856 columns)."""
        out = np.empty((len(x), len(self.classes)), np.float32)
        for a in range(0, len(x), _BLOCK):
            part = np.asarray(x[a : a + _BLOCK], np.float64)
            z = (np.clip(part, self.low, self.high) - self.centre) / self.scale
            with np.errstate(all="ignore"):  # a tampered file's huge values: finite all the same
                logits = np.nan_to_num(
                    z @ self.coef.T + self.intercept, posinf=1e300, neginf=-1e300
                )
                logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            out[a : a + len(part)] = p / p.sum(1, keepdims=True)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {LINEAR_PREFIX + k: getattr(self, k) for k in _ARRAYS}


def fit_linear(
    x: np.ndarray, y: np.ndarray, columns: np.ndarray | None = None, seed: int = 0
) -> LinearModel:
    """A balanced L2 logistic regression on the (finite) table ``x`` (only ``columns``: the
    forest's; the others get weight 0)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, np.float64)
    n_features = x.shape[1]
    cols = np.arange(n_features) if columns is None else np.asarray(columns, np.int64)
    xc = x[:, cols]
    low, high = np.percentile(xc, CLIP_PERCENTILES, 0)
    xc = np.clip(xc, low, high)
    centre, scale = xc.mean(0), xc.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    # one BLAS thread: on 2 busy cores more threads took ten times the CPU for the same fit
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in MAX_ITER steps: close enough here
        lr = LogisticRegression(C=C, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
        lr.fit((xc - centre) / scale, y)
    coef = np.asarray(lr.coef_, np.float64)
    intercept = np.asarray(lr.intercept_, np.float64)
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row; written as two
        coef, intercept = (
            np.concatenate([-coef, coef]) / 2,
            np.concatenate([-intercept, intercept]) / 2,
        )
    full = {"low": np.zeros(n_features), "high": np.zeros(n_features),
            "centre": np.zeros(n_features), "scale": np.ones(n_features)}  # fmt: skip
    for k, v in (("low", low), ("high", high), ("centre", centre), ("scale", scale)):
        full[k][cols] = v
    w = np.zeros((len(coef), n_features))
    w[:, cols] = coef
    return LinearModel(**full, coef=w, intercept=intercept,
                       classes=np.asarray(lr.classes_, np.int64), columns=columns)  # fmt: skip


def out_of_fold(x, y, columns, seed: int, n_classes: int, cancel=None) -> np.ndarray:
    """The linear model's out-of-fold probabilities of the labels (stratified folds)."""
    from sklearn.model_selection import StratifiedKFold

    cancel = ensure_token(cancel)
    out = np.zeros((len(y), n_classes), np.float32)
    k = max(2, min(FOLDS, int(np.bincount(y).max())))
    with warnings.catch_warnings():  # a class with fewer labels than folds (expected)
        warnings.simplefilter("ignore")
        splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y))
    for a, b in splits:
        cancel.raise_if_cancelled()
        if len(np.unique(y[a])) < 2:
            continue
        m = fit_linear(x[a], y[a], columns, seed)
        out[b[:, None], m.classes[None, :]] = m.predict_proba(x[b])
    return out


def choose_weight(forest_oob: np.ndarray, linear_oof: np.ndarray, y: np.ndarray):
    """(weight, scores): the weight of ``WEIGHTS`` whose average of the two (out-of-sample)
    probability tables has the best balanced accuracy on the labels ``y``; ties: the smaller."""
    ok = forest_oob.sum(1) > 0  # objects without an out-of-bag tree are left out
    scores = {}
    for w in WEIGHTS:
        pred = ((1 - w) * forest_oob[ok] + w * linear_oof[ok]).argmax(1)
        truth = y[ok]
        scores[w] = float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))
    best = max(WEIGHTS, key=lambda w: (round(scores[w], 9), -w))
    return best, scores


@dataclass(frozen=True, eq=False)
class OutOfSample:
    """Each label's class probabilities from models that did not see it: the forest's
    out-of-bag ones averaged with the linear model's out-of-fold ones, as the model blends them
    (the estimate its weight was chosen on). ``seen``: the labels that have one (an object
    that every tree drew has no out-of-bag estimate)."""

    probs: np.ndarray  # (N, project classes)
    seen: np.ndarray  # (N,) bool


def add_linear(model, features: np.ndarray, labels: np.ndarray, *, seed: int = 0,
               cancel: CancelToken | None = None):  # fmt: skip
    """``model`` (a fitted ForestModel) with a linear model averaged into its probabilities,
    weighted as :func:`choose_weight` says (unchanged when that is 0, when it has fewer than
    MIN_LABELS labels or no out-of-bag estimate); its note says which and why."""
    return blend_forest(model, features, labels, seed=seed, cancel=cancel)[0]


def blend_forest(model, features: np.ndarray, labels: np.ndarray, *, seed: int = 0,
                 cancel: CancelToken | None = None):  # fmt: skip
    """``(model, estimate)``: :func:`add_linear`'s model and the :class:`OutOfSample`
    probabilities of what it returns (the forest's alone at weight 0); estimate None where
    the forest has no out-of-bag estimate (fewer than MIN_LABELS labels)."""
    from dataclasses import replace

    from svetlana.core.ml.forest import _as_matrix, _join

    y = np.asarray(labels, np.int64).ravel()
    est = model.estimator
    oob = getattr(est, "oob_decision_function_", None)
    if len(y) < MIN_LABELS or oob is None or len(np.unique(y)) < 2:
        return model, None
    cancel = ensure_token(cancel)
    x = _as_matrix(features, len(model.feature_names))
    forest_oob = np.zeros((len(y), model.n_classes), np.float64)
    forest_oob[:, np.asarray(est.classes_, np.int64)] = np.nan_to_num(np.asarray(oob))
    seen = forest_oob.sum(1) > 0
    best = None
    for columns in _column_choices(model):  # every column, and the forest's when fewer
        lin_oof = out_of_fold(x, y, columns, seed, model.n_classes, cancel)
        w, scores = choose_weight(forest_oob, lin_oof, y)
        if best is None or scores[w] > best[2][best[1]] + 1e-9:
            best = (columns, w, scores, lin_oof)
    columns, w, scores, lin_oof = best
    why = ", ".join(f"{k:g}: {v:.3f}" for k, v in scores.items())
    estimate = OutOfSample(((1 - w) * forest_oob + w * lin_oof).astype(np.float32), seen)
    if w == 0:
        note = f"no linear model (weight 0; {why})"
        return replace(model, note=_join(model.note, note)), estimate
    cancel.raise_if_cancelled()
    linear = fit_linear(x, y, columns, seed)
    which = "every measurement" if columns is None else "the forest's measurements"
    note = f"linear model on {which} weighted {w:g} (out-of-fold balanced accuracy by weight {why})"
    model = replace(model, linear=linear, linear_weight=float(w), note=_join(model.note, note))
    return model, estimate


def same_blend(forest, like, x: np.ndarray, y: np.ndarray, seed: int = 0):
    """``forest`` (fitted on the labels ``x``, ``y`` of a cross-validation fold) with the
    linear part of ``like`` (the model on every label) fitted again on those labels, same
    columns and weight: the model the user gets, judged on a fold."""
    from dataclasses import replace

    lin = getattr(like, "linear", None)
    if lin is None or not like.linear_weight > 0 or len(np.unique(y)) < 2:
        return forest
    linear = fit_linear(x, y, lin.columns, seed)
    return replace(forest, linear=linear, linear_weight=like.linear_weight)


def _column_choices(model) -> list[np.ndarray | None]:
    """The columns the linear model may read: every one, and the forest's own choice (without
    the neighbours' means) when it made one. Tuning part: every column paid on CoNSeP (tissue,
    1,000 random labels +5.6 points of balanced accuracy over the forest's columns), the forest's
    on MitoCheck (a mosaic whose neighbours are noise: +3.5 against every column, 300 labels),
    so the labels' out-of-fold estimate chooses, as the forest's out-of-bag one does."""
    return [None] if model.columns is None else [None, model.columns]


def linear_card(model) -> dict:
    """The card's field for a model with a linear part (nothing without one)."""
    if getattr(model, "linear", None) is None:
        return {}
    images = tuple(getattr(model, "linear_identities", ()) or ())
    return {
        LINEAR_CARD: {
            "weight": float(model.linear_weight),
            "model": "L2 logistic regression on standardized measurements, balanced classes",
            "C": C,
            # the images it serves: those of the labels (absent, as written before: every image)
            **({IDENTITIES: list(images)} if images else {}),
        }
    }


IDENTITIES = "image_identities"  # in the card's field: core/objects/image_stats.image_identity


def read_linear_identities(card: dict, path) -> tuple[str, ...]:
    """The images a saved linear part serves (() = every image: a model saved before it said),
    checked: a damaged or edited list is refused, never guessed."""
    from svetlana.core.objects.image_stats import is_identity

    info = card.get(LINEAR_CARD)
    found = info.get(IDENTITIES, []) if isinstance(info, dict) else []
    if not (
        isinstance(found, list) and len(found) <= 100_000 and all(is_identity(i) for i in found)
    ):
        raise ModelError(
            f"the model card's {LINEAR_CARD}.{IDENTITIES} must list sha256 digests of the "
            "labels' images; the card is damaged: train the model again",
            path,
        )
    return tuple(found)


def read_linear(npz, card: dict, n_features: int, n_classes: int, path) -> tuple | None:
    """``(LinearModel, weight)`` from an open forest.npz and its card, or None when the card
    names none; a damaged or edited file or card is refused (ModelError), never guessed."""
    info = card.get(LINEAR_CARD)
    if info is None:
        return None
    w = info.get("weight") if isinstance(info, dict) else None
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
        raise ModelError(
            f"the model card's {LINEAR_CARD}.weight must be a number above 0 and at most 1, "
            f"not {w!r}; the card is damaged: train the model again",
            path,
        )
    missing = [LINEAR_PREFIX + k for k in _ARRAYS if LINEAR_PREFIX + k not in npz.files]
    if missing:
        raise ModelError(f"the forest file lacks {', '.join(missing)} (its linear model)", path)
    a = {k: np.asarray(npz[LINEAR_PREFIX + k]) for k in _ARRAYS}
    problem = _check(a, n_features, n_classes)
    if problem:
        raise ModelError(f"damaged forest file (its linear model): {problem}", path)
    m = LinearModel(
        **{k: a[k].astype(np.float64) for k in _ARRAYS if k != "classes"},
        classes=a["classes"].astype(np.int64),
    )
    return m, float(w)


def _check(a: dict[str, np.ndarray], n_features: int, n_classes: int) -> str | None:
    for k in _ARRAYS:
        want = "iu" if k == "classes" else "f"
        if a[k].dtype.kind not in want:
            return f"{k} has type {a[k].dtype}"
    for k in ("low", "high", "centre", "scale"):
        if a[k].shape != (n_features,):
            return f"{k} has shape {a[k].shape}, not one value per measurement ({n_features})"
    classes = a["classes"]
    if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
        return "fewer than two classes, or a class twice"
    if classes.min() < 0 or classes.max() >= n_classes:
        return "class indices outside the card's classes"
    if a["coef"].shape != (len(classes), n_features):
        return f"coef has shape {a['coef'].shape}, not ({len(classes)}, {n_features})"
    if a["intercept"].shape != (len(classes),):
        return f"intercept has shape {a['intercept'].shape}, not ({len(classes)},)"
    if not all(np.isfinite(a[k]).all() for k in _ARRAYS if k != "classes"):
        return "values that are not finite numbers"
    if np.any(a["scale"] <= 0) or np.any(a["low"] > a["high"]):
        return "a column scale of 0 or less, or clip bounds out of order"
    return None

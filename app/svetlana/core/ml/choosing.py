"""Choose the model kind (forest or CNN) by cross-validation on the user's labels, in a time budget.

The rule (``--arch auto``):

1. Folds: stratified k-fold (k <= 5) over the labelled objects, or, when the labels come from
   two or more images, stratified *group* k-fold with one group per image (neighbouring cells of
   one image look alike, so an object must never be judged by a model trained on its image).
2. The forest is fitted on all labels first (it chooses, by out-of-bag accuracy, whether to read
   the neighbours' measurements, and the weight of its linear part: one choice, used by every
   fold and kept as the final forest), then cross-validated on every fold (seconds), each
   fold's forest with its linear part fitted on the fold's labels (the model the user gets).
3. The CNN is cross-validated on the first ``CNN_FOLDS`` of the same folds (it costs one
   training per fold), unless it cannot win or does not fit in the time budget:
   - skipped when the forest is already perfect (a tie goes to the faster forest);
   - skipped in *quick* mode when the time left is shorter than the forest's folds and fit on
     all labels took (each CNN fold costs more than a forest's; torch is then never imported);
   - stopped after a fold when, even with perfect remaining folds, its mean could not beat
     the forest's mean on the same folds by more than ``TIE``;
   - stopped as soon as its projected time (the running fold's epochs, the remaining folds and
     the final fit on all labels) would end after the budget.
4. The winner has the best mean balanced accuracy over the folds both candidates completed;
   a difference of at most ``TIE`` is a tie and goes to the faster candidate (the forest). A CNN
   that did not complete its folds is not chosen.
5. *thorough* mode (``MODES``) adds the **hybrid** (``core.ml.hybrid``): the forest on the
   measurements plus the CNN's out-of-fold class probabilities (stacking). The CNN is then
   cross-validated on every fold and not stopped for being behind (its folds feed the hybrid);
   the hybrid is chosen only when it beats the better of the other two by more than ``TIE``.
6. The winner is fitted on all labels. Its reported metrics (accuracy, balanced accuracy,
   confusion matrix, per class) come from predictions by models that did not see the label,
   never from training data: a forest's from its out-of-bag probabilities averaged with its
   linear part's out-of-fold ones (the estimate its weight is chosen on; ``OUT_OF_BAG``), a
   CNN's (or a forest's on fewer labels than that needs) from its out-of-fold predictions.

~615 lines: the cross-validated choice (folds, each candidate, budget, tie rule) is one
algorithm whose rules refer to each other.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from svetlana.core.errors import Cancelled, ModelError, TrainingError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress

log = logging.getLogger(__name__)

MAX_FOLDS = 5
CNN_FOLDS = 3
TIE = 0.005  # half a point of balanced accuracy
PERFECT = 0.995
# Seconds for cross-validation plus the final fit (measuring and patches come before), in the
# default *quick* mode: a base that grows with the labels (a CNN fold costs about linearly more),
# capped so that `svetlana train` stays within ~30 s for 500 labels and ~90 s for 2,000 on a
# 2-core CPU (Python start-up, imports, measuring and the files written come on top).
# *thorough* gives the CNN every fold and minutes (announced before it starts).
MODES: tuple[str, ...] = ("quick", "thorough")
BUDGET_2D_S = 12.0
BUDGET_3D_S = 20.0
_PER_LABEL_S = {2: 0.016, 3: 0.025}  # quick: seconds more per label
_QUICK_CAP_S = {2: 45.0, 3: 70.0}
# thorough: base, seconds per label, cap. Sized so that the CNN's 5 folds and final fit fit
# on a 2-core CPU (one `small` fold on 400 MitoCheck patches: ~1-4 min, load 2-9).
_THOROUGH = {2: (120.0, 0.6, 1800.0), 3: (180.0, 1.0, 3600.0)}
_EPOCHS_BEFORE_PROJECTING = 2


def default_budget(ndim: int, n_labels: int = 0, mode: str = "quick") -> float:
    """Seconds ``auto`` gives cross-validation plus the final fit, for ``n_labels`` labels."""
    d = 3 if ndim == 3 else 2
    n = max(0, int(n_labels))
    if mode == "thorough":
        base, per, cap = _THOROUGH[d]
        return float(min(cap, base + per * n))
    if mode != "quick":
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    base = BUDGET_3D_S if d == 3 else BUDGET_2D_S
    return float(min(_QUICK_CAP_S[d], base + _PER_LABEL_S[d] * n))


def cnn_folds(mode: str) -> int:
    """How many folds the CNN is cross-validated on (every fold in thorough mode)."""
    return MAX_FOLDS if mode == "thorough" else CNN_FOLDS


def estimate_text(n_labels: int, ndim: int, mode: str, budget_s: float | None = None) -> str:
    """What ``auto`` will do and for about how long, said before it starts."""
    budget = budget_s if budget_s else default_budget(ndim, n_labels, mode)
    what = (
        "the forest, the CNN on every fold and the hybrid (forest + CNN probabilities)"
        if mode == "thorough"
        else f"the forest and the CNN (on up to {CNN_FOLDS} folds)"
    )
    grows = "" if budget_s else f", growing with the {n_labels} labels"
    return (
        f"{mode}: cross-validates {what} in at most ~{budget:.0f} s{grows}; measuring the "
        "objects comes first"
    )


@dataclass(frozen=True)
class Folds:
    """Train/validation index pairs and how they were made."""

    splits: tuple[tuple[np.ndarray, np.ndarray], ...]
    method: str  # "StratifiedKFold" / "StratifiedGroupKFold" / "none"
    grouped: bool
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "folds": len(self.splits),
            "grouped_by_image": self.grouped,
            **({"note": self.note} if self.note else {}),
        }


def make_folds(labels: np.ndarray, groups: np.ndarray | None = None, seed: int = 0) -> Folds:
    """Stratified (grouped by image when there are >= 2 images) k-fold splits of the labels."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if len(counts) < 2 or len(y) < 4:
        return Folds((), "none", False, "too few labels to cross-validate")
    n_groups = len(np.unique(groups)) if groups is not None else 1
    with warnings.catch_warnings():  # "the least populated class has only 1 member": expected
        warnings.simplefilter("ignore", UserWarning)
        if n_groups >= 2:
            k = min(MAX_FOLDS, n_groups)
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            splits = list(splitter.split(np.zeros(len(y)), y, groups))
            method, grouped = "StratifiedGroupKFold", True
        else:
            k = min(MAX_FOLDS, max(2, int(counts.min())), int(counts.max()))
            if k < 2:
                return Folds((), "none", False, "too few labels to cross-validate")
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            splits = list(splitter.split(np.zeros(len(y)), y))
            method, grouped = "StratifiedKFold", False
    # A fold whose training part holds a single class cannot train a classifier.
    keep = tuple((tr, va) for tr, va in splits if len(np.unique(y[tr])) >= 2 and len(va))
    if not keep:
        return Folds((), "none", grouped, "no fold has two classes to train on")
    return Folds(keep, method, grouped)


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's cross-validation: balanced accuracy per completed fold."""

    name: str  # "forest" or the CNN architecture
    kind: str  # "forest" | "cnn"
    status: str  # "done" | "skipped" | "stopped" | "failed"
    folds: tuple[float, ...] = ()
    seconds: float = 0.0
    note: str = ""

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.folds)) if self.folds else None

    @property
    def spread(self) -> float | None:
        return float(np.std(self.folds)) if self.folds else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "balanced_accuracy": _round(self.mean),
            "spread": _round(self.spread),
            "folds": [round(f, 4) for f in self.folds],
            "seconds": round(self.seconds, 2),
            "note": self.note,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


@dataclass(frozen=True, eq=False)
class FitResult:
    """What training returns for either kind; ``metrics`` are out-of-fold (or held-out) ones."""

    kind: str
    arch: str
    model: Any
    metrics: dict
    history: tuple = ()
    device: str = "cpu"
    seconds: float = 0.0
    threads: int | None = None
    selection: dict = field(default_factory=dict)
    payload: bytes | None = None  # a forest already serialised (in the worker) for saving


def _balanced(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    from svetlana.core.ml.training import compute_metrics

    return compute_metrics(y_true, y_pred, n_classes)["balanced_accuracy"]


def _event(progress: ProgressFn, done: int, total: int, message: str, **metrics: Any) -> None:
    progress(Progress("select", done, total, message, metrics=MappingProxyType(metrics)))


_CHOOSE = "choose"


def cv_forest(features, labels, class_names, feature_names, folds: Folds, seed: int, cancel,
              columns: Any = _CHOOSE, like: Any = None):  # fmt: skip
    """Per-fold balanced accuracy and out-of-fold predictions (-1 where not predicted).

    ``columns``: the columns every fold's forest reads (None: all), as the forest on all labels
    chose them (with or without the neighbours' measurements, by out-of-bag accuracy: one choice
    instead of one per fold); by default each fold's forest makes that choice itself.
    ``like``: the model on all labels, whose linear part (its columns and weight) every fold's
    forest gets too, fitted on the fold's labels: the folds judge the model the user gets.
    """
    from svetlana.core.ml.forest import ForestModel, fit_forest, make_estimator
    from svetlana.core.ml.linear import same_blend

    y = np.asarray(labels, dtype=np.int64)
    oof = np.full(len(y), -1, np.int64)
    scores = []
    x = None
    if not isinstance(columns, str):
        x = np.nan_to_num(np.asarray(features, np.float32), nan=0.0,
                          posinf=np.finfo(np.float32).max, neginf=-np.finfo(np.float32).max)  # fmt: skip
    for tr, va in folds.splits:
        cancel.raise_if_cancelled()
        if x is None:
            model = fit_forest(
                features[tr], y[tr], class_names, feature_names, seed=seed, cancel=cancel
            )
        else:
            xt = x[tr] if columns is None else x[tr][:, columns]
            est = make_estimator(seed).fit(xt, y[tr])
            model = ForestModel(est, tuple(class_names), tuple(feature_names), columns=columns)
            if like is not None:
                model = same_blend(model, like, x[tr], y[tr], seed)
        oof[va] = model.predict_proba(features[va]).argmax(1)
        scores.append(_balanced(y[va], oof[va], len(class_names)))
    return scores, oof


class _OverBudget(Cancelled):
    """The CNN's cross-validation would not finish within the time budget."""


class _Deadline(CancelToken):
    """A user's cancel token that also stops work projected to end after ``deadline``."""

    def __init__(self, parent: CancelToken, deadline: float) -> None:
        super().__init__()
        self.parent = parent
        self.deadline = deadline
        self.over: str = ""

    def raise_if_cancelled(self) -> None:
        self.parent.raise_if_cancelled()
        if self.over:
            raise _OverBudget(self.over)
        if time.perf_counter() > self.deadline:
            self.over = "time budget spent"
            raise _OverBudget(self.over)


def _cnn_fold(patches, y, tr, va, n_classes, config, progress, token):
    """Train on ``tr``: the class probabilities of ``va``."""
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import train

    result = train(patches[tr], y[tr], n_classes, config, progress=progress, cancel=token)
    return predict_probabilities(result.model, patches[va], device=result.device, threads=1)


def choose(
    *,
    features: np.ndarray | None,
    feature_names: Sequence[str],
    patches: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    class_names: Sequence[str],
    config: Any,
    candidates: Sequence[str] = ("forest", "cnn"),
    budget_s: float | None = None,
    mode: str = "quick",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FitResult:
    """Cross-validate the candidates, pick one (see the module's rule), fit it on all labels.

    ``config`` is the CNN's TrainingConfig (its ``arch`` is the CNN candidate). ``mode``
    "quick" (default) or "thorough" sets the budget (``default_budget``, unless ``budget_s``)
    and how many folds the CNN gets.
    """
    from svetlana.core.ml.forest import fit_forest

    progress = progress or no_progress
    cancel = ensure_token(cancel)
    started = time.perf_counter()
    y = np.asarray(labels, dtype=np.int64)
    k_classes = len(class_names)
    spatial = patches.ndim - 2 if patches.ndim in (4, 5) else 2
    budget = float(budget_s) if budget_s is not None else default_budget(spatial, len(y), mode)
    deadline = started + budget
    folds = make_folds(y, groups, seed=config.seed)
    n = len(folds.splits)
    use_forest = "forest" in candidates and features is not None
    use_cnn = "cnn" in candidates
    use_hybrid = "hybrid" in candidates and use_forest and use_cnn
    cnn_arch = config.arch
    n_cnn = min(cnn_folds(mode), n)
    if use_hybrid:  # the hybrid stacks the CNN's out-of-fold probabilities of every label
        n_cnn = n
    total = (n if use_forest else 0) + (n_cnn if use_cnn else 0) + (n if use_hybrid else 0) + 1
    scores: dict[str, CandidateScore] = {}
    oofs: dict[str, np.ndarray] = {}
    step = 0

    forest_on_all = None
    forest_estimate = None  # the forest's (and its linear part's) out-of-sample probabilities
    forest_fit_seconds = 0.0
    if use_forest:
        from svetlana.core.ml.linear import blend_forest

        _event(progress, step, total, "cross-validating the forest")
        # The forest on all labels first: it chooses the columns (with or without the
        # neighbours' measurements) and the linear part's weight once for every fold, and it
        # is the final model if chosen.
        t0 = time.perf_counter()
        forest_on_all = fit_forest(
            features, y, class_names, feature_names, seed=config.seed, cancel=cancel
        )
        forest_on_all, forest_estimate = blend_forest(
            forest_on_all, features, y, seed=config.seed, cancel=cancel
        )
        forest_fit_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        fs, oof = cv_forest(features, y, class_names, feature_names, folds, config.seed, cancel,
                            columns=forest_on_all.columns, like=forest_on_all)  # fmt: skip
        step += n
        scores["forest"] = CandidateScore(
            "forest", "forest", "done" if fs else "skipped", tuple(fs),
            time.perf_counter() - t0, _blend_note(forest_on_all) if fs else folds.note,
        )  # fmt: skip
        oofs["forest"] = oof
        _announce(progress, step, total, scores["forest"])
    oof_probs = np.zeros((len(y), k_classes), np.float32)
    if use_cnn:
        left = deadline - time.perf_counter()
        forest_score = scores.get("forest")
        if (
            mode == "quick"
            and not use_hybrid
            and forest_score is not None
            and forest_score.status == "done"
            and n_cnn > 0
            and left < forest_score.seconds + forest_fit_seconds
        ):
            # The CNN's folds and its fit on all labels each cost more than a forest's fit:
            # if the forest's folds and fit took longer than the time left, it cannot hold.
            spent = forest_score.seconds + forest_fit_seconds
            score = CandidateScore(cnn_arch, "cnn", "skipped", note=(
                f"the forest's cross-validation and fit took {spent:.0f} s of the "
                f"{budget:.0f} s budget; the {max(0.0, left):.0f} s left cannot hold the CNN's "
                f"{n_cnn} folds and its fit on all labels (--mode thorough gives it time)"
            ))  # fmt: skip
            oof = np.full(len(y), -1, np.int64)
        else:
            score, oof = _cv_cnn(
                patches, y, folds, n_cnn, k_classes, config, forest_score, deadline,
                progress, cancel, step, total, oof_probs, stop_when_behind=not use_hybrid,
            )  # fmt: skip
        step += n_cnn
        scores[cnn_arch] = score
        oofs[cnn_arch] = oof
        _announce(progress, step, total, score)
    if use_hybrid:
        from svetlana.core.ml.hybrid import HYBRID
        from svetlana.core.ml.hybrid import stacked_names as _stacked

        hybrid_names = tuple(feature_names) + _stacked(class_names)
        cnn_score = scores[cnn_arch]
        t0 = time.perf_counter()
        if cnn_score.status == "done" and len(cnn_score.folds) == n:
            _event(progress, step, total, "cross-validating the hybrid (forest + CNN)")
            stacked = np.concatenate([features, oof_probs], 1)
            hs, hoof = cv_forest(stacked, y, class_names, hybrid_names, folds, config.seed, cancel)
            scores[HYBRID] = CandidateScore(
                HYBRID, HYBRID, "done", tuple(hs), time.perf_counter() - t0 + cnn_score.seconds
            )
            oofs[HYBRID] = hoof
        else:
            note = f"it needs the CNN on every fold (the CNN was {cnn_score.status})"
            scores[HYBRID] = CandidateScore(HYBRID, HYBRID, "skipped", note=note)
        step += n
        _announce(progress, step, total, scores[HYBRID])

    chosen, reason = _pick(scores, use_forest, cnn_arch if use_cnn else None, n)
    cancel.raise_if_cancelled()
    _event(
        progress,
        step,
        total,
        f"chosen: {chosen}; fitting it on all labels",
        event="chosen",
        candidate=chosen,
        reason=reason,
    )
    fit_started = time.perf_counter()
    if chosen == "forest":
        if forest_on_all is not None:  # fitted first (it chose the folds' columns)
            model = forest_on_all
            fit_started -= forest_fit_seconds
        else:
            model = fit_forest(
                features, y, class_names, feature_names, seed=config.seed, cancel=cancel
            )
        history: tuple = ()
        device, threads, kind = "cpu", 1, "forest"
    else:
        from svetlana.core.ml.training import train

        final_config = dataclasses.replace(config, val_fraction=0.0, early_stopping=False)
        result = train(patches, y, k_classes, final_config, progress=progress, cancel=cancel)
        model, history = result.model, result.history
        device, threads, kind = result.device, result.threads, "cnn"
        if chosen == "hybrid":
            from svetlana.core.ml.hybrid import HYBRID, fit_hybrid

            model = fit_hybrid(
                features, feature_names, oof_probs, y, class_names, model, cnn_arch,
                seed=config.seed, cancel=cancel,
            )  # fmt: skip
            kind = HYBRID
    fit_seconds = time.perf_counter() - fit_started
    _event(progress, total, total, f"chosen: {chosen}", event="done", candidate=chosen)

    oof = oofs.get(chosen)
    metrics = None
    if chosen == "forest" and forest_estimate is not None:  # the model as the user gets it
        metrics = _out_of_bag_metrics(y, forest_estimate, k_classes, oofs.get("forest"))
    if metrics is None and oof is not None:
        metrics = _oof_metrics(y, oof, k_classes)
    if metrics is None:  # no fold at all (a handful of labels): say so, never training accuracy
        metrics = {"estimate": "none", "note": folds.note or "not cross-validated"}
    selection = {
        "mode": "auto" if len(candidates) > 1 else "forced",
        "effort": mode,
        "metric": "balanced_accuracy",
        "cv": folds.to_dict(),
        "candidates": [s.to_dict() for s in scores.values()],
        "chosen": chosen,
        "reason": reason,
        "budget_s": round(budget, 1),
        "fit_seconds": round(fit_seconds, 2),
    }
    log.info("model choice: %s (%s)", chosen, reason)
    return FitResult(
        kind=kind,
        arch=chosen if kind in ("cnn", "hybrid") else "forest",
        model=model,
        metrics=metrics,
        history=tuple(history),
        device=device,
        seconds=time.perf_counter() - started,
        threads=threads,
        selection=selection,
    )


def _announce(progress: ProgressFn, step: int, total: int, s: CandidateScore) -> None:
    text = (
        f"{s.name}: balanced accuracy {s.mean:.3f} ± {s.spread:.3f} over {len(s.folds)} folds"
        if s.status == "done"
        else f"{s.name}: {s.status} ({s.note})"
    )
    _event(progress, step, total, text, event="candidate", **s.to_dict())


def _oof_metrics(y: np.ndarray, oof: np.ndarray, k: int) -> dict | None:
    from svetlana.core.ml.training import compute_metrics

    seen = oof >= 0
    if not seen.any():
        return None
    m = compute_metrics(y[seen], oof[seen], k)
    m["estimate"] = "cross-validation"
    m["n_val"] = int(seen.sum())
    m["n_train"] = int(len(y))
    return m


def _out_of_bag_metrics(y: np.ndarray, estimate: Any, k: int, folds_oof: Any) -> dict | None:
    """The metrics of a forest (with its linear part) from each label's out-of-bag
    (out-of-fold for the linear part) probabilities: what its weight was chosen on, and what
    the objects of the labelled images can expect (see README, *Model kinds*). A label that
    every tree drew (balanced classes draw a rare class's labels into nearly every tree) has no
    out-of-bag estimate: it takes the prediction of the cross-validation fold that left it out
    (``folds_oof``), so that no label, and no rare class, is left out of the estimate."""
    from svetlana.core.ml.training import compute_metrics

    pred = np.where(np.asarray(estimate.seen, bool), np.asarray(estimate.probs).argmax(1), -1)
    if folds_oof is not None:
        pred = np.where(pred < 0, np.asarray(folds_oof), pred)
    seen = pred >= 0
    if seen.sum() < 2:
        return None
    m = compute_metrics(y[seen], pred[seen], k)
    m["estimate"] = OUT_OF_BAG
    m["n_val"] = int(seen.sum())
    m["n_train"] = int(len(y))
    m["n_out_of_bag"] = int(np.sum(estimate.seen))  # the others: from the folds
    return m


OUT_OF_BAG = "out-of-bag"  # metrics["estimate"] of a forest judged by its out-of-bag estimate


def _blend_note(model: Any) -> str:
    """What the forest candidate is, when a linear model is averaged into it."""
    w = float(getattr(model, "linear_weight", 0.0) or 0.0)
    if getattr(model, "linear", None) is None or w <= 0:
        return ""
    return f"forest + linear model (weight {w:g}), as kept"


def _pick(
    scores: dict[str, CandidateScore], use_forest: bool, cnn: str | None, n: int
) -> tuple[str, str]:
    chosen, reason = _pick_forest_or_cnn(scores, use_forest, cnn, n)
    hybrid = scores.get("hybrid")
    if hybrid is None or hybrid.status != "done":
        return chosen, reason
    best = scores["forest" if chosen == "forest" else chosen]
    common = min(len(best.folds), len(hybrid.folds))
    b_mean = float(np.mean(best.folds[:common])) if common else 0.0
    h_mean = float(np.mean(hybrid.folds[:common])) if common else 0.0
    if h_mean > b_mean + TIE:
        return "hybrid", f"hybrid {h_mean:.3f} vs {chosen} {b_mean:.3f} on the same {common} folds"
    return chosen, reason + f"; hybrid {h_mean:.3f} (a tie or less goes to the simpler model)"


def _pick_forest_or_cnn(
    scores: dict[str, CandidateScore], use_forest: bool, cnn: str | None, n: int
) -> tuple[str, str]:
    forest = scores.get("forest")
    cnn_score = scores.get(cnn) if cnn else None
    if forest is None and cnn_score is not None:
        return cnn, "the only candidate"
    if cnn_score is None:
        return "forest", "the only candidate"
    if forest.status != "done" or not forest.folds:
        if cnn_score.status == "done":
            return cnn, "the forest could not be cross-validated"
        return "forest", "neither candidate could be cross-validated; the forest is faster"
    if cnn_score.status != "done":
        return "forest", f"the CNN was {cnn_score.status}"
    common = len(cnn_score.folds)
    f_mean = float(np.mean(forest.folds[:common]))
    c_mean = float(cnn_score.mean)
    if c_mean > f_mean + TIE:
        return cnn, f"CNN {c_mean:.3f} vs forest {f_mean:.3f} on the same {common} folds"
    return "forest", (
        f"forest {f_mean:.3f} vs CNN {c_mean:.3f} on the same {common} folds"
        + (" (a tie goes to the faster forest)" if abs(c_mean - f_mean) <= TIE else "")
    )


def _cv_cnn(patches, y, folds: Folds, n_cnn: int, k_classes: int, config, forest, deadline,
            progress, cancel, step0: int, total: int, oof_probs: np.ndarray | None = None,
            stop_when_behind: bool = True):  # fmt: skip
    """Cross-validate the CNN on the first ``n_cnn`` folds (or skip/stop it, see the module)."""
    name = config.arch
    oof = np.full(len(y), -1, np.int64)
    if n_cnn == 0:
        return CandidateScore(name, "cnn", "skipped", note="too few labels to cross-validate"), oof
    if forest is not None and forest.folds and min(forest.folds[:n_cnn]) >= PERFECT:
        # the CNN's folds only (the first n_cnn): the forest's mean over all may be below 1
        note = (
            f"the forest is already perfect on the {_folds_word(n_cnn)} the CNN would be "
            "judged on; a tie goes to the faster forest"
        )
        return CandidateScore(name, "cnn", "skipped", note=note), oof
    cv_config = dataclasses.replace(config, val_fraction=0.0, early_stopping=False)
    token = _Deadline(cancel, deadline)
    t0 = time.perf_counter()
    scores: list[float] = []
    fold_times: list[float] = []
    k = len(folds.splits)
    for i, (tr, va) in enumerate(folds.splits[:n_cnn]):
        fold_start = time.perf_counter()
        fold_progress = _fold_progress(progress, token, i, n_cnn, k, fold_times, fold_start,
                                       config.epochs, name, step0 + i, total)  # fmt: skip
        try:
            probs = _cnn_fold(patches, y, tr, va, k_classes, cv_config, fold_progress, token)
        except _OverBudget as exc:
            note = f"stopped after {len(scores)} of {n_cnn} folds{_reached(scores)}: {exc.message}"
            return CandidateScore(
                name, "cnn", "stopped", tuple(scores), time.perf_counter() - t0, note
            ), oof
        except (TrainingError, ModelError) as exc:  # out of memory, diverged...: forest stays
            log.warning("CNN candidate failed: %s", exc)
            return CandidateScore(
                name, "cnn", "failed", tuple(scores), time.perf_counter() - t0, exc.message
            ), oof
        pred = probs.argmax(1)
        oof[va] = pred
        if oof_probs is not None:
            oof_probs[va] = probs
        scores.append(_balanced(y[va], pred, k_classes))
        fold_times.append(time.perf_counter() - fold_start)
        if stop_when_behind and forest is not None and forest.folds and i + 1 < n_cnn:
            best_possible = (sum(scores) + (n_cnn - len(scores))) / n_cnn
            if best_possible <= float(np.mean(forest.folds[:n_cnn])) + TIE:
                note = (
                    f"stopped after {len(scores)} of {n_cnn} folds{_reached(scores)}: "
                    "it cannot beat the forest"
                )
                return CandidateScore(
                    name, "cnn", "stopped", tuple(scores), time.perf_counter() - t0, note
                ), oof
    return CandidateScore(name, "cnn", "done", tuple(scores), time.perf_counter() - t0), oof


def _folds_word(n: int) -> str:
    return "fold" if n == 1 else f"{n} folds"


def _reached(scores: list[float]) -> str:
    """What a candidate cut short had reached, for its note."""
    return f" (balanced accuracy {np.mean(scores):.3f} on them)" if scores else ""


def _fold_progress(progress, token: _Deadline, i: int, n_cnn: int, k: int, fold_times: list,
                   fold_start: float, epochs: int, name: str, step: int, total: int
                   ) -> Callable[[Progress], None]:  # fmt: skip
    """Relays epoch events as "select" progress and stops the fold when the budget cannot hold."""

    epoch_times: list[float] = []

    def relay(p: Progress) -> None:
        now = time.perf_counter()
        if p.stage == "train" and p.metrics.get("seconds") is not None:
            epoch_times.append(float(p.metrics["seconds"]))
        # The first epoch carries one-time costs (torch warm-up): project from the later ones.
        if p.stage == "train" and len(epoch_times) > _EPOCHS_BEFORE_PROJECTING and p.total:
            per_epoch = float(np.median(epoch_times[1:]))
            left = per_epoch * (p.total - p.done)
            next_fold = per_epoch * p.total
            # The final fit sees all labels: k/(k-1) times a fold's training set.
            final = next_fold * k / max(k - 1, 1)
            need = left + next_fold * (n_cnn - i - 1) + final
            if now + need > token.deadline and not token.over:
                token.over = (
                    f"at epoch {p.done}/{p.total} of fold {i + 1} it would need about "
                    f"{need:.0f} s more; the budget ends in {max(0.0, token.deadline - now):.0f} s"
                )
        _event(progress, step, total, f"CNN ({name}) fold {i + 1}/{n_cnn}: {p.message}")

    return relay

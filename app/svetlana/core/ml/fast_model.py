"""The fast forest refitted on all labels: every object's predicted class and an accuracy estimate.

It is a preview for labelling (live predictions, suggestions), never saved: the Training tab and
`svetlana train` still make the project's models. The accuracy estimate is out-of-bag: each
labelled object is judged only by the trees that did not see it (a cross-validation that costs
no extra fit, so a refit stays well under a second). From forest.CHOICE_MIN_LABELS labels on
it reads the measurements the saved forest would: with or without the neighbours' means,
whichever out-of-bag estimate is better (two fits: 0.34 -> 0.65 CPU s for 300 labels of CoNSeP's
2,577 objects and 856 columns; on MitoCheck's mosaic, where they are left out, suggest kept up
with random order from the first rounds: tests/benchmarks/real_suggest.py).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from svetlana.core.annotations.label_table import LabelTable
from svetlana.core.jobs import CancelToken, ensure_token

log = logging.getLogger(__name__)

# Trees of the live preview: half of a saved forest's, so a refit on 300 labels with
# predictions for 16k objects stays near half a second (see tests/benchmarks/bench_hitl.py).
LIVE_TREES = 50
# A refit given its previous model chooses the columns again only once the labels have grown
# by a quarter since the choice (one fit instead of two: the live refit stays near 0.3 s).
REUSE_CHOICE_GROWTH = 1.25


@dataclass(frozen=True, eq=False)
class FastModel:
    """Predictions of a forest fitted on the labelled rows of a table, for every row."""

    model: object  # forest.ForestModel
    probabilities: np.ndarray  # (n_rows, n_classes) float32 over every project class
    balanced_accuracy: float | None  # out-of-bag estimate over the labelled rows
    estimated_on: int  # labelled rows with an out-of-bag prediction
    n_labels: int
    seconds: float
    # The labels when the columns were chosen (with/without the neighbours'): a refit with
    # ``previous`` keeps that choice until the labels grow by REUSE_CHOICE_GROWTH.
    chosen_at: int = 0

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(1)

    def margin(self) -> np.ndarray:
        """Best minus second-best probability per row (small = uncertain)."""
        p = np.sort(self.probabilities, axis=1)
        if p.shape[1] < 2:
            return np.ones(len(p), np.float32)
        return p[:, -1] - p[:, -2]

    def counts(self) -> np.ndarray:
        """Objects predicted per class."""
        return np.bincount(self.predicted, minlength=self.probabilities.shape[1])


def fit_fast(
    table: LabelTable,
    *,
    seed: int = 0,
    n_trees: int | None = None,
    cancel: CancelToken | None = None,
    threads: int | None = None,
    choose_columns: bool = True,
    previous: FastModel | None = None,
) -> FastModel | None:
    """The forest of core.forest fitted on every label; None with fewer than two classes.

    ``threads``: how many trees are built at once (default: the cores; the live preview uses
    one, so that a core stays free for the window while it refits). ``choose_columns``: with
    or without the neighbours' columns, as the saved forest chooses (see ``_column_choices``);
    ``previous``: the last model of the same table's columns, whose choice is kept while the
    labels have grown by less than REUSE_CHOICE_GROWTH since it was made."""
    from svetlana.core.ml.forest import N_TREES, ForestModel

    cancel = ensure_token(cancel)
    rows = table.labelled
    y = table.labels[rows]
    if len(np.unique(y)) < 2:
        return None
    t0 = time.perf_counter()
    x_all = np.nan_to_num(
        table.values, nan=0.0, posinf=np.finfo(np.float32).max, neginf=-np.finfo(np.float32).max
    )
    fits, chosen_at = [None], 0  # 0: no choice made (every column)
    if choose_columns:
        fits = _column_choices(table.feature_names, len(y))
        if len(fits) > 1:
            chosen_at = len(y)
            if _reusable(previous, table, len(y)):
                fits, chosen_at = [previous.model.columns], previous.chosen_at
    best = None
    for columns in fits:
        cancel.raise_if_cancelled()
        estimator = _fit(x_all[rows] if columns is None else x_all[rows][:, columns], y,
                         seed, n_trees or N_TREES, threads)  # fmt: skip
        accuracy, n_est = _oob_balanced_accuracy(estimator, y)
        if best is None or (accuracy or 0.0) > (best[1] or 0.0):
            best = (estimator, accuracy, n_est, columns)
    cancel.raise_if_cancelled()
    estimator, accuracy, n_est, columns = best
    model = ForestModel(
        estimator, tuple(table.class_names), tuple(table.feature_names), columns=columns
    )
    probs = model.predict_proba(x_all)
    seconds = time.perf_counter() - t0
    log.debug("fast forest on %d labels, %d objects: %.2f s", len(y), len(table), seconds)
    return FastModel(model, probs, accuracy, n_est, len(y), seconds, chosen_at)


def _column_choices(names, n_labels: int) -> list:
    """The column sets to try: every column, and (from forest.CHOICE_MIN_LABELS labels on)
    every column but the neighbours' means, as fit_forest chooses: they are noise on a mosaic
    of crops (MitoCheck) and worth points in tissue (CoNSeP)."""
    from svetlana.core.ml.forest import CHOICE_MIN_LABELS, NEIGHBOUR_PREFIX

    nb = np.array([n.startswith(NEIGHBOUR_PREFIX) for n in names], bool)
    if not nb.any() or nb.all() or n_labels < CHOICE_MIN_LABELS:
        return [None]
    return [None, np.flatnonzero(~nb)]


def _reusable(previous: FastModel | None, table: LabelTable, n_labels: int) -> bool:
    if previous is None or previous.chosen_at < 1:
        return False
    if tuple(previous.model.feature_names) != tuple(table.feature_names):
        return False
    return n_labels < previous.chosen_at * REUSE_CHOICE_GROWTH


def _fit(x, y, seed, n_trees, threads):
    from svetlana.core.ml.forest import make_estimator

    estimator = make_estimator(seed, n_trees).set_params(oob_score=True)
    if threads is not None:
        estimator.set_params(n_jobs=max(1, int(threads)))
    with warnings.catch_warnings():  # few labels: some have no out-of-bag tree (expected)
        warnings.simplefilter("ignore")
        estimator.fit(x, y)
    return estimator


def _oob_balanced_accuracy(estimator, y: np.ndarray) -> tuple[float | None, int]:
    decision = np.asarray(getattr(estimator, "oob_decision_function_", np.zeros((0, 0))))
    if decision.shape[0] != len(y):
        return None, 0
    ok = np.isfinite(decision).all(1) & (decision.sum(1) > 0)
    if ok.sum() < 2:
        return None, int(ok.sum())
    classes = np.asarray(estimator.classes_)
    pred = classes[decision[ok].argmax(1)]
    truth = y[ok]
    recalls = [float(np.mean(pred[truth == c] == c)) for c in np.unique(truth)]
    return float(np.mean(recalls)), int(ok.sum())

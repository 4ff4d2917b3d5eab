"""Labels that are probably wrong: out-of-fold forest probabilities, then confident learning.

Each labelled object is judged by forests that never saw it (the cross-validation folds of
core.choosing: stratified, grouped by image when labels come from several images). cleanlab's
``find_label_issues`` (confident learning: the confident joint of given and predicted classes,
pruned by the estimated noise rate) keeps only the labels judged likely wrong; they are ranked
by self-confidence, the out-of-fold probability of the label given (lowest = most suspicious).
Labels the forests clearly reject (at most ``CLEAR_MISS`` for the label given) are added.
Classes with fewer than ``MIN_LABELS`` labels are used for training but their labels are not
judged: a forest cannot learn a class from one or two examples, so it would flag them all.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from svetlana.core.annotations.label_table import LabelTable
from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, ensure_token

log = logging.getLogger(__name__)

MIN_LABELS = 3
# A label whose out-of-fold probability is at most this while another class wins is listed
# too: with few labels cleanlab's per-class thresholds (the mean self-confidence of a class,
# ~0.95 for a well-learnt one) can leave out labels the forests put at 0.9 on another class.
CLEAR_MISS = 0.25


@dataclass(frozen=True)
class Suspect:
    """One label judged likely wrong."""

    row: int
    image: str
    object: int
    label: str
    suggested: str  # the class the out-of-fold forests prefer
    score: float  # 1 - out-of-fold probability of the label given (higher = more suspicious)


@dataclass(frozen=True)
class LabelCheck:
    """The suspicious labels, most suspicious first, and what was checked."""

    suspects: tuple[Suspect, ...]
    checked: int  # labels judged
    folds: int
    unchecked_classes: tuple[str, ...]  # classes with too few labels to judge


def out_of_fold(
    table: LabelTable, *, seed: int = 0, cancel: CancelToken | None = None
) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """``(rows, probs, classes, folds)``: labelled rows, their out-of-fold probabilities over
    ``classes`` (the labelled class indices, in that column order)."""
    from svetlana.core.ml.choosing import make_folds
    from svetlana.core.ml.forest import fit_forest

    cancel = ensure_token(cancel)
    rows = table.labelled
    classes = table.classes_labelled()
    if len(classes) < 2:
        raise InputError(
            "label objects of at least two classes before checking labels "
            f"(labelled: {', '.join(table.class_names[c] for c in classes) or 'none'})"
        )
    y = table.labels[rows]
    x = table.values[rows]
    folds = make_folds(y, table.image_index[rows], seed=seed)
    if not folds.splits:
        raise InputError(f"too few labels to check them: {folds.note}")
    probs = np.full((len(rows), len(classes)), np.nan, np.float64)
    for tr, va in folds.splits:
        cancel.raise_if_cancelled()
        model = fit_forest(
            x[tr], y[tr], table.class_names, table.feature_names, seed=seed, cancel=cancel
        )
        probs[va] = model.predict_proba(x[va])[:, classes]
    return rows, probs, classes, len(folds.splits)


def check_labels(
    table: LabelTable,
    *,
    seed: int = 0,
    cancel: CancelToken | None = None,
    confident_only: bool = False,
) -> LabelCheck:
    """The labels judged likely wrong, most suspicious first (an empty list when none are)."""
    rows, probs, classes, n_folds = out_of_fold(table, seed=seed, cancel=cancel)
    judged = np.isfinite(probs).all(1)
    compact = {c: i for i, c in enumerate(classes)}
    y = np.array([compact[int(c)] for c in table.labels[rows]], np.int64)
    counts = np.bincount(y, minlength=len(classes))
    too_few = [classes[i] for i in range(len(classes)) if counts[i] < MIN_LABELS]
    judged &= ~np.isin(y, [compact[c] for c in too_few])
    issues = (
        _find_issues(y, probs, judged, confident_only=confident_only)
        if judged.sum()
        else np.zeros(0, np.int64)
    )
    self_conf = probs[np.arange(len(y)), y] if len(y) else np.zeros(0)
    suspects = []
    for i in issues:
        r = int(rows[i])
        best = int(np.nanargmax(probs[i]))
        suspects.append(
            Suspect(
                r, table.image_of(r), int(table.ids[r]), table.class_names[classes[y[i]]],
                table.class_names[classes[best]], round(float(1.0 - self_conf[i]), 4),
            )
        )  # fmt: skip
    return LabelCheck(
        tuple(suspects), int(judged.sum()), n_folds, tuple(table.class_names[c] for c in too_few)
    )


def _find_issues(
    y: np.ndarray, probs: np.ndarray, judged: np.ndarray, *, confident_only: bool = False
) -> np.ndarray:
    """Indices (into ``y``) of labels judged likely wrong, ranked by self-confidence: those
    cleanlab finds, and those whose out-of-fold probability is at most ``CLEAR_MISS`` while
    another class wins (``confident_only`` = cleanlab's alone, for the benchmark)."""
    from cleanlab.filter import find_label_issues

    idx = np.flatnonzero(judged)
    p = np.clip(probs[idx], 1e-6, None)
    p = p / p.sum(1, keepdims=True)
    labels = y[idx]
    present = np.unique(labels)
    if len(present) < 2:
        return np.zeros(0, np.int64)
    # cleanlab wants every column to be a class with labels: keep the judged classes only.
    cols = present
    remap = {int(c): i for i, c in enumerate(cols)}
    p = p[:, cols]
    p = p / p.sum(1, keepdims=True)
    labels = np.array([remap[int(c)] for c in labels], np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = find_label_issues(
            labels, p, filter_by="prune_by_noise_rate",
            return_indices_ranked_by="self_confidence", n_jobs=1,
        )  # fmt: skip
    found = set(np.asarray(ranked, np.int64).tolist())
    if not confident_only:
        self_conf = p[np.arange(len(labels)), labels]
        found |= set(np.flatnonzero((self_conf <= CLEAR_MISS) & (p.argmax(1) != labels)).tolist())
    order = sorted(found, key=lambda i: (p[i, labels[i]], i))
    return idx[np.asarray(order, np.int64)]


def check_project_labels(
    project, images=None, *, progress=None, cancel: CancelToken | None = None
) -> LabelCheck:
    """The suspicious labels of a project's images."""
    from svetlana.core.annotations.label_table import check_images, project_table

    names = check_images(project, images)
    given = {lab.class_name for n in names for lab in project.annotations.for_image(n).values()}
    if len(given) < 2:  # said before measuring anything
        raise InputError(
            "label objects of at least two classes before checking labels "
            f"(labelled: {', '.join(sorted(given)) or 'none'})",
            project.path,
        )
    table = project_table(project, names, progress=progress, cancel=cancel)
    return check_labels(table, cancel=cancel)


CSV_COLUMNS = ("image", "object", "label", "suggested", "score")


def suspects_csv(check: LabelCheck) -> str:
    """The suspects as CSV text (core.csvsafe: cells a spreadsheet shows as text, never runs)."""
    from svetlana.core.io.csvsafe import to_csv_text

    return to_csv_text(
        CSV_COLUMNS,
        ([s.image, s.object, s.label, s.suggested, f"{s.score:.4f}"] for s in check.suspects),
    )

"""A random forest on object measurements (scikit-learn), saved as plain arrays: nothing is unpickled.

A fitted forest is saved as ``forest.npz``: the node arrays of its trees (children, feature,
threshold, class fractions), read back with ``allow_pickle=False`` and checked (every child index
inside its tree and after its parent, every feature inside the table) before use; a loaded forest
walks those arrays with numpy and gives scikit-learn's probabilities exactly (tested). Reading it
needs neither scikit-learn nor skops, whose imports cost seconds (skops imports every scikit-learn
estimator). Models saved by earlier versions as ``forest.skops`` still load, through skops with an
explicit allow-list of types.

~1,050 lines: the forest (with its second forest for images without labels), its plain-array
file format and that format's checks, and the earlier skops format. Too long: the file part
(``# ---- files``, ~430 lines) is the seam for a ``forest_file.py`` (42 importers to move).
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import InputError, ModelError, TrainingError, UnsafeFileError
from svetlana.core.io import bundlefs
from svetlana.core.io.fileio import atomic_write_json, atomic_write_with
from svetlana.core.jobs import CancelToken, ensure_token

log = logging.getLogger(__name__)

FOREST = "forest"  # the card's "architecture" and "kind" of a forest model
FOREST_FILE = "forest.npz"  # written since version 0.9: plain arrays (see the module doc)
SKOPS_FILE = "forest.skops"  # written by earlier versions: still read, through skops
ARRAYS_FORMAT = "svetlana-forest-1"
CARD_FILE = "card.json"
# 200 trees: a random forest (not extra trees, not histogram gradient boosting), chosen by
# measurement. Two noisy hard scenes x 3 seeds x 4 label draws, errors on the unlabelled objects
# (summed), 200 trees / 100 boosting rounds, class_weight="balanced" for all three:
#   textures under heavy noise and brightness spread  10+10 labels: RF 362  ET 330  HGB 1380
#                                                     30+30 labels: RF 213  ET 167  HGB 250
#                                                      5+40 labels: RF 551  ET 693  HGB 437
#   spot at the centre vs at the rim                  10+10 labels: RF  11  ET  45  HGB 1080
#                                                     30+30 labels: RF   1  ET   3  HGB    0
#                                                      5+40 labels: RF  99  ET 291  HGB  112
# Boosting predicts one class for everything with 20 labels (its leaves need 20 samples) and
# is 3-5x slower; extra trees lose on the localised spot and on rare classes. The benchmark
# scenes (exp1, exp2, 3D spheres, size classes over 4 images) give 0 errors for all three.
# 100 trees rather than 200: the same errors on the hard scenes of core/synthetic/hard.py (texture2d
# 6/12 vs 6/12, spot_position 0/0 vs 0/0, size_gain 20/20 vs 19/19, shapes 0 vs 0; seeds 0/1,
# 100 labels), half the time to fit, save, load and apply (a 200-tree file took ~1.3 s to check
# and load on a busy 2-core machine).
N_TREES = 100
IMPORTANCES_KEPT = 20

# Types a forest file may name beyond what skops trusts by default (numpy arrays, sklearn's
# public estimators...). Anything else, e.g. builtins.eval or os.system, is refused unread.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    }
)
_ESTIMATOR_CLASS = "RandomForestClassifier"
# Every type a forest's skops file may name (its schema is read before anything is loaded):
# the forest, its trees and the plain values they hold. A type skops itself trusts by default
# (another estimator, e.g. LogisticRegression) is refused here too, unloaded.
_SCHEMA_TYPES: frozenset[str] = TRUSTED_TYPES | frozenset(
    {f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")}
    | {
        f"numpy.{t}"
        for t in (
            "ndarray",
            "dtype",
            "bool_",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "intc",
            "intp",
            "float16",
            "float32",
            "float64",
        )
    }  # fmt: skip
)
_SCHEMA_LOADERS = frozenset(
    {"DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode", "ObjectNode",
     "TreeNode", "NoneNode"}
)  # fmt: skip


def preload() -> None:
    """Import scikit-learn now (seconds, partly holding the GIL): call it early, in a worker, so
    that the first forest does not freeze a window mid-training."""
    import sklearn.ensemble  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def is_forest(card: dict) -> bool:
    """Whether a model card describes a forest (old cards, without "kind", are CNNs)."""
    return card.get("kind") == FOREST or card.get("architecture") == FOREST


@dataclass(frozen=True, eq=False)
class TreeArrays:
    """The trees of a fitted forest as flat node arrays (tree-local child indices, -1 at leaves)."""

    offsets: np.ndarray  # (n_trees + 1,) int64: tree t owns nodes offsets[t]:offsets[t + 1]
    left: np.ndarray  # (n_nodes,) int32, tree-local index of the left child, -1 at a leaf
    right: np.ndarray  # (n_nodes,) int32
    feature: np.ndarray  # (n_nodes,) int32, the column a split reads (-2 at a leaf)
    threshold: np.ndarray  # (n_nodes,) float64: go left when value <= threshold
    value: np.ndarray  # (n_nodes, n_fitted) float64: class fractions at each node
    classes: np.ndarray  # (n_fitted,) int64: project class index of each fitted class
    importances: np.ndarray  # (n_features,) float64: mean decrease in impurity

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_estimator(cls, estimator, columns=None, n_features: int | None = None) -> TreeArrays:
        """The estimator's trees; ``columns``: the table columns it was fitted on (of
        ``n_features``), so that the arrays read the whole table."""
        trees = [e.tree_ for e in estimator.estimators_]
        counts = [t.node_count for t in trees]
        value = np.concatenate([t.value[:, 0, :] for t in trees]).astype(np.float64)
        # Fractions per node, as scikit-learn's predict_proba normalises each tree's leaves.
        total = value.sum(1, keepdims=True)
        value = np.divide(value, total, out=np.zeros_like(value), where=total > 0)
        feature = np.concatenate([t.feature for t in trees]).astype(np.int32)
        importances = np.asarray(estimator.feature_importances_, dtype=np.float64)
        if columns is not None:
            columns = np.asarray(columns, np.int32)
            inner = feature >= 0
            feature[inner] = columns[feature[inner]]
            full = np.zeros(int(n_features), np.float64)
            full[columns] = importances
            importances = full
        return cls(
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            left=np.concatenate([t.children_left for t in trees]).astype(np.int32),
            right=np.concatenate([t.children_right for t in trees]).astype(np.int32),
            feature=feature,
            threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
            value=value,
            classes=np.asarray(estimator.classes_, dtype=np.int64),
            importances=importances,
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Mean of the trees' leaf fractions for float32 rows ``x`` (as scikit-learn compares)."""
        n = len(x)
        total = np.zeros((n, self.value.shape[1]), np.float64)
        for t in range(self.n_trees):
            start = int(self.offsets[t])
            node = np.full(n, start, np.int64)
            active = np.arange(n)
            while len(active):  # depth-many steps; only rows still inside the tree move
                here = node[active]
                child = self.left[here]
                inner = child >= 0
                active, here, child = active[inner], here[inner], child[inner]
                go_left = x[active, self.feature[here]] <= self.threshold[here]
                node[active] = start + np.where(go_left, child, self.right[here])
            total += self.value[node]
        return total / max(self.n_trees, 1)


@dataclass(frozen=True, eq=False)
class ForestModel:
    """A fitted forest with the project's classes and the measurement columns it reads.

    ``estimator`` is scikit-learn's forest when it was fitted in this process (it predicts
    itself, in threads); a forest read from a file has only its ``trees``.
    """

    estimator: Any
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    trees: TreeArrays | None = None
    card_path: Path | None = None  # the card a loaded forest's names come from (for messages)
    # The columns of ``feature_names`` the estimator was fitted on (None: all); saved trees
    # read the whole table (their split features are mapped back to its columns).
    columns: np.ndarray | None = None
    note: str = ""  # which measurements it uses and why (the card's "measurements_chosen")
    # The forest for images that hold none of the labels, on each column scaled by its image's
    # reference statistics (core/objects/image_stats.py), kept when it cross-validates better on
    # images left out (see add_new_image_forest); None: every image goes to this forest.
    new_images: ForestModel | None = None
    seen_images: tuple[str, ...] = ()  # the images of the labels (the card's "images")
    # ... and their identities (core/objects/image_stats.image_identity): an image goes to this
    # forest when its identity is one of them; by its name only for a card without them.
    seen_identities: tuple[str, ...] = ()
    reference_seed: int = 0  # the random order the reference sample is drawn in
    reference_objects: int = 0
    # A linear model averaged into this forest's probabilities (core/ml/linear.py), weighted
    # ``linear_weight`` (the forest 1 - that); None: the forest alone.
    linear: Any = None
    linear_weight: float = 0.0
    # The images whose objects get the linear part: those of the labels, known by their
    # identities (raw values do not travel to other images: there the forest alone); () = every
    # image (models saved before this was recorded).
    linear_identities: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_trees(self) -> int:
        return self.trees.n_trees if self.estimator is None else len(self.estimator.estimators_)

    def tree_arrays(self) -> TreeArrays:
        if self.trees is not None:
            return self.trees
        return TreeArrays.from_estimator(self.estimator, self.columns, len(self.feature_names))

    @cached_property
    def read_features(self) -> tuple[str, ...]:
        """The measurements a split or the linear part reads, in ``feature_names`` order: the
        others never change a prediction, so they need not be measured."""
        if self.estimator is not None:
            trees = self.estimator.estimators_
            used = np.concatenate([e.tree_.feature[e.tree_.children_left >= 0] for e in trees])
        else:  # a split node's feature; a leaf's is never read (whatever a file holds there)
            used = self.trees.feature[self.trees.left >= 0]
        keep = set(np.unique(used[used >= 0]).tolist())
        if self.linear is not None and self.linear_weight > 0:  # its non-zero coefficients
            keep |= set(np.flatnonzero(np.any(self.linear.coef != 0, axis=0)).tolist())
        if self.new_images is not None:
            index = {n: i for i, n in enumerate(self.feature_names)}
            keep |= {index[n] for n in self.new_images.read_features}
        return tuple(self.feature_names[int(i)] for i in sorted(keep))

    def uses_scaled(self, image: str, identity: str | None = None) -> bool:
        """Whether objects of ``image`` go to the forest on per-image scaled measurements: any
        image but those of the labels, known by their ``identity`` (the same name in another
        folder or project is another image) where the model keeps them, else by name."""
        if self.new_images is None:
            return False
        if self.seen_identities and identity is not None:
            return identity not in self.seen_identities
        return image not in self.seen_images

    def for_image(self, identity: str | None) -> ForestModel:
        """The model for the objects of an image known by ``identity`` (None: unknown) that the
        raw forest serves: without its linear part for an image that holds none of the labels,
        where the linear model's raw values do not carry over (CoNSeP, labels from 2 images:
        the forest alone scored 3.5-7 points of balanced accuracy more on the 3rd)."""
        if (
            self.linear is None
            or not self.linear_identities
            or identity is None
            or identity in self.linear_identities
        ):
            return self
        return replace(self, linear=None, linear_weight=0.0, linear_identities=())

    def needs_identity(self) -> bool:
        """Whether which model serves an image depends on the image (see predict_image)."""
        return self.new_images is not None or bool(self.linear and self.linear_identities)

    def predict_image(
        self, features: np.ndarray, image: str, ids: np.ndarray, identity: str | None = None
    ) -> np.ndarray:
        """Probabilities of every object of one image (``ids``: the rows' object ids, all the
        image's objects; ``identity``: see :meth:`uses_scaled`): an image of the labels goes to
        this forest, any other to the per-image scaled one when there is one (its reference
        sample is among ``ids``)."""
        if not self.uses_scaled(image, identity):
            return self.for_image(identity).predict_proba(features)
        from svetlana.core.objects.image_stats import reference_ids, reference_stats, scale

        x = _as_matrix(features, len(self.feature_names))
        if len(x) == 0:  # an image without objects
            return self.new_images.predict_proba(x)
        ids = np.asarray(ids, np.int64)
        ref = reference_ids(self.reference_seed, image, ids, self.reference_objects)
        stats = reference_stats(x[np.isin(ids, ref)])
        return self.new_images.predict_proba(scale(x, *stats, inplace=True))  # x is our copy

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``(N, K)`` float32 probabilities over every project class (0 for never-labelled ones).

        Rows are predicted a block at a time: the cleaned copy of the table and the trees'
        working arrays stay small (416,025 rows x 200 columns took 0.7 GB more at once)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            _as_matrix(features, len(self.feature_names))  # the error
        out = np.zeros((len(features), self.n_classes), np.float32)
        for a0 in range(0, len(features), _PREDICT_BLOCK):
            x = _as_matrix(features[a0 : a0 + _PREDICT_BLOCK], len(self.feature_names))
            if self.estimator is not None:
                xe = x if self.columns is None else x[:, self.columns]
                probs, classes = self.estimator.predict_proba(xe), self.estimator.classes_
            else:
                probs, classes = self.trees.predict_proba(x), self.trees.classes
            out[a0 : a0 + len(x), np.asarray(classes, dtype=np.int64)] = probs
            if self.linear is not None and self.linear_weight > 0:
                w, block = self.linear_weight, out[a0 : a0 + len(x)]
                block *= 1 - w
                block[:, self.linear.classes] += w * self.linear.predict_proba(x)
        return out

    def importances(self, top: int | None = None) -> list[tuple[str, float]]:
        """Measurements by mean impurity decrease, most important first."""
        if self.estimator is not None:
            values = np.asarray(self.estimator.feature_importances_, dtype=np.float64)
            if self.columns is not None:
                full = np.zeros(len(self.feature_names), np.float64)
                full[self.columns] = values
                values = full
        else:
            values = self.trees.importances
        order = np.argsort(-values, kind="stable")[: top or len(values)]
        return [(self.feature_names[i], float(values[i])) for i in order]


_PREDICT_BLOCK = 65536  # rows predicted at once


def _as_matrix(features: np.ndarray, n_features: int) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise InputError(f"expected a measurement table with {n_features} columns, got {x.shape}")
    # Measurements are finite by contract; a stray Inf must not crash the trees.
    return np.nan_to_num(
        x, nan=0.0, posinf=np.finfo(np.float32).max, neginf=-np.finfo(np.float32).max
    )


def make_estimator(seed: int = 0, n_trees: int = N_TREES):
    """A fresh, unfitted random forest with balanced class weights."""
    from sklearn.ensemble import RandomForestClassifier

    # Trees are built in threads that release the GIL (a worker thread keeps the window free);
    # results do not depend on the thread count.
    _quiet_joblib_race()
    return RandomForestClassifier(
        n_estimators=n_trees, class_weight="balanced", random_state=seed, n_jobs=_threads()
    )


def _threads() -> int:
    import os

    return max(1, min(4, os.cpu_count() or 1))


# scikit-learn's joblib threads each swap the process's warning filters (catch_warnings is not
# thread-safe before Python 3.14): racing, a thread can find them emptied and print this line
# for every tree, about nothing the user did. One thread per forest avoided it at up to 4x the
# fitting time on a multi-core machine; instead this one message is dropped where warnings are
# shown (every other warning is shown as before).
_JOBLIB_RACE = "`sklearn.utils.parallel.delayed` should be used with"


def _quiet_joblib_race() -> None:
    """Drop :data:`_JOBLIB_RACE` from the warnings shown by this process (installed once; the
    worker threads' catch_warnings save and restore it with the rest)."""
    import warnings

    shown = warnings.showwarning
    if getattr(shown, "svetlana_quiet", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if _JOBLIB_RACE in str(message):  # not even at -v: once per tree
            return
        shown(message, category, filename, lineno, file, line)

    showwarning.svetlana_quiet = True
    warnings.showwarning = showwarning


def fit_forest(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    feature_names: Sequence[str],
    *,
    seed: int = 0,
    n_trees: int = N_TREES,
    cancel: CancelToken | None = None,
) -> ForestModel:
    """Fit on labelled objects; ``labels`` are indices into ``class_names`` (any may be missing)."""
    cancel = ensure_token(cancel)
    y = np.asarray(labels, dtype=np.int64).ravel()
    x = _as_matrix(features, len(feature_names))
    if len(x) != len(y):
        raise InputError(f"got {len(x)} measured objects but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
        raise InputError(f"labels must be class indices 0..{len(class_names) - 1}")
    if len(np.unique(y)) < 2:
        raise TrainingError("label objects of at least two classes before training")
    cancel.raise_if_cancelled()
    t0 = time.perf_counter()
    columns, note = None, ""
    nb = np.array([n.startswith(NEIGHBOUR_PREFIX) for n in feature_names], bool)
    if nb.any() and not nb.all() and len(y) >= CHOICE_MIN_LABELS:
        estimator, columns, note = _choose_columns(x, y, nb, seed, n_trees, cancel)
    elif len(y) >= CHOICE_MIN_LABELS:  # the out-of-bag estimate weighs the linear model
        import warnings  # (core/ml/linear.py); the trees are the same with or without it

        estimator = make_estimator(seed, n_trees).set_params(oob_score=True)
        with warnings.catch_warnings():  # few labels: some have no out-of-bag tree (expected)
            warnings.simplefilter("ignore")
            estimator.fit(x, y)
    else:
        estimator = make_estimator(seed, n_trees).fit(x, y)
    log.info(
        "forest of %d trees fitted on %d objects in %.2f s%s",
        n_trees,
        len(y),
        time.perf_counter() - t0,
        f" ({note})" if note else "",
    )
    cancel.raise_if_cancelled()
    return ForestModel(
        estimator, tuple(class_names), tuple(feature_names), columns=columns, note=note
    )


# The neighbours' means (core/objects/neighbours.py) pay where neighbours are related cells
# (tissue: CoNSeP +8 points of accuracy) and are noise where they are not (a mosaic of crops:
# MitoCheck -4 to -8 points): a forest with and one without them are fitted and the one whose
# out-of-bag balanced accuracy is higher is kept (ties: with them). Below this many labels the
# out-of-bag estimate is too noisy to choose on: every column is used.
NEIGHBOUR_PREFIX = "nb_"
CHOICE_MIN_LABELS = 30


def _choose_columns(x, y, nb, seed, n_trees, cancel):
    """(estimator, columns or None, note): with or without the neighbours' columns, whichever
    has the better out-of-bag balanced accuracy."""
    import warnings

    best = None
    for columns in (None, np.flatnonzero(~nb)):
        cancel.raise_if_cancelled()
        est = make_estimator(seed, n_trees).set_params(oob_score=True)
        with warnings.catch_warnings():  # few labels: some have no out-of-bag tree (expected)
            warnings.simplefilter("ignore")
            est.fit(x if columns is None else x[:, columns], y)
        score = _oob_balanced(est, y)
        if best is None or score > best[0]:
            best = (score, est, columns)
    score, est, columns = best
    what = "without" if columns is not None else "with"
    return (
        est,
        columns,
        f"{what} the neighbours' measurements (out-of-bag balanced accuracy {score:.3f})",
    )


# Per-image scaling (core/objects/image_stats.py) helps a model travel to new images (CoNSeP,
# labels from 2 images judged on a 3rd, tuning part: +6 points of balanced accuracy) and hurts
# within the labelled images (the random split: -4), where the raw values carry what the scaling
# removes. So both are kept: the raw forest for the images of the labels, a second forest on the
# scaled columns for every other image, fitted when the labels span at least
# NEW_IMAGES_MIN_GROUPS images (one image: nothing tells apart what the image changes from what
# the class does). From NEW_IMAGES_CV_GROUPS images on it is kept only if it predicts the images
# left out at least as well as the raw forest (grouped cross-validation: the question it
# answers). With 2 images that cross-validation trains on one image and judges the other, and on
# CoNSeP's tuning part it chose the wrong forest in 6 of 9 trials (it said "raw" exactly where
# scaling gained most): there the scaled forest is always kept (tuning part, labels from 2
# images judged on the 3rd, seeds 0-2: 300 labels +2.5 points of accuracy / +1.1 balanced,
# 1,000 labels +3.2 / +5.2).
NEW_IMAGES_MIN_GROUPS = 2
NEW_IMAGES_CV_GROUPS = 3
NEW_IMAGES_FOLDS = 3
# Where each image is one movie of a MitoCheck-like screen (~44 nuclei, each movie its own mix
# of phenotypes), scaling per image removes the phenotype itself: -20 to -26 points of balanced
# accuracy on movies left out (tuning part, seeds 0-2); this cross-validation kept the raw
# forest in all 15 trials. Its forests have half the trees (the choice, not the model): it
# cost 2.3x the fit of the raw forest with full ones (CoNSeP 1,000 labels over 3 images).
NEW_IMAGES_CV_TREES = N_TREES // 2
# Below NEW_IMAGES_CV_GROUPS images, the guard instead: scaling assumes every image holds a
# similar mix of classes, so it is not used when the labels of two images differ in their mix
# by more than this (total variation distance of the class shares; tuning part: CoNSeP's
# images 0.18-0.31, MitoCheck's movies median 0.96).
NEW_IMAGES_MAX_MIX_DIFFERENCE = 0.5


def add_new_image_forest(
    model: ForestModel,
    features: np.ndarray,
    labels: np.ndarray,
    images: Sequence[str],
    stats: dict,
    *,
    seed: int = 0,
    reference_seed: int = 0,
    reference_objects: int = 0,
    identities: Sequence[str] = (),
    n_trees: int = N_TREES,
    cancel: CancelToken | None = None,
    always: bool = False,
) -> ForestModel:
    """``model`` with a forest for new images (``new_images``) on the per-image scaled columns
    (``stats[image] = (centre, spread)``, the labels' ``images``, whose ``identities`` it
    keeps: :meth:`ForestModel.uses_scaled`) when :func:`_scaled_helps`; the note says which
    and why.
    ``always``: keep it regardless (benchmarks)."""
    from svetlana.core.objects.image_stats import scale_by_image

    cancel = ensure_token(cancel)
    images = np.asarray([str(i) for i in images])
    seen = tuple(sorted(set(images.tolist())))
    y = np.asarray(labels, np.int64).ravel()
    if len(seen) < NEW_IMAGES_MIN_GROUPS or len(np.unique(y)) < 2:
        return model
    x = _as_matrix(features, len(model.feature_names))
    xs = scale_by_image(x, images, stats)
    cols = model.columns
    if cols is not None:
        x, xs = x[:, cols], xs[:, cols]
    keep, scores = _scaled_helps(x, xs, y, images, seed, n_trees, cancel)
    if not keep and not always:
        return replace(model, note=_join(model.note, f"new images: raw measurements ({scores})"))
    cancel.raise_if_cancelled()
    est = make_estimator(seed, n_trees).fit(xs, y)
    scaled = ForestModel(
        est, model.class_names, model.feature_names, columns=cols, note="per-image scaled"
    )
    return replace(
        model,
        new_images=scaled,
        seen_images=seen,
        seen_identities=tuple(sorted({str(i) for i in identities})),
        reference_seed=int(reference_seed),
        reference_objects=int(reference_objects),
        note=_join(model.note, f"new images: measurements scaled per image (median/IQR; {scores})"),
    )


def _scaled_helps(x, xs, y, images, seed, n_trees, cancel) -> tuple[bool, str]:
    """Whether the scaled columns ``xs`` should serve new images, and why (the card's words):
    below NEW_IMAGES_CV_GROUPS images, when the images' class mixes are alike; from there on,
    when grouped by image they predict the images left out at least as well as the raw ``x``."""
    from sklearn.model_selection import GroupKFold

    n_images = len(np.unique(images))
    scores = f"labels from {n_images} images"
    if n_images < NEW_IMAGES_CV_GROUPS:
        mix = _mix_difference(y, images)
        scores += f", class mixes {mix:.2f} apart"
        if mix > NEW_IMAGES_MAX_MIX_DIFFERENCE:
            return False, f"{scores}: too different to scale per image"
        return True, scores
    pred = {"raw": np.full(len(y), -1), "scaled": np.full(len(y), -1)}
    for tr, va in GroupKFold(min(NEW_IMAGES_FOLDS, n_images)).split(x, y, images):
        if len(np.unique(y[tr])) < 2:
            continue
        for what, data in (("raw", x), ("scaled", xs)):
            cancel.raise_if_cancelled()
            est = make_estimator(seed, min(n_trees, NEW_IMAGES_CV_TREES))
            pred[what][va] = est.fit(data[tr], y[tr]).predict(data[va])
    done = pred["raw"] >= 0
    if done.sum() < 2:  # no fold had two classes to learn: nothing says no
        return True, scores
    score = {k: _balanced(y[done], p[done]) for k, p in pred.items()}
    scores = (
        f"balanced accuracy on images left out: raw {score['raw']:.3f}, "
        f"scaled {score['scaled']:.3f}"
    )
    return score["scaled"] >= score["raw"], scores


def _mix_difference(y: np.ndarray, images: np.ndarray) -> float:
    """The largest total variation distance between two images' shares of the classes."""
    classes = np.unique(y)
    shares = [np.mean(y[images == im][:, None] == classes, 0) for im in np.unique(images)]
    return max(
        (0.5 * float(np.abs(a - b).sum()) for k, a in enumerate(shares) for b in shares[k + 1 :]),
        default=0.0,
    )


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _balanced(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def _oob_balanced(est, y) -> float:
    d = np.nan_to_num(np.asarray(est.oob_decision_function_, np.float64))
    ok = d.sum(1) > 0
    if ok.sum() < 2:
        return 0.0
    pred = np.asarray(est.classes_)[d[ok].argmax(1)]
    truth = y[ok]
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def select_features(
    names: Sequence[str],
    values: np.ndarray,
    wanted: Sequence[str],
    where=None,
    read: Sequence[str] | None = None,
) -> np.ndarray:
    """The columns ``wanted`` (a model's measurements) of a measurement table, in that order;
    with ``read`` (the ones its trees read), the others may be missing: zeros, never read."""
    index = {n: i for i, n in enumerate(names)}
    needed = wanted if read is None else read
    missing = [n for n in needed if n not in index]
    if missing:
        raise ModelError(
            f"the model needs measurement(s) {', '.join(missing[:5])} that this Svetlana does "
            "not compute; train the model again",
            where,
        )
    values = np.asarray(values)
    out = np.zeros((values.shape[0], len(wanted)), np.float32)
    for j, n in enumerate(wanted):
        if n in index:
            out[:, j] = values[:, index[n]]
    return out


# ---- files -----------------------------------------------------------------------------


def forest_bytes(model: ForestModel) -> bytes:
    """The forest as ``forest.npz`` bytes (plain arrays, no pickle)."""
    import io

    arrays = {}
    for prefix, m in (("", model), (NEW_PREFIX, model.new_images)):
        if m is not None:
            trees = m.tree_arrays()
            arrays.update({prefix + k: getattr(trees, k) for k in _ARRAY_KINDS})
    if model.linear is not None:  # its card field: core/ml/linear.py's linear_card
        arrays.update(model.linear.arrays())
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array(ARRAYS_FORMAT), **arrays)
    return buf.getvalue()


NEW_PREFIX = "new_images_"  # the new-image forest's arrays in forest.npz
NEW_IMAGES_CARD = "new_images"  # its card field
IDENTITIES_CARD = "image_identities"  # in it: the labels' images (image_stats.image_identity)


def new_images_card(model: ForestModel) -> dict:
    """The card's fields for a forest with a new-image forest (nothing without one)."""
    if model.new_images is None:
        return {}
    return {
        NEW_IMAGES_CARD: {
            "scaling": "median and interquartile range of each image's reference objects",
            "reference_seed": int(model.reference_seed),
            "reference_objects": int(model.reference_objects),
            **({IDENTITIES_CARD: list(model.seen_identities)} if model.seen_identities else {}),
        }
    }


def save_forest(folder: Path, model: ForestModel, card: dict, data: bytes | None = None) -> None:
    """Write ``forest.npz`` (``data`` if already serialised) then ``card.json``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = forest_bytes(model) if data is None else data
    atomic_write_with(folder / FOREST_FILE, lambda p: p.write_bytes(payload))
    atomic_write_json(folder / CARD_FILE, card)


def forest_file(folder: Path) -> Path:
    """The forest file of a model folder: ``forest.npz``, or an earlier version's ``forest.skops``."""
    folder = Path(folder)
    if os.path.lexists(folder / FOREST_FILE) or not os.path.lexists(folder / SKOPS_FILE):
        return folder / FOREST_FILE
    return folder / SKOPS_FILE


_ARRAY_KINDS = {
    "offsets": "i",
    "left": "i",
    "right": "i",
    "feature": "i",
    "threshold": "f",
    "value": "f",
    "classes": "i",
    "importances": "f",
}


def read_tree_arrays(
    path: Path,
    n_features: int,
    n_classes: int,
    f=None,
    max_nodes: int = 4_000_001,
    prefix: str = "",
    max_bytes: int | None = None,
) -> TreeArrays:
    """Read and check ``forest.npz`` (or the open file ``f``): plain arrays only, every index
    inside its tree, values in range, trees no larger than ``max_nodes`` nodes, the arrays
    together no larger than ``max_bytes`` unpacked (a small file that unpacks to terabytes is
    refused before it is read).

    Nothing from the file runs (``allow_pickle=False``); a damaged or tampered file gives a
    ModelError naming it (UnsafeFileError for pickled content), never a crash or a wrong walk.
    """
    path = Path(path)
    if f is None and not path.is_file():
        raise ModelError("forest file not found", path)
    if max_bytes is not None:
        _check_unpacked_size(path, f, max_bytes)
    with _reading_npz(path), np.load(path if f is None else f, allow_pickle=False) as npz:
        fmt = str(npz["format"]) if "format" in npz.files else ""
        arrays = {k: np.asarray(npz[prefix + k]) for k in _ARRAY_KINDS if prefix + k in npz.files}
    if fmt != ARRAYS_FORMAT:
        raise ModelError(f"not a Svetlana forest file (format {fmt or 'missing'!r})", path)
    missing = sorted(set(_ARRAY_KINDS) - set(arrays))
    if missing:
        raise ModelError(f"the forest file lacks {', '.join(prefix + k for k in missing)}", path)
    try:
        problem = _check_arrays(arrays, n_features, n_classes, max_nodes)
    except (ValueError, TypeError, OverflowError, MemoryError, IndexError) as exc:
        problem = f"arrays that do not fit together ({exc})"
    if problem:
        which = " (its forest for new images)" if prefix == NEW_PREFIX else ""
        raise ModelError(f"damaged forest file{which}: {problem}", path)
    a = arrays
    return TreeArrays(
        offsets=a["offsets"].astype(np.int64),
        left=a["left"].astype(np.int32),
        right=a["right"].astype(np.int32),
        feature=a["feature"].astype(np.int32),
        threshold=a["threshold"].astype(np.float64),
        value=a["value"].astype(np.float64),
        classes=a["classes"].astype(np.int64),
        importances=a["importances"].astype(np.float64),
    )


def _check_arrays(
    a: dict[str, np.ndarray], n_features: int, n_classes: int, max_nodes: int = 4_000_001
) -> str | None:
    """What is wrong with a forest's arrays (None when they are sound)."""
    for key, kind in _ARRAY_KINDS.items():
        if a[key].dtype.kind not in (kind, "u" if kind == "i" else kind):
            return f"{key} has type {a[key].dtype}"
        if kind == "i" and a[key].size and (a[key].max() > 2**62 or a[key].min() < -(2**62)):
            return f"{key} holds out-of-range indices"
    a = {k: v.astype(np.int64) if _ARRAY_KINDS[k] == "i" else v for k, v in a.items()}
    off, left, right, feat = a["offsets"], a["left"], a["right"], a["feature"]
    if left.ndim != 1:
        return "node arrays of different lengths"
    n = len(left)
    value, classes = a["value"], a["classes"]
    if off.ndim != 1 or len(off) < 2 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
        return "tree offsets do not cover the nodes"
    if np.diff(off).max() > max_nodes:
        return (
            f"a tree of {int(np.diff(off).max())} nodes, more than a forest fitted on the "
            f"card's labels can have ({max_nodes})"
        )
    if any(a[k].ndim != 1 or len(a[k]) != n for k in ("right", "feature", "threshold")):
        return "node arrays of different lengths"
    if classes.ndim != 1 or not len(classes) or len(np.unique(classes)) != len(classes):
        return "no classes, or a class twice"
    if classes.min() < 0 or classes.max() >= n_classes:
        return "class indices outside the card's classes"
    if value.shape != (n, len(classes)) or not np.isfinite(value).all():
        return "node values do not match the classes"
    if value.min() < 0 or value.max() > 1 + 1e-6:
        return "node values outside 0..1 (they are class fractions)"
    imp = a["importances"]
    if imp.shape != (n_features,) or not np.isfinite(imp).all():
        return "importances do not match the measurements"
    # Tree-local index of every node; a child must come after its parent and stay in its tree,
    # so every walk ends within the tree's size.
    tree = np.repeat(np.arange(len(off) - 1), np.diff(off))
    local = np.arange(n) - off[tree]
    size = np.diff(off)[tree]
    leaf = left < 0
    if np.any(leaf != (right < 0)) or np.any(left[leaf] != -1) or np.any(right[leaf] != -1):
        return "a node with one child"
    inner = ~leaf
    for child in (left, right):
        if np.any(child[inner] <= local[inner]) or np.any(child[inner] >= size[inner]):
            return "a child index outside its tree"
    if np.any(feat[inner] < 0) or np.any(feat[inner] >= n_features):
        return "a split on a measurement the card does not list"
    if np.isnan(a["threshold"][inner]).any():
        return "a split without a threshold"
    depth_cap = min(max_nodes // 2, MAX_DEPTH)
    if _deeper_than(off, left, right, depth_cap):
        return f"a tree deeper than {depth_cap} levels (a prediction would take hours)"
    return None


# No forest fitted by Svetlana is this deep (scikit-learn's trees on 10^6 noisy objects reach
# ~60 levels); a prediction walks depth-many steps, so a deeper file is refused.
MAX_DEPTH = 2000


def _deeper_than(off: np.ndarray, left: np.ndarray, right: np.ndarray, cap: int) -> bool:
    """Whether a tree is deeper than ``cap`` levels: walked level by level over all trees at
    once (at most ``cap`` + 1 steps; the children were checked to stay in their trees)."""
    nodes = off[:-1].copy()
    starts = nodes.copy()
    for _ in range(cap + 1):
        child = left[nodes]
        inner = child >= 0
        if not inner.any():
            return False
        nodes, starts = nodes[inner], starts[inner]
        nodes = np.concatenate([starts + left[nodes], starts + right[nodes]])
        starts = np.concatenate([starts, starts])
    return True


def check_forest_file(path: Path) -> list[str]:
    """The non-default types a skops file (earlier versions) names, refusing any not allowed.

    Reads only the file's schema: no object is built and nothing from the file runs.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelError("forest file not found", path)
    if not zipfile.is_zipfile(path):  # e.g. a pickle renamed to .skops
        raise UnsafeFileError(
            "refused: this is not a skops forest file (it may be a pickle, which could run code)",
            path,
        )
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # damaged archive or schema
        raise ModelError(f"cannot read the forest file: {exc}", path) from exc
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise UnsafeFileError(
            f"refused: the forest file names types that could run code ({', '.join(refused[:5])})",
            path,
        )
    return list(untrusted)


def load_forest(folder: Path, card: dict | None = None) -> ForestModel:
    """The forest of a model folder, checked before use (see :func:`read_tree_arrays`). The
    folder's files are opened without following links (it may be a received bundle's)."""
    from svetlana.core.ml.cards import check_card

    folder = Path(folder)
    if card is None:
        card = bundlefs.read_json(folder, CARD_FILE, ModelError)
    card = check_card(card, folder / CARD_FILE)
    classes = tuple(card["classes"])
    names = tuple(card["measurements"])
    path = forest_file(folder)
    new = None
    with bundlefs.open_read(folder, path.name, bundlefs.MAX_MODEL, ModelError) as f:
        skops = path.name == SKOPS_FILE
        if not skops and zipfile.is_zipfile(f):
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                skops = "schema.json" in zf.namelist()  # a skops file under the new name
        f.seek(0)
        if skops:
            _check_skops_schema(f, path)
        else:
            bound = _unpacked_bound(card, len(names), len(classes))
            trees = read_tree_arrays(
                path, len(names), len(classes), f, _node_bound(card), max_bytes=bound
            )
            new = _new_images_fields(card, folder / CARD_FILE)
            if new is not None:
                f.seek(0)
                new_trees = read_tree_arrays(
                    path, len(names), len(classes), f, _node_bound(card), NEW_PREFIX
                )
            linear = _read_linear(f, card, len(names), len(classes), path)
    if skops:
        return replace(_load_skops_forest(path, classes, names), card_path=folder / CARD_FILE)
    model = ForestModel(None, classes, names, trees, folder / CARD_FILE)
    if linear is not None:
        from svetlana.core.ml.linear import read_linear_identities

        model = replace(
            model, linear=linear[0], linear_weight=linear[1],
            linear_identities=read_linear_identities(card, folder / CARD_FILE),
        )  # fmt: skip
    if new is None:
        return model
    scaled = ForestModel(None, classes, names, new_trees, folder / CARD_FILE)
    return replace(model, new_images=scaled, **new)


@contextmanager
def _reading_npz(path: Path):
    """A forest file's ``np.load`` errors as one clear message naming ``path``: pickled objects
    refused as unsafe, anything else unreadable."""
    try:
        yield
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UnsafeFileError(
                "refused: the forest file holds pickled objects, which could run code", path
            ) from None
        raise ModelError(f"cannot read the forest file: {exc}", path) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"cannot read the forest file: {exc}", path) from None


def _read_linear(f, card: dict, n_features: int, n_classes: int, path: Path):
    """The linear part (core/ml/linear.py) of an open forest.npz whose card names one."""
    from svetlana.core.ml.linear import LINEAR_CARD, read_linear

    if card.get(LINEAR_CARD) is None:
        return None
    f.seek(0)
    with _reading_npz(path), np.load(f, allow_pickle=False) as npz:
        return read_linear(npz, card, n_features, n_classes, path)


def _new_images_fields(card: dict, path: Path) -> dict | None:
    """The new-image forest's settings from the card (None: it has none), checked: a damaged
    or edited field is refused with the card named, never guessed."""
    from svetlana.core.objects.image_stats import is_identity

    info = card.get(NEW_IMAGES_CARD)
    if info is None:
        return None
    seen = card.get("images")
    if (
        not isinstance(info, dict)
        or not isinstance(seen, list)
        or not seen
        or not all(isinstance(n, str) for n in seen)
    ):
        raise ModelError(
            f"the model card's {NEW_IMAGES_CARD!r} needs the images of the labels ('images'); "
            "the card is damaged: train the model again",
            path,
        )
    seed, n = info.get("reference_seed"), info.get("reference_objects")
    for key, value, top in (("reference_seed", seed, 2**32 - 1), ("reference_objects", n, 10**7)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ModelError(
                f"the model card's {NEW_IMAGES_CARD}.{key} must be a whole number from 0 to "
                f"{top}, not {value!r}; the card is damaged: train the model again",
                path,
            )
    if n < 1:
        raise ModelError(f"the model card's {NEW_IMAGES_CARD}.reference_objects must be ≥ 1", path)
    identities = info.get(IDENTITIES_CARD, [])  # absent: the images are known by name only
    if not (
        isinstance(identities, list)
        and len(identities) <= len(seen)
        and all(is_identity(i) for i in identities)
    ):
        raise ModelError(
            f"the model card's {NEW_IMAGES_CARD}.{IDENTITIES_CARD} must list at most one sha256 "
            "per image of the labels; the card is damaged: train the model again",
            path,
        )
    return {
        "seen_images": tuple(seen),
        "seen_identities": tuple(identities),
        "reference_seed": seed,
        "reference_objects": n,
    }


def _check_unpacked_size(path: Path, f, max_bytes: int) -> None:
    """Refuse a forest.npz whose arrays unpack to more than ``max_bytes`` (the sizes its zip
    directory declares: the reader never unpacks more than those). Not a zip: the reader
    says what it is (a pickle is refused as one)."""
    try:
        if f is not None:
            f.seek(0)
        if not zipfile.is_zipfile(path if f is None else f):
            return
        if f is not None:
            f.seek(0)
        with zipfile.ZipFile(path if f is None else f) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"cannot read the forest file: {exc}", path) from None
    finally:
        if f is not None:
            f.seek(0)
    if unpacked > max_bytes:
        raise ModelError(
            f"the forest file unpacks to {unpacked / 2**20:,.1f} MB, more than the card's trees "
            f"at their most nodes can hold ({max_bytes / 2**20:,.1f} MB): damaged or not "
            "Svetlana's; refused",
            path,
        )


def _unpacked_bound(card: dict, n_features: int, n_classes: int) -> int | None:
    """The most bytes a forest.npz of this card unpacks to: both forests at their most nodes
    (``_node_bound`` per tree, ``trees`` trees), twice over for the arrays' headers and slack;
    None for a card without its number of trees (no bound but the file's own)."""
    trees = card.get("trees")
    if isinstance(trees, bool) or not isinstance(trees, int) or not 0 < trees <= 100_000:
        return None
    per_node = 4 * 3 + 8 + 8 * n_classes  # left, right, feature; threshold; value
    per_tree = _node_bound(card) * per_node + 8 + 8 * n_features  # offset; importances
    linear = 8 * (n_classes + 4) * (n_features + 1)  # core/ml/linear.py's arrays
    return 2 * (2 * trees * per_tree + 8 * n_classes + linear) + (1 << 20)


def _node_bound(card: dict) -> int:
    """The most nodes a tree of this forest can have: fitted on ``n_labels`` objects, a tree
    has at most 2n - 1 nodes (and is at most n - 1 deep). A card without it: a generous bound."""
    n = card.get("n_labels")
    return 2 * n + 1 if isinstance(n, int) and n > 0 else 4_000_001


def _check_skops_schema(f, path: Path) -> None:
    """Read a skops file's ``schema.json`` (nothing is built) and refuse every type it names
    that a forest does not hold, before skops loads anything."""
    import json

    if not zipfile.is_zipfile(f):  # e.g. a pickle renamed to .skops
        raise UnsafeFileError(
            "refused: this is not a skops forest file (it may be a pickle, which could run code)",
            path,
        )
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as zf:
            info = zf.getinfo("schema.json")
            if info.file_size > bundlefs.MAX_JSON:
                raise ModelError("the forest file's schema is too large: refused", path)
            schema = json.loads(zf.read(info))
    except (KeyError, zipfile.BadZipFile, ValueError, RecursionError, OSError) as exc:
        raise ModelError(f"cannot read the forest file's schema ({exc})", path) from None
    finally:
        f.seek(0)
    named: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__loader__" in node:
                named.add(f"{node.get('__module__', '?')}.{node.get('__class__', '?')}")
                loader = node.get("__loader__")
                if loader is not None and loader not in _SCHEMA_LOADERS:
                    named.add(f"skops loader {loader}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    refused = sorted(named - _SCHEMA_TYPES)
    if refused:
        code = [t for t in refused if not t.startswith(("sklearn.", "numpy.", "builtins."))]
        if code or any(t.startswith("builtins.") for t in refused):
            raise UnsafeFileError(
                f"refused: the forest file names types that could run code ({', '.join(refused[:5])})",
                path,
            )
        raise ModelError(
            f"the forest file holds {', '.join(refused[:3])}, not a forest: refused before loading",
            path,
        )


def _load_skops_forest(path: Path, classes: tuple[str, ...], names: tuple[str, ...]) -> ForestModel:
    """A forest saved by an earlier version (skops), its schema checked first (above)."""
    import skops.io as sio

    trusted = check_forest_file(path)
    try:
        estimator = sio.load(path, trusted=trusted)
    except Exception as exc:
        raise ModelError(f"cannot load the forest: {exc}", path) from exc
    if type(estimator).__name__ != _ESTIMATOR_CLASS:
        raise ModelError(f"the forest file holds a {type(estimator).__name__}, not a forest", path)
    fitted = np.asarray(getattr(estimator, "classes_", []))
    if int(getattr(estimator, "n_features_in_", -1)) != len(names):
        raise ModelError("the forest and its card disagree on the measurements", path)
    if not len(fitted) or fitted.min() < 0 or fitted.max() >= len(classes):
        raise ModelError("the forest and its card disagree on the classes", path)
    return ForestModel(estimator, classes, names)

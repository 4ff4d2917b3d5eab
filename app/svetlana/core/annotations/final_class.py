"""The class each object leaves Svetlana with: the user's label when there is one, else the model's.

Every place where results leave the app or are counted (class masks, predictions.csv, filtered
and per-class masks, the counts of the GUI and the CLI, the overlay) goes through
``final_classes``, so a correction made on screen is what is exported and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MODEL = "model"  # source of an object without a human label


def result_classes(
    model_classes: Sequence[str], project_classes: Sequence[str] = ()
) -> tuple[str, ...]:
    """The class list of an export: the model's classes in its order, then any project class the
    model does not know (a human label may use it). Class-mask value k = this list's k-th class."""
    model_classes = tuple(str(c) for c in model_classes)
    return model_classes + tuple(c for c in project_classes if c not in model_classes)


@dataclass(frozen=True, eq=False)
class FinalClasses:
    """One image's objects with their final class; rows in the order of the prediction's ids."""

    image: str
    ids: np.ndarray  # (n,) int64 object ids
    class_names: tuple[str, ...]  # see result_classes
    index: np.ndarray  # (n,) 1-based final class (into class_names)
    predicted: np.ndarray  # (n,) 1-based class the model predicted (into class_names)
    source: np.ndarray  # (n,) str: manual | correction | import | model
    confidence: np.ndarray  # (n,) the model's probability of its predicted class

    @property
    def human(self) -> np.ndarray:
        """True where a person gave the class (a label, a correction or an import)."""
        return self.source != MODEL

    def names(self) -> list[str]:
        return [self.class_names[k - 1] for k in self.index]

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.index, minlength=len(self.class_names) + 1)
        return {c: int(n[k + 1]) for k, c in enumerate(self.class_names)}


def final_classes(
    pred: Any, labels: Mapping[int, Any] | None, class_names: Sequence[str] | None = None
) -> FinalClasses:
    """Final class of every object of ``pred`` (an ``ImagePrediction``).

    ``labels``: object id -> ``Label`` of this image (the project's annotations); labels of ids
    the prediction lacks are ignored. ``class_names``: the export's class list (default: the
    model's classes, extended by any label class it lacks).
    """
    names = list(class_names) if class_names is not None else list(pred.class_names)
    labels = dict(labels or {})
    for lab in labels.values():
        if lab.class_name not in names:
            names.append(lab.class_name)
    position = {c: k + 1 for k, c in enumerate(names)}
    ids = np.asarray(pred.ids, dtype=np.int64)
    model_to_out = np.array([0, *(position[c] for c in pred.class_names)], dtype=np.int64)
    predicted = model_to_out[pred.class_index] if len(ids) else np.zeros(0, np.int64)
    index = predicted.copy()
    # A fixed-width string array: an object array converted to str costs ~40 ms on 16k objects,
    # and the overlay computes this on every label change.
    source = np.full(len(ids), MODEL, dtype="<U10")
    if labels and len(ids):
        query = np.fromiter(labels.keys(), np.int64, len(labels))
        pos = np.clip(np.searchsorted(ids, query), 0, len(ids) - 1)
        found = ids[pos] == query
        for row, obj, ok in zip(pos, query, found, strict=True):
            if ok:
                lab = labels[int(obj)]
                index[row] = position[lab.class_name]
                source[row] = lab.source
    return FinalClasses(
        pred.image,
        ids,
        tuple(names),
        index,
        predicted,
        source,
        np.asarray(pred.confidence, dtype=np.float64),
    )


def project_final_classes(project: Any, preds: Mapping[str, Any]) -> dict[str, FinalClasses]:
    """image -> FinalClasses of every prediction, with the project's current labels."""
    if not preds:
        return {}
    first = next(iter(preds.values()))
    names = result_classes(first.class_names, project.annotations.class_names)
    return {
        image: final_classes(p, project.annotations.for_image(image), names)
        for image, p in preds.items()
    }

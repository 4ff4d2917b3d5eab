"""Per-class results for plots: objects per class per image, and one measurement per class.

The Results panel draws these; they are computed from the final classes (``final_class``: the
person's label wins over the model) and the object measurements (``measurements``), and each
comes with the tidy CSV of exactly what is drawn (``csvsafe``: safe in a spreadsheet).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from svetlana.core.io.csvsafe import to_csv_text

log = logging.getLogger(__name__)

BINS = 30


@dataclass(frozen=True, eq=False)
class ClassCounts:
    """Objects of each class in each image (final classes)."""

    images: tuple[str, ...]
    class_names: tuple[str, ...]
    counts: np.ndarray  # (n_images, n_classes) int64

    @property
    def fractions(self) -> np.ndarray:
        """Share of each class among the objects of each image (0 for an image without any)."""
        total = self.counts.sum(axis=1, keepdims=True)
        return np.divide(
            self.counts, total, out=np.zeros(self.counts.shape, np.float64), where=total > 0
        )

    def csv_text(self) -> str:
        rows = []
        frac = self.fractions
        for i, im in enumerate(self.images):
            total = int(self.counts[i].sum())
            for k, c in enumerate(self.class_names):
                rows.append([im, c, int(self.counts[i, k]), total, round(float(frac[i, k]), 6)])
        return to_csv_text(["image", "class", "count", "objects", "fraction"], rows)


def class_counts(finals: Mapping[str, object]) -> ClassCounts:
    """``finals``: image -> ``FinalClasses`` (same class list for all, as the GUI makes them)."""
    if not finals:
        return ClassCounts((), (), np.zeros((0, 0), np.int64))
    names = tuple(next(iter(finals.values())).class_names)
    images = tuple(finals)
    counts = np.zeros((len(images), len(names)), np.int64)
    for i, f in enumerate(finals.values()):
        by_name = f.counts()
        counts[i] = [by_name.get(c, 0) for c in names]
    return ClassCounts(images, names, counts)


@dataclass(frozen=True, eq=False)
class ClassValues:
    """One measurement of every object, grouped by final class, and its histogram."""

    measurement: str
    unit: str
    class_names: tuple[str, ...]
    images: np.ndarray  # (n,) str, one per object
    ids: np.ndarray  # (n,) int64
    classes: np.ndarray  # (n,) int64, 0-based into class_names
    values: np.ndarray  # (n,) float64
    edges: np.ndarray  # (BINS + 1,) histogram bin edges (shared by every class)

    def of_class(self, k: int) -> np.ndarray:
        return self.values[self.classes == k]

    def histogram(self, k: int) -> np.ndarray:
        return np.histogram(self.of_class(k), bins=self.edges)[0]

    def csv_text(self) -> str:
        """Every object's value (the distribution's data), one row each."""
        rows = [
            [im, int(i), self.class_names[int(c)], float(v)]
            for im, i, c, v in zip(self.images, self.ids, self.classes, self.values, strict=True)
        ]
        head = self.measurement + (f" ({self.unit})" if self.unit else "")
        return to_csv_text(["image", "object", "class", head], rows)

    def histogram_csv_text(self) -> str:
        rows = []
        for k, c in enumerate(self.class_names):
            h = self.histogram(k)
            for b in range(len(h)):
                rows.append([c, float(self.edges[b]), float(self.edges[b + 1]), int(h[b])])
        return to_csv_text(["class", "bin_from", "bin_to", "objects"], rows)


def class_values(
    finals: Mapping[str, object], measurements: Mapping[str, object], name: str
) -> ClassValues:
    """Values of measurement ``name`` per object (``measurements``: image -> ``Measurements``)
    with each object's final class; objects without a measurement are left out."""
    names = tuple(next(iter(finals.values())).class_names) if finals else ()
    imgs, ids, cls, vals = [], [], [], []
    unit = ""
    for image, f in finals.items():
        m = measurements.get(image)
        if m is None or name not in m.names:
            continue
        col = m.names.index(name)
        unit = m.units[col]
        pos = np.clip(np.searchsorted(m.ids, f.ids), 0, max(len(m.ids) - 1, 0))
        found = m.ids[pos] == f.ids if len(m.ids) else np.zeros(len(f.ids), bool)
        imgs.append(np.full(int(found.sum()), image, dtype=object))
        ids.append(np.asarray(f.ids)[found])
        cls.append(np.asarray(f.index)[found] - 1)
        vals.append(m.values[pos[found], col].astype(np.float64))
    values = np.concatenate(vals) if vals else np.zeros(0)
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return ClassValues(
        name,
        unit,
        names,
        np.concatenate(imgs).astype(str) if imgs else np.zeros(0, str),
        np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
        np.concatenate(cls).astype(np.int64) if cls else np.zeros(0, np.int64),
        values,
        np.linspace(lo, hi, BINS + 1),
    )

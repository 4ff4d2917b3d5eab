"""One table of every object of a project's images: its measurements and the user's label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, ProgressFn

log = logging.getLogger(__name__)

UNLABELLED = -1


@dataclass(frozen=True, eq=False)
class LabelTable:
    """Rows = objects of ``images`` (image by image, ids ascending); ``labels`` index
    ``class_names`` (``UNLABELLED`` = -1 where the user gave no label)."""

    images: tuple[str, ...]
    image_index: np.ndarray  # (n,) int64 position in ``images``
    ids: np.ndarray  # (n,) int64 object ids
    feature_names: tuple[str, ...]
    values: np.ndarray  # (n, f) float32 measurements
    labels: np.ndarray  # (n,) int64
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> np.ndarray:
        """Row indices of the labelled objects."""
        return np.flatnonzero(self.labels >= 0)

    @property
    def unlabelled(self) -> np.ndarray:
        return np.flatnonzero(self.labels < 0)

    def classes_labelled(self) -> list[int]:
        """Class indices with at least one label."""
        return sorted(int(c) for c in np.unique(self.labels[self.labels >= 0]))

    def image_of(self, row: int) -> str:
        return self.images[int(self.image_index[row])]

    def with_labels(self, labels: np.ndarray) -> LabelTable:
        """The same objects with other labels (benchmarks, the live preview)."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != self.labels.shape:
            raise ValueError("one label per row")
        return LabelTable(
            self.images, self.image_index, self.ids, self.feature_names, self.values,
            labels, self.class_names,
        )  # fmt: skip


def from_arrays(
    values: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    feature_names: Sequence[str] | None = None,
    ids: np.ndarray | None = None,
    image: str = "image",
) -> LabelTable:
    """A one-image table from arrays (tests, benchmarks)."""
    values = np.asarray(values, dtype=np.float32)
    n = len(values)
    names = tuple(feature_names or (f"m{i}" for i in range(values.shape[1])))
    return LabelTable(
        (image,), np.zeros(n, np.int64),
        np.arange(1, n + 1, dtype=np.int64) if ids is None else np.asarray(ids, np.int64),
        names, values, np.asarray(labels, np.int64), tuple(class_names),
    )  # fmt: skip


def check_images(project, images: Sequence[str] | None) -> list[str]:
    """The project's images named (all by default), or one clear error."""
    names = list(project.image_names)
    if not names:
        raise InputError("the project has no images yet; add an image first", project.path)
    if not images:
        return names
    unknown = [im for im in images if im not in names]
    if unknown:
        raise InputError(
            f"no image named {', '.join(map(repr, unknown))} (images: {', '.join(names)})",
            project.path,
        )
    return list(dict.fromkeys(images))


def project_table(
    project,
    images: Sequence[str] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LabelTable:
    """Measurements (cached in the bundle) and labels of every object of ``images``."""
    from svetlana.core.objects.measurement_cache import project_measurements

    names = check_images(project, images)
    class_names = tuple(project.annotations.class_names)
    index = {c: i for i, c in enumerate(class_names)}
    parts_values, parts_ids, parts_img, parts_labels = [], [], [], []
    feature_names: tuple[str, ...] | None = None
    for k, name in enumerate(names):
        m = project_measurements(project, name, progress=progress, cancel=cancel)
        if feature_names is None:
            feature_names = tuple(m.names)
        elif tuple(m.names) != feature_names:
            raise InputError(
                "the images give different measurements (channels or dimensions differ); "
                "name the images to use with --image",
                project.path,
            )
        ids = np.asarray(m.ids, dtype=np.int64)
        labels = np.full(len(ids), UNLABELLED, np.int64)
        pos = {int(i): r for r, i in enumerate(ids)}
        for obj, lab in project.annotations.for_image(name).items():
            r = pos.get(int(obj))
            c = index.get(lab.class_name)
            if r is not None and c is not None:
                labels[r] = c
        parts_values.append(np.asarray(m.values, dtype=np.float32))
        parts_ids.append(ids)
        parts_img.append(np.full(len(ids), k, np.int64))
        parts_labels.append(labels)
    return LabelTable(
        tuple(names), np.concatenate(parts_img), np.concatenate(parts_ids),
        feature_names or (), np.concatenate(parts_values), np.concatenate(parts_labels),
        class_names,
    )  # fmt: skip

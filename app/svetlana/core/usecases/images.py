"""Managing a project's images: what removing one takes with it, removing it, setting its voxel
size (`svetlana remove-image`, `svetlana set-spacing`, the GUI's Images menu)."""

from __future__ import annotations

from dataclasses import dataclass

from svetlana.core.errors import InputError
from svetlana.core.wording import plural


@dataclass(frozen=True)
class Removal:
    """What removing an image takes with it (shown before anything is removed)."""

    image: str
    labels: dict[str, int]  # class -> labels of this image

    @property
    def n_labels(self) -> int:
        return sum(self.labels.values())

    def labels_text(self) -> str:
        """'3 labels (a: 1, b: 2)'."""
        per_class = ", ".join(f"{k}: {v}" for k, v in self.labels.items() if v)
        return f"{plural(self.n_labels, 'label')} ({per_class})" if self.n_labels else "no labels"

    def describe(self) -> str:
        return f"image {self.image!r} has {self.labels_text()}"


def plan_removal(project, name: str) -> Removal:
    project.image(name)  # a clear error for an unknown name
    counts = {k: v for k, v in project.annotations.counts(name).items() if v}
    return Removal(name, counts)


def remove_image(project, name: str, confirmed: bool = False) -> Removal:
    """Remove an image, its mask and its labels from the project. An image with labels is
    removed only when ``confirmed`` (the caller asked the user: the labels go with it)."""
    removal = plan_removal(project, name)
    if removal.n_labels and not confirmed:
        raise InputError(
            f"{removal.describe()}; they would be removed with it: repeat with --yes to remove "
            "them, or export them first (svetlana export-labels)"
        )
    project.remove_image(name)
    return removal


def set_spacing(project, name: str, spacing: tuple[float, ...] | None):
    """Record an image's voxel size; its measurements are recomputed when next needed. A model
    trained before keeps the spacing it was trained with (train again to use the new one)."""
    return project.set_spacing(name, spacing)

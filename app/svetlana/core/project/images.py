"""The images of a bundle: what the manifest records of each (ImageEntry), an image loaded with
its mask and object table (LoadedImage), and inputs read and checked before they are copied in
(PreparedImage, prepared in a worker)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import (
    InputError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageEntry:
    """One image of the project as recorded in the manifest."""

    name: str
    image_file: str
    mask_file: str
    axes: str
    spacing: tuple[float, ...] | None
    shape: tuple[int, ...]
    channels: int
    n_objects: int
    dtype: str
    source_image: str = ""
    source_mask: str = ""
    was_binary: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "image_file": self.image_file,
            "mask_file": self.mask_file,
            "axes": self.axes,
            "spacing": list(self.spacing) if self.spacing else None,
            "shape": list(self.shape),
            "channels": self.channels,
            "n_objects": self.n_objects,
            "dtype": self.dtype,
            "source_image": self.source_image,
            "source_mask": self.source_mask,
            "was_binary": self.was_binary,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ImageEntry:
        sp = d.get("spacing")
        return cls(
            name=str(d["name"]),
            image_file=str(d["image_file"]),
            mask_file=str(d["mask_file"]),
            axes=str(d.get("axes", "")),
            spacing=tuple(float(v) for v in sp) if sp else None,
            shape=tuple(int(v) for v in d["shape"]),
            channels=int(d["channels"]),
            n_objects=int(d["n_objects"]),
            dtype=str(d.get("dtype", "")),
            source_image=str(d.get("source_image", "")),
            source_mask=str(d.get("source_mask", "")),
            was_binary=bool(d.get("was_binary", False)),
        )


@dataclass(eq=False)
class LoadedImage:
    """An image of the project in memory: channel-first pixels, labels, and its object table.

    Everything that depends on where the pixels live is a method here, overridden by
    ``LargeImage`` (read tile by tile): callers never branch on the kind of image.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, ...] | None
    _table: Any = None
    _normalised: np.ndarray | None = None
    _norm: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def table(self):
        if self._table is None:
            from svetlana.core.objects.table import compute_objects

            self._table = compute_objects(self.labels, self.image)
        return self._table

    @property
    def normalisation(self):
        if self._norm is None:
            self._norm = self._fit_normalisation()
        return self._norm

    def _fit_normalisation(self):
        from svetlana.core.objects.patches import fit_normalisation

        return fit_normalisation(self.image)

    @property
    def normalised(self) -> np.ndarray:
        if self._normalised is None:
            from svetlana.core.objects.patches import apply_normalisation

            self._normalised = apply_normalisation(self.image, self.normalisation)
        return self._normalised

    @property
    def measured_ids(self) -> np.ndarray | None:
        """The ``ids`` to measure every object with: None, the whole mask in one pass."""
        return None

    def prepare(self, *, pixels: bool) -> None:
        """Compute now what workers will only read (the table; the normalised pixels)."""
        self.table  # noqa: B018
        if pixels:
            self.normalised  # noqa: B018

    def patches(self, ids, size: int) -> np.ndarray:
        """The patches ``(n, C+1, *patch)`` of ``ids``, in that order, as training sees them."""
        from svetlana.core.objects.patches import extract_patches

        return extract_patches(self.normalised, self.labels, self.table, ids, size, self.spacing)

    def patch_source(self, size: int):
        """``(source, order)``: patches of every object of the table; row ``i`` of the source
        is the object at row ``order[i]`` of the table."""
        from svetlana.core.objects.patches import PatchSource

        table = self.table
        source = PatchSource(self.normalised, self.labels, table, table.ids, size, self.spacing)
        return source, slice(None)

    def object_patch(self, obj: int, size: int) -> np.ndarray:
        """One object's patch ``(C+1, *patch)`` as training and prediction see it, cut around
        the object."""
        from svetlana.core.objects.patches import object_patch

        return object_patch(self.normalised, self.labels, self.table, obj, size, self.spacing)

    def display(self) -> tuple[int, np.ndarray, np.ndarray]:
        """``(k, image, labels)`` to show: every k-th pixel along Y and X."""
        return 1, self.image, self.labels


@dataclass(eq=False)
class LargeImage(LoadedImage):
    """A larger-than-memory image (OME-Zarr, large tiled TIFF): ``image`` and ``labels`` are
    lazy arrays, read tile by tile; never normalised or measured whole."""

    def _fit_normalisation(self):
        from svetlana.core.objects.lazy import fit_normalisation_lazy

        return fit_normalisation_lazy(self.image)  # from a regular subsample

    @property
    def normalised(self) -> np.ndarray:
        raise TypeError("a larger-than-memory image is normalised tile by tile, never whole")

    @property
    def measured_ids(self) -> np.ndarray | None:
        return self.table.ids  # measured band by band

    def prepare(self, *, pixels: bool) -> None:
        self.table  # noqa: B018 - pixels are read by the workers, tile by tile

    def patches(self, ids, size: int) -> np.ndarray:
        from svetlana.core.objects.lazy import extract_patches_lazy

        return extract_patches_lazy(
            self.image, self.labels, self.table, ids, size, self.normalisation, self.spacing
        )

    def patch_source(self, size: int):
        from svetlana.core.objects.lazy import LazyPatchSource

        source = LazyPatchSource(
            self.image, self.labels, self.table, size, self.normalisation, self.spacing
        )
        return source, source.order

    def object_patch(self, obj: int, size: int) -> np.ndarray:
        return self.patches([obj], size)[0]

    def display(self) -> tuple[int, np.ndarray, np.ndarray]:
        from svetlana.core.objects.lazy import preview_pair

        return preview_pair(self)


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """An image and mask read, checked and measured, not yet in any project (thread-safe)."""

    name: str
    image_path: Path
    mask_path: Path
    image: Any  # images.ImageData
    mask: Any  # images.MaskData
    table: Any  # objects.ObjectTable


def default_image_name(image_path: str | Path) -> str:
    from svetlana.core.io.folders import file_stem

    return file_stem(image_path)


def prepare_image(
    image_path: str | Path,
    mask_path: str | Path,
    name: str | None = None,
    axes: str | None = None,
    spacing: tuple[float, ...] | None = None,
    force_mask: bool = False,
) -> PreparedImage:
    """Read and check an image/mask pair and measure its objects: the slow part of adding an
    image, touching no project, so the GUI can run it off the main thread.

    A mask that looks like an intensity image (swapped arguments) is refused unless
    ``force_mask``; a JPEG mask always."""
    from svetlana.core.io.images import read_pair
    from svetlana.core.io.mask_checks import check_label_mask
    from svetlana.core.objects.table import compute_objects

    image_path, mask_path = Path(image_path), Path(mask_path)
    name = check_image_name(name if name is not None else default_image_name(image_path))
    img, mask = read_pair(image_path, mask_path, axes=axes, spacing=spacing)
    if not force_mask:
        check_label_mask(mask, image_path)
    table = compute_objects(np.ascontiguousarray(mask.labels), np.ascontiguousarray(img.data))
    return PreparedImage(name, image_path, mask_path, img, mask, table)


def prepare_images(pairs, progress=None, cancel=None) -> list[PreparedImage]:
    """``prepare_image`` for each (image, mask, name[, axes[, force_mask]]) pair, with progress
    and cancel."""
    from svetlana.core.jobs import Progress

    prepared = []
    for k, (image, mask, name, *rest) in enumerate(pairs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(Progress("read", k, len(pairs), f"Reading {Path(image).name}…"))
        axes = rest[0] if rest else None
        force = bool(rest[1]) if len(rest) > 1 else False
        prepared.append(prepare_image(image, mask, name or None, axes, force_mask=force))
    return prepared


def check_image_name(name: str) -> str:
    name = name.strip()
    if (
        not name
        or name.startswith(".")
        or any(c in name for c in '/\\:*?"<>|\n\r\t,')
        or len(name) > 100
    ):
        raise InputError(
            f"image name {name!r} is not usable: use up to 100 letters, digits, spaces, '-', '_' or '.'"
        )
    return name

"""Annotated patches for other tools: every labelled object's patch (npz + CSV, or TIFF per class)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.io.csvsafe import to_csv_text
from svetlana.core.io.fileio import (
    atomic_open,
    atomic_write_text,
    atomic_write_with,
)
from svetlana.core.io.outputs import NAMES_KEY, output_stems, renamed
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project.bundle import Project
from svetlana.core.project.provenance import write_run_record

log = logging.getLogger(__name__)

PATCHES_NPZ = "patches.npz"
PATCHES_CSV = "patches.csv"


@dataclass(frozen=True, eq=False)
class PatchSet:
    """Labelled patches as the network sees them (see ``export_patches``)."""

    patches: np.ndarray  # (N, C+1, *patch_shape) float32, last channel = object mask
    labels: np.ndarray  # (N,) int64, index into class_names
    class_names: tuple[str, ...]
    images: np.ndarray  # (N,) str
    object_ids: np.ndarray  # (N,) int64
    patch_size: int


@dataclass(frozen=True)
class PatchExport:
    out_dir: Path
    npz: Path
    csv: Path
    n: int
    class_counts: Mapping[str, int]
    patch_size: int
    patch_shape: tuple[int, ...]
    tiff_files: int


def export_patches(
    project: Project,
    out_dir: str | Path,
    patch_size: int | str | None = "auto",
    *,
    tiff: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PatchExport:
    """Every labelled object's patch with its class: ``patches.npz`` + ``patches.csv`` index,
    and with ``tiff`` one ImageJ TIFF per patch in ``<class>/<image>_<id>.tif``."""
    from svetlana.core.usecases.train import training_set

    progress = progress or no_progress
    cancel = ensure_token(cancel)
    data = training_set(project, patch_size, progress)
    cancel.raise_if_cancelled()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    images = np.array([k[0] for k in data.keys], dtype=str)
    ids = np.array([k[1] for k in data.keys], dtype=np.int64)
    arrays = {
        "patches": np.ascontiguousarray(data.patches, dtype=np.float32),
        "labels": data.labels.astype(np.int64),
        "class_names": np.array(data.class_names, dtype=str),
        "images": images,
        "object_ids": ids,
        "patch_size": np.array(data.patch_size, dtype=np.int64),
    }
    npz = out_dir / PATCHES_NPZ
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(npz, "wb") as f:
        np.savez_compressed(f, **arrays)
    store = project.annotations
    rows = []
    for row, ((im, obj), y) in enumerate(zip(data.keys, data.labels, strict=True)):
        lab = store.get(im, obj)
        rows.append([row, im, obj, data.class_names[y], lab.source if lab else ""])
    csv_path = out_dir / PATCHES_CSV
    atomic_write_text(csv_path, to_csv_text(["row", "image", "object", "class", "source"], rows))
    image_stems = output_stems(k[0] for k in data.keys)  # `a b` and `a_b`: two names
    class_stems = output_stems(data.class_names)
    renames = {**renamed(image_stems), **renamed(class_stems)} if tiff else {}
    write_run_record(
        out_dir,
        kind="labelled patches",
        model_id="",
        model_dir=None,
        images=sorted({k[0] for k in data.keys}),
        classes=data.class_names,
        extra={
            "patch_size": data.patch_size,
            "labels": len(data.labels),
            **({NAMES_KEY: renames} if renames else {}),
        },
    )
    n_tiff = 0
    if tiff:
        import tifffile

        for row, ((im, obj), y) in enumerate(zip(data.keys, data.labels, strict=True)):
            if row % 64 == 0:
                cancel.raise_if_cancelled()
            patch = arrays["patches"][row]
            # ImageJ hyperstack order: (C, Y, X) in 2D, (Z, C, Y, X) in 3D.
            stack, axes = (patch, "CYX") if data.ndim == 2 else (np.moveaxis(patch, 0, 1), "ZCYX")
            path = out_dir / class_stems[data.class_names[y]] / f"{image_stems[im]}_{obj}.tif"
            atomic_write_with(
                path,
                lambda p, s=stack, a=axes: tifffile.imwrite(
                    p, s, imagej=True, metadata={"axes": a}
                ),
            )
            n_tiff += 1
        progress(Progress("export", 1, 1, f"{n_tiff} patch TIFFs"))
    counts = {c: int((data.labels == k).sum()) for k, c in enumerate(data.class_names)}
    return PatchExport(
        out_dir,
        npz,
        csv_path,
        len(data.labels),
        counts,
        data.patch_size,
        tuple(int(s) for s in data.patches.shape[2:]),
        n_tiff,
    )


def load_patches(path: str | Path) -> PatchSet:
    """Read a ``patches.npz`` written by ``export_patches`` (no pickled objects are accepted)."""
    path = Path(path)
    if path.is_dir():
        path = path / PATCHES_NPZ
    try:
        with np.load(path, allow_pickle=False) as z:
            return PatchSet(
                patches=z["patches"],
                labels=z["labels"],
                class_names=tuple(str(c) for c in z["class_names"]),
                images=z["images"],
                object_ids=z["object_ids"],
                patch_size=int(z["patch_size"]),
            )
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"not a Svetlana patches file ({exc})", path) from None

"""Filtered and per-class masks: keep the objects of chosen classes (and confidence), in the
format of the input mask.

~470 lines: the choice of objects, the output format that follows the input mask's, and the
writing of every mask share the same per-image loop and summary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from svetlana.core.annotations.final_class import (
    FinalClasses,
    final_classes,
    project_final_classes,
    result_classes,
)
from svetlana.core.errors import InputError
from svetlana.core.io.csvsafe import to_csv_text
from svetlana.core.io.fileio import atomic_write_text, atomic_write_with
from svetlana.core.io.outputs import NAMES_KEY, output_folder, output_stems, renamed
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project.bundle import Project
from svetlana.core.project.images import ImageEntry
from svetlana.core.project.provenance import write_run_record

log = logging.getLogger(__name__)

FILTERED_SUFFIX = "_filtered"
SUMMARY_CSV = "filter_summary.csv"

_TIFF = (".tif", ".tiff")
_PNG_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_PIL_MODE_DTYPE = {
    "1": np.bool_,
    "L": np.uint8,
    "P": np.uint8,
    "LA": np.uint8,
    "RGB": np.uint8,
    "RGBA": np.uint8,
    "I;16": np.uint16,
    "I;16L": np.uint16,
    "I;16B": np.uint16,
    "I": np.int32,
    "F": np.float32,
}


# ---- which objects to keep -------------------------------------------------------------


def check_classes(keep: Iterable[str], class_names: Sequence[str]) -> frozenset[str]:
    """The chosen class names, refused with the list of classes when one is unknown."""
    keep = frozenset(str(k) for k in keep)
    unknown = sorted(keep - set(class_names))
    if unknown:
        raise InputError(
            f"unknown class {', '.join(map(repr, unknown))}; "
            f"the model's classes are {', '.join(class_names) or 'none'}"
        )
    return keep


def _check_confidence(min_confidence: float) -> float:
    value = float(min_confidence)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"the minimum confidence must be between 0 and 1, not {min_confidence}")
    return value


def keep_preview(
    pred, keep: Iterable[str], min_confidence: float = 0.0, labels: Mapping | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept_ids, removed_ids)`` of one image's prediction: cheap, for a live preview.

    An object is kept when its final class (``final_class``: the human label in ``labels``,
    else the model's prediction) is in ``keep`` and, for a class the model gave, the model's
    confidence is at least ``min_confidence`` (a class a person gave is never dropped for it).
    ``pred`` may also be a ``FinalClasses`` already computed.
    """
    final = pred if isinstance(pred, FinalClasses) else final_classes(pred, labels)
    keep = check_classes(keep, final.class_names)
    min_confidence = _check_confidence(min_confidence)
    ids = np.asarray(final.ids, dtype=np.int64)
    if len(ids) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    wanted = np.array([c in keep for c in final.class_names])
    mask = wanted[final.index - 1] & (final.human | (final.confidence >= min_confidence))
    return ids[mask], ids[~mask]


# ---- output format ---------------------------------------------------------------------


@dataclass(frozen=True)
class MaskFormat:
    """How masks of one image are written: file suffix and dtype."""

    suffix: str  # ".tif" or ".png"
    dtype: np.dtype
    source_dtype: str  # the user's mask file's dtype, "" when unknown


def _peek_dtype(path: Path) -> np.dtype | None:
    """The pixel type of a mask file without reading its pixels; ``None`` when unknown."""
    suffix = path.suffix.lower()
    try:
        if suffix in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return np.dtype(tif.series[0].dtype)
        if suffix == ".npy":
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                dtype = read(f)[2]
            return None if dtype.hasobject else np.dtype(dtype)
        from PIL import Image

        with Image.open(path) as im:
            dt = _PIL_MODE_DTYPE.get(im.mode)
        return np.dtype(dt) if dt is not None else None
    except Exception as exc:  # noqa: BLE001 - the source is only a hint; never block an export on it
        log.info("cannot read the pixel type of %s (%s); using the stored mask's", path, exc)
        return None


def mask_format(entry: ImageEntry, labels: np.ndarray) -> MaskFormat:
    """The format of the user's mask file (see the module docstring) for ``labels``' ids."""
    stored = np.dtype(labels.dtype)
    src_path = Path(entry.source_mask) if entry.source_mask else None
    src = _peek_dtype(src_path) if src_path is not None and src_path.is_file() else None
    if src is None:
        dtype = stored
    elif src.kind == "b":
        dtype = np.dtype(np.uint8)
    elif src.kind in "iu":
        dtype = src
    else:
        dtype = stored
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(dtype).max:
        wider = np.promote_types(dtype, np.min_scalar_type(top))
        log.info("%s: ids up to %d do not fit %s; writing %s", entry.name, top, dtype, wider)
        dtype = wider
    suffix = ".tif"
    if (
        src_path is not None
        and src_path.suffix.lower() == ".png"
        and dtype in _PNG_DTYPES
        and labels.ndim == 2
    ):
        suffix = ".png"
    return MaskFormat(suffix, np.dtype(dtype), str(src) if src is not None else "")


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Write a label mask atomically: PNG by suffix, else TIFF with its axes."""
    mask = np.ascontiguousarray(mask)
    if path.suffix.lower() == ".png":
        from PIL import Image

        atomic_write_with(path, lambda p: Image.fromarray(mask).save(p, format="PNG"))
        return
    import tifffile

    axes = "ZYX" if mask.ndim == 3 else "YX"
    atomic_write_with(
        path,
        lambda p: tifffile.imwrite(p, mask, photometric="minisblack", metadata={"axes": axes}),
    )


def _subset(labels: np.ndarray, ids: np.ndarray, dtype: np.dtype) -> np.ndarray:
    from svetlana.core.io.masks import filtered_mask

    return filtered_mask(labels, np.asarray(ids, dtype=np.int64)).astype(dtype, copy=False)


# ---- filtered and per-class masks ------------------------------------------------------


@dataclass(frozen=True)
class FilteredImage:
    """What one image's export kept and removed, and the files written."""

    image: str
    objects: int
    kept: int
    removed: int
    low_confidence: int  # removed only because their confidence was under the threshold
    class_counts: Mapping[str, int]  # final class -> objects (before the threshold)
    dtype: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class FilterSummary:
    out_dir: Path
    keep: tuple[str, ...]
    min_confidence: float
    model_id: str
    images: tuple[FilteredImage, ...]
    csv_path: Path
    per_class: tuple[str, ...] = ()
    files: tuple[Path, ...] = field(default=())
    note: str = ""  # e.g. "predicted now": said to the user

    @property
    def kept(self) -> int:
        return sum(i.kept for i in self.images)

    @property
    def removed(self) -> int:
        return sum(i.removed for i in self.images)


def _as_list(preds) -> list:
    if isinstance(preds, Mapping):
        return list(preds.values())
    return [preds] if hasattr(preds, "probs") else list(preds)


def write_filtered_masks(
    project: Project,
    preds,
    keep: Iterable[str],
    min_confidence: float = 0.0,
    out_dir: str | Path = ".",
    *,
    per_class: Iterable[str] | bool = False,
    model_id: str = "",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FilterSummary:
    """Write ``<image>_filtered`` masks (objects of the ``keep`` classes, original ids) and
    ``filter_summary.csv`` for every prediction in ``preds`` into one folder.

    ``per_class`` adds one mask per class, ``<image>_<class>``: ``True`` for every class, or
    the names of the classes wanted. ``keep`` may be empty when only per-class masks are wanted.
    Everything is checked before the first file is written.
    """
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    preds = _as_list(preds)
    if not preds:
        raise InputError("there are no predictions to export")
    if any(p.class_names != preds[0].class_names for p in preds):
        raise InputError("the predictions come from models with different classes")
    for p in preds:
        project.image(p.image)
    finals = project_final_classes(project, {p.image: p for p in preds})
    names = finals[preds[0].image].class_names
    keep = check_classes(keep, names)
    min_confidence = _check_confidence(min_confidence)
    if per_class is True:
        split = tuple(names)
    elif per_class is False or per_class is None:
        split = ()
    else:
        chosen = check_classes(per_class, names)
        split = tuple(c for c in names if c in chosen)
    if not keep and not split:
        raise InputError(f"choose the classes to keep (classes: {', '.join(names)})")
    class_stems = output_stems(split)
    if keep and FILTERED_SUFFIX[1:].lower() in {v.lower() for v in class_stems.values()}:
        raise InputError(
            "a class named 'filtered' would share its file name with the filtered mask; "
            "rename the class or export the masks separately"
        )
    by_image = output_stems(p.image for p in preds)
    stems = [by_image[p.image] for p in preds]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)

    keep_order = tuple(c for c in names if c in keep)
    results: list[FilteredImage] = []
    files: list[Path] = []
    for k, pred in enumerate(preds):
        cancel.raise_if_cancelled()
        loaded = project.load(pred.image)
        labels = loaded.labels
        fmt = mask_format(project.image(pred.image), labels)
        written: list[Path] = []
        kept = removed = low = 0
        final = finals[pred.image]
        if keep:
            kept_ids, removed_ids = keep_preview(final, keep, min_confidence)
            kept, removed = len(kept_ids), len(removed_ids)
            all_kept, _ = keep_preview(final, keep, 0.0)
            low = len(all_kept) - kept
            path = out_dir / f"{stems[k]}{FILTERED_SUFFIX}{fmt.suffix}"
            write_mask(path, _subset(labels, kept_ids, fmt.dtype))
            written.append(path)
        for cname in split:
            ids, _ = keep_preview(final, {cname}, min_confidence)
            path = out_dir / f"{stems[k]}_{class_stems[cname]}{fmt.suffix}"
            write_mask(path, _subset(labels, ids, fmt.dtype))
            written.append(path)
        results.append(
            FilteredImage(
                pred.image,
                len(pred.ids),
                kept,
                removed,
                low,
                final.counts(),
                str(fmt.dtype),
                tuple(written),
            )
        )
        files.extend(written)
        progress(Progress("export", k + 1, len(preds), f"masks of {pred.image}"))
    csv_path = out_dir / SUMMARY_CSV
    atomic_write_text(
        csv_path, _summary_csv(results, names, keep_order, min_confidence, model_id, out_dir)
    )
    files.append(csv_path)
    files.append(
        write_run_record(
            out_dir,
            kind="filtered masks",
            model_id=model_id,
            model_dir=project.models.dir(model_id) if model_id else None,
            images=[p.image for p in preds],
            classes=names,
            extra={
                "keep": list(keep_order),
                "min_confidence": min_confidence,
                **({NAMES_KEY: renamed(by_image)} if renamed(by_image) else {}),
            },
        )
    )
    return FilterSummary(
        out_dir,
        keep_order,
        min_confidence,
        model_id,
        tuple(results),
        csv_path,
        split,
        tuple(files),
    )


def _summary_csv(
    results: list[FilteredImage],
    class_names: Sequence[str],
    keep: Sequence[str],
    min_confidence: float,
    model_id: str,
    out_dir: Path,
) -> str:
    fields = ["image", "objects", "kept", "removed", "low_confidence"]
    fields += [f"n_{c}" for c in class_names]
    fields += ["keep", "min_confidence", "model", "dtype", "files"]
    return to_csv_text(
        fields,
        (
            {
                "image": r.image,
                "objects": r.objects,
                "kept": r.kept,
                "removed": r.removed,
                "low_confidence": r.low_confidence,
                **{f"n_{c}": r.class_counts.get(c, 0) for c in class_names},
                "keep": ";".join(keep),
                "min_confidence": min_confidence,
                "model": model_id,
                "dtype": r.dtype,
                "files": ";".join(str(p.relative_to(out_dir)) for p in r.files),
            }
            for r in results
        ),
    )


def saved_predictions(project: Project, model_id: str, images: Sequence[str]) -> dict | None:
    """``results.saved_predictions`` (kept here for its callers)."""
    from svetlana.core.usecases.results import saved_predictions as read_saved

    return read_saved(project, model_id, images)


def project_predictions(
    project: Project,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[str, dict]:
    """``(model_id, image -> ImagePrediction)``: see ``results.project_predictions``."""
    from svetlana.core.usecases.results import project_predictions as get

    got = get(project, model_id, images, device=device, progress=progress, cancel=cancel)
    return got.model_id, got.predictions


def _moved(summary: FilterSummary, tmp: Path, final: Path) -> FilterSummary:
    """The summary with the paths of the files in ``tmp`` as they are after the swap."""

    def at(p: Path) -> Path:
        return final / p.relative_to(tmp)

    images = tuple(replace(r, files=tuple(map(at, r.files))) for r in summary.images)
    return replace(
        summary, out_dir=final, images=images, csv_path=at(summary.csv_path),
        files=tuple(map(at, summary.files)),
    )  # fmt: skip


def export_filtered(
    project: Project,
    keep: Iterable[str],
    out_dir: str | Path,
    *,
    min_confidence: float = 0.0,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    per_class: Iterable[str] | bool = False,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FilterSummary:
    """The whole use-case: check the arguments, get predictions, write the masks and summary."""
    model_id = project.models.resolve(model_id)
    names = result_classes(
        project.models.card(model_id).get("classes", ()), project.annotations.class_names
    )
    keep = check_classes(keep, names)
    if per_class not in (True, False, None):
        check_classes(per_class, names)
    _check_confidence(min_confidence)
    if not keep and not per_class:
        raise InputError(f"choose the classes to keep (classes: {', '.join(names)})")
    for n in images or ():
        project.image(n)
    from svetlana.core.io.outputs import check_output_folder
    from svetlana.core.usecases.results import project_predictions as get

    final = check_output_folder(out_dir, "filtered masks")
    got = get(project, model_id, images, device=device, progress=progress, cancel=cancel)
    with output_folder(final, "filtered masks") as tmp:  # swapped in whole
        summary = write_filtered_masks(
            project,
            got.predictions,
            keep,
            min_confidence,
            tmp,
            per_class=per_class,
            model_id=got.model_id,
            progress=progress,
            cancel=cancel,
        )
    return replace(_moved(summary, tmp, final), note=got.note)

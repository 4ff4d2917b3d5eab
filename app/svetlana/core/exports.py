"""Use a classifier's results outside Svetlana: filtered and per-class masks, patches, ONNX model.

Filtered masks keep the *original* object ids: a kept object has the same value as in the mask
the user imported, so the result opens as a cleaned segmentation in Fiji, napari or Cellpose.
A binary mask was split into connected components on import; its objects then carry the
component ids the bundle gave them (the ids shown in Svetlana and in predictions.csv).

Output format follows the user's mask file when it is still where it was imported from: the
same integer dtype (widened only if the ids do not fit, e.g. a binary ``bool`` mask split into
more than 255 components), and a PNG for a PNG mask of ``uint8``/``uint16`` (Cellpose
``_cp_masks.png``); everything else is written as TIFF. A float mask (some tools save labels as
float) is written with the integer dtype of the bundle, so viewers open it as labels. When the
source file is gone the dtype of the stored mask (int32) is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from svetlana.core.csvsafe import to_csv_text
from svetlana.core.errors import InputError, ProjectError
from svetlana.core.fileio import (
    atomic_open,
    atomic_write_text,
    atomic_write_with,
)
from svetlana.core.final_class import (
    FinalClasses,
    final_classes,
    project_final_classes,
    result_classes,
)
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project import ImageEntry, Project, now_iso
from svetlana.core.provenance import card_digest, read_run_record, write_run_record

log = logging.getLogger(__name__)

FILTERED_SUFFIX = "_filtered"
SUMMARY_CSV = "filter_summary.csv"
PATCHES_NPZ = "patches.npz"
PATCHES_CSV = "patches.csv"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
README_FILE = "README.txt"

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


def safe_name(name: str) -> str:
    """A file-name-safe form of an image or class name."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "_"


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
    except Exception as exc:  # the source is only a hint; never block an export on it
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
    from svetlana.core.prediction import filtered_mask

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
    suffixes = [safe_name(c) for c in split] + ([FILTERED_SUFFIX[1:]] if keep else [])
    if len(set(suffixes)) != len(suffixes):
        raise InputError(
            "two masks of an image would get the same file name (a class is named like "
            "another or 'filtered'); rename the class or export the masks separately"
        )
    stems = [safe_name(p.image) for p in preds]
    if len(set(stems)) != len(stems):
        raise InputError("two images would get the same file name; export them separately")
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
            path = out_dir / f"{stems[k]}_{safe_name(cname)}{fmt.suffix}"
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
            model_dir=project.model_dir(model_id) if model_id else None,
            images=[p.image for p in preds],
            classes=names,
            extra={"keep": list(keep_order), "min_confidence": min_confidence},
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
    """The bundle's saved predictions of ``model_id`` for ``images`` (image -> ImagePrediction),
    or ``None`` when some are missing or older than the model."""
    from svetlana.core.predicting import ImagePrediction, read_predictions
    from svetlana.core.prediction import uncertainty

    path = project.predictions_dir / model_id / "predictions.csv"
    card_path = project.model_dir(model_id) / "card.json"
    try:
        if not path.is_file():
            return None
        record = read_run_record(path.parent)
        digest = (record or {}).get("model_card_sha256")
        if digest:  # the folder names the exact card it was made with
            if digest != card_digest(card_path.parent):
                return None
        elif path.stat().st_mtime < card_path.stat().st_mtime:
            return None
        class_names = tuple(project.model_card(model_id)["classes"])
        saved = read_predictions(path)
        out = {}
        for name in images:
            rows = saved.get(name)
            table = project.load(name).table
            if rows is None or sorted(rows) != [int(i) for i in table.ids]:
                return None
            probs = np.array(
                [[float(rows[int(i)][f"p_{c}"]) for c in class_names] for i in table.ids],
                dtype=np.float32,
            ).reshape(len(table.ids), len(class_names))
            out[name] = ImagePrediction(name, table, probs, class_names, uncertainty(probs))
        return out
    except (OSError, KeyError, ValueError, TypeError) as exc:
        log.info("saved predictions of %s not usable (%s); predicting again", model_id, exc)
        return None


def project_predictions(
    project: Project,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[str, dict]:
    """``(model_id, image -> ImagePrediction)``: the saved predictions when they are complete,
    else a fresh prediction in memory (nothing is written)."""
    from svetlana.core.predicting import image_progress, load_model, predict_loaded

    progress = progress or no_progress
    cancel = ensure_token(cancel)
    model_id = project.resolve_model(model_id)
    names = list(images) if images else list(project.image_names)
    if not names:
        raise InputError("the project has no images", project.path)
    for n in names:
        project.image(n)
    saved = saved_predictions(project, model_id, names)
    if saved is not None:
        log.info("using the saved predictions of %s", model_id)
        return model_id, saved
    model, card = load_model(project, model_id)
    out = {}
    for k, name in enumerate(names):
        cancel.raise_if_cancelled()
        loaded = project.load(name)

        sub = image_progress(progress, k, len(names), name)

        out[name] = predict_loaded(
            model, card, loaded, device=device, progress=sub, cancel=cancel, project=project
        )
    return model_id, out


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
    model_id = project.resolve_model(model_id)
    names = result_classes(
        project.model_card(model_id).get("classes", ()), project.annotations.class_names
    )
    keep = check_classes(keep, names)
    if per_class not in (True, False, None):
        check_classes(per_class, names)
    _check_confidence(min_confidence)
    if not keep and not per_class:
        raise InputError(f"choose the classes to keep (classes: {', '.join(names)})")
    for n in images or ():
        project.image(n)
    model_id, preds = project_predictions(
        project, model_id, images, device=device, progress=progress, cancel=cancel
    )
    return write_filtered_masks(
        project,
        preds,
        keep,
        min_confidence,
        out_dir,
        per_class=per_class,
        model_id=model_id,
        progress=progress,
        cancel=cancel,
    )


# ---- annotated patches -----------------------------------------------------------------


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
    from svetlana.core.workflows import training_set

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
    write_run_record(
        out_dir,
        kind="labelled patches",
        model_id="",
        model_dir=None,
        images=sorted({k[0] for k in data.keys}),
        classes=data.class_names,
        extra={"patch_size": data.patch_size, "labels": len(data.labels)},
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
            path = out_dir / safe_name(data.class_names[y]) / f"{safe_name(im)}_{obj}.tif"
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


# ---- model exchange --------------------------------------------------------------------

_README = """\
Svetlana model {model_id}, exported {created}.
Classes, in output order: {classes}

Files
  model.onnx   the network as ONNX (operators and weights, no code): runs in any ONNX runtime
  weights.pt   the same weights as a plain PyTorch state_dict ({architecture}); fine-tune them
               in another project with:  svetlana train OTHER.svetlana --arch weights.pt
  card.json    classes, patch size, normalisation, training settings and metrics

Input "patches": float32 (N, {in_channels}, {shape_text}) = (N, C+1, {axes_text}).
  {image_channels}: the image around the object's centroid (rounded), normalised per
  image and per channel: (x - p1) / (p99.8 - p1), clipped to [-1, 5], where p1 and p99.8
  are the 1st and 99.8th percentiles of that channel over the whole image (subsampled to
  about two million pixels on big images). Pixels outside the image are 0.
  Channel {mask_channel} (last): 1 on the pixels of the object, 0 elsewhere.
  Patch size {patch_size} px{spacing_note}.
Output "logits": (N, {n_classes}); softmax over dim 1 gives the probability of each class.

Run it without Svetlana (pip install onnxruntime numpy):

    import numpy as np, onnxruntime as ort
    session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    patches = np.zeros((1, {in_channels}, {shape_text}), np.float32)  # fill as described above
    logits = session.run(["logits"], {{"patches": patches}})[0]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    classes = {classes_list}
    print(classes[p.argmax(1)[0]], p.max(1)[0])
"""


@dataclass(frozen=True)
class ModelExport:
    model_id: str
    out_dir: Path
    files: tuple[Path, ...]


def export_model(project: Project, out_dir: str | Path, model_id: str | None = None) -> ModelExport:
    """Write ``model.onnx``, ``weights.pt`` (state_dict), ``card.json`` and ``README.txt``.

    The ONNX file runs without Svetlana; the folder is also a model Svetlana loads
    (``models.load_checkpoint``) and ``weights.pt`` a network for ``train --arch``.
    """
    from svetlana.core.models import save_checkpoint
    from svetlana.core.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
    from svetlana.core.predicting import load_model

    model_id = project.resolve_model(model_id)
    model, card = load_model(project, model_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    from svetlana.core.forest import is_forest

    if is_forest(card):
        return _export_forest(project, model_id, card, out_dir)
    try:
        in_channels = int(card["in_channels"])
        shape = tuple(int(s) for s in card["patch_shape"])
        classes = [str(c) for c in card["classes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError(f"the model card lacks {exc}", project.model_dir(model_id)) from exc
    example = np.zeros((2, in_channels, *shape), np.float32)
    onnx_path = out_dir / ONNX_FILE
    export_onnx(model, example, onnx_path)
    new_card = {
        **card,
        "exported_from": {"project": project.name, "model": model_id, "date": now_iso()},
        "input_layout": "N, C+1, " + ("Z, Y, X" if len(shape) == 3 else "Y, X"),
        "onnx": {"file": ONNX_FILE, "input": INPUT_NAME, "output": OUTPUT_NAME, "opset": OPSET},
    }
    save_checkpoint(out_dir, model, new_card)  # weights.pt, then card.json
    spacing = ""
    if len(shape) == 3:
        spacing = f" in Y/X; {shape[0]} planes in Z (scaled by the voxel spacing)"
    readme = _README.format(
        model_id=model_id,
        created=now_iso(),
        classes=", ".join(classes),
        classes_list=repr(classes),
        architecture=card.get("architecture"),
        in_channels=in_channels,
        shape_text=", ".join(map(str, shape)),
        axes_text="Z, Y, X" if len(shape) == 3 else "Y, X",
        image_channels="Channel 0" if in_channels == 2 else f"Channels 0..{in_channels - 2}",
        mask_channel=in_channels - 1,
        patch_size=card.get("patch_size"),
        spacing_note=spacing,
        n_classes=len(classes),
    )
    atomic_write_text(out_dir / README_FILE, readme)
    files = (onnx_path, out_dir / WEIGHTS_FILE, out_dir / CARD_FILE, out_dir / README_FILE)
    return ModelExport(model_id, out_dir, files)


def _export_forest(project: Project, model_id: str, card: dict, out_dir: Path) -> ModelExport:
    """A forest model folder: ``forest.npz`` (plain arrays; ``forest.skops`` for a model of an
    earlier version) + card + README."""
    from svetlana.core.fileio import atomic_write_json, atomic_write_with
    from svetlana.core.forest import SKOPS_FILE, forest_file

    source = forest_file(project.model_dir(model_id))
    data = source.read_bytes()
    atomic_write_with(out_dir / source.name, lambda p: p.write_bytes(data))
    new_card = {
        **card,
        "exported_from": {"project": project.name, "model": model_id, "date": now_iso()},
    }
    atomic_write_json(out_dir / CARD_FILE, new_card)
    if source.name == SKOPS_FILE:
        how = (
            "forest.skops is a skops file: load it with skops.io.load after checking "
            "skops.io.get_untrusted_types (Svetlana allows only sklearn's forest and tree types).\n"
        )
    else:
        how = (
            "forest.npz holds the trees as plain numpy arrays (numpy.load(..., allow_pickle=False)):"
            " offsets (tree t owns nodes offsets[t]:offsets[t+1]), left/right (child index inside"
            " the tree, -1 at a leaf), feature (the card's measurement a split reads), threshold"
            " (go left when the measurement <= threshold, compared as float32), value (class"
            " fractions per node), classes (index of each column of value in the card's classes),"
            " importances. A class's probability is the mean over trees of the leaf's fraction.\n"
        )
    readme = (
        f"Svetlana forest model {model_id} (exported {now_iso()}).\n\n"
        f"A random forest (scikit-learn) on object measurements; classes: "
        f"{', '.join(map(str, card.get('classes', [])))}.\n"
        + how
        + "card.json lists the measurements it reads, in order, and their importances.\n"
        "In Python: svetlana.core.models.load_checkpoint(this folder) gives (forest, card).\n"
    )
    atomic_write_text(out_dir / README_FILE, readme)
    return ModelExport(
        model_id, out_dir, (out_dir / source.name, out_dir / CARD_FILE, out_dir / README_FILE)
    )

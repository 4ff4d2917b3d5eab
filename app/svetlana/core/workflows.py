"""The use-cases shared by the CLI and the GUI: import labels, train, predict, export, demo."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svetlana import __version__
from svetlana.core.errors import Cancelled, InputError, ModelError, TrainingError
from svetlana.core.fileio import atomic_write_text, atomic_write_with
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project import LoadedImage, Project, now_iso

log = logging.getLogger(__name__)

NORMALISATION = "per-image percentiles 1-99.8 per channel"


# ---- labels ---------------------------------------------------------------------------


def import_labels(project: Project, csv_path: str | Path) -> int:
    """Import image,object,class rows; everything is checked before anything is changed."""
    from svetlana.core.annotations import read_label_csv

    csv_path = Path(csv_path)
    rows = read_label_csv(csv_path)
    unknown_images = sorted({r["image"] for r in rows} - set(project.image_names))
    if unknown_images:
        raise InputError(
            f"unknown image(s) {', '.join(map(repr, unknown_images[:5]))}; "
            f"images in the project: {', '.join(project.image_names) or 'none'}",
            csv_path,
        )
    by_image: dict[str, list[int]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r["object"])
    for name, ids in by_image.items():
        table = project.load(name).table
        ok = table.contains(np.asarray(ids))
        if not ok.all():
            bad = sorted({int(i) for i, k in zip(ids, ok, strict=True) if not k})
            raise InputError(
                f"image {name!r} has no object with id {', '.join(map(str, bad[:8]))}"
                + (" ..." if len(bad) > 8 else ""),
                csv_path,
            )
    from svetlana.core.annotations import validate_class_name

    store = project.annotations
    new_classes = [c for c in dict.fromkeys(r["class"] for r in rows) if c not in store.class_names]
    for cls in new_classes:  # a bad name must stop the import before any class is added
        try:
            validate_class_name(cls)
        except InputError as exc:
            raise InputError(exc.message, csv_path) from None
    for cls in new_classes:
        store.add_class(cls)
    by_class: dict[str, list] = {}
    for r in rows:
        by_class.setdefault(r["class"], []).append((r["image"], r["object"], r["class"]))
    for changes in by_class.values():
        store.apply_labels(changes, source="import")
    project.save()
    return len(rows)


def export_labels(project: Project, csv_path: str | Path) -> int:
    atomic_write_text(csv_path, project.annotations.to_csv_text())
    return len(project.annotations)


# ---- training -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingSet:
    patches: np.ndarray
    labels: np.ndarray
    keys: tuple[tuple[str, int], ...]
    class_names: tuple[str, ...]
    patch_size: int
    ndim: int
    channels: int


def resolve_patch_size(project: Project, requested: int | str | None = "auto") -> int:
    """A fixed patch size, or ``auto``: robust to outlier objects, the same for every image."""
    if requested not in (None, "auto"):
        try:
            size = int(requested)
        except (TypeError, ValueError):
            raise InputError(
                f"patch size must be a number of pixels or 'auto', not {requested!r}"
            ) from None
        if not 4 <= size <= 512:
            raise InputError(f"patch size must be between 4 and 512 pixels, not {size}")
        return size
    from svetlana.core.patches import auto_patch_size

    if not project.images:
        raise InputError("the project has no images yet; add one with `svetlana add`", project.path)
    sizes = [auto_patch_size(project.load(e.name).table, e.spacing) for e in project.images]
    return int(max(sizes))


def training_set(
    project: Project, patch_size: int | str | None = "auto", progress: ProgressFn = no_progress
) -> TrainingSet:
    from svetlana.core.patches import extract_patches

    store = project.annotations
    labelled = store.items()
    names = store.class_names
    counts = store.counts()
    present = [c for c in names if counts.get(c, 0) > 0]
    if len(present) < 2:
        raise TrainingError(
            "only one class is labelled: label objects of at least two classes"
            if present
            else "no object is labelled yet: label objects of at least two classes"
        )
    size = resolve_patch_size(project, patch_size)
    by_image: dict[str, list[tuple[int, str]]] = {}
    for (im, obj), lab in labelled:
        by_image.setdefault(im, []).append((obj, lab.class_name))
    chunks, ys, keys = [], [], []
    ndims, chans = set(), set()
    for k, (im, items) in enumerate(sorted(by_image.items())):
        if im not in project.image_names:
            log.warning("labels of unknown image %s ignored", im)
            continue
        loaded = project.load(im)
        ids = np.array([o for o, _ in items], dtype=np.int64)
        keep = loaded.table.contains(ids)
        ids = ids[keep]
        cls = [c for (_, c), k2 in zip(items, keep, strict=True) if k2]
        chunks.append(
            extract_patches(
                loaded.normalised, loaded.labels, loaded.table, ids, size, loaded.spacing
            )
        )
        ys.extend(names.index(c) for c in cls)
        keys.extend((im, int(o)) for o in ids)
        ndims.add(loaded.labels.ndim)
        chans.add(loaded.image.shape[0])
        progress(Progress("patches", k + 1, len(by_image), f"patches of {im}"))
    if len(ndims) > 1:
        raise TrainingError("the project mixes 2D and 3D images; train them in separate projects")
    if len(chans) > 1:
        raise TrainingError(
            f"the images have different numbers of channels ({sorted(chans)}); they cannot share a model"
        )
    patches = np.concatenate(chunks) if chunks else np.zeros((0,))
    return TrainingSet(
        patches=patches,
        labels=np.asarray(ys, dtype=np.int64),
        keys=tuple(keys),
        class_names=names,
        patch_size=size,
        ndim=ndims.pop(),
        channels=chans.pop(),
    )


@dataclass(frozen=True)
class TrainedModel:
    id: str
    card: dict
    folder: Path


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"svetlana": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "torch", "scikit-image", "tifffile"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


@dataclass(frozen=True, eq=False)
class TrainingJob:
    """A frozen snapshot for training off the main thread: data, config and where it will go."""

    model_id: str
    config: Any
    data: TrainingSet
    arch: str
    arch_file: str | None
    model: Any  # a user network to fine-tune, or None to build ``config.arch``
    class_colours: tuple[str, ...]
    label_counts: dict


def prepare_training(
    project: Project,
    config: Any = None,
    *,
    patch_size: int | str | None = "auto",
    name: str | None = None,
    arch_file: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> TrainingJob:
    """Check the labels and extract the patches (fast); raises a clear error before any work."""
    from svetlana.core.models import load_user_network
    from svetlana.core.training import TrainingConfig

    config = config or TrainingConfig()
    model_id = project.new_model_id(name)
    data = training_set(project, patch_size, progress or no_progress)
    model = None
    arch = config.arch
    if arch_file is not None:
        arch, model = load_user_network(
            Path(arch_file), data.patches.shape[1], len(data.class_names), data.ndim
        )
    store = project.annotations
    counts = store.counts()
    return TrainingJob(
        model_id=model_id,
        config=config,
        data=data,
        arch=arch,
        arch_file=str(arch_file) if arch_file else None,
        model=model,
        class_colours=tuple(c.colour for c in store.classes),
        label_counts={c: int(counts.get(c, 0)) for c in data.class_names},
    )


def run_training(
    job: TrainingJob, progress: ProgressFn | None = None, cancel: CancelToken | None = None
):
    """The long part; touches no project state, so it may run in a worker thread."""
    from svetlana.core.training import train

    d = job.data
    return train(
        d.patches,
        d.labels,
        len(d.class_names),
        job.config,
        model=job.model,
        progress=progress,
        cancel=cancel,
    )


def finish_training(project: Project, job: TrainingJob, result: Any) -> TrainedModel:
    """Write the checkpoint and card, then register the model (manifest last)."""
    from svetlana.core.models import count_parameters, save_checkpoint

    d = job.data
    card = {
        "id": job.model_id,
        "architecture": job.arch,
        "architecture_file": job.arch_file,
        "in_channels": int(d.patches.shape[1]),
        "channels": int(d.channels),
        "n_classes": len(d.class_names),
        "ndim": d.ndim,
        "classes": list(d.class_names),
        "class_colours": list(job.class_colours),
        "patch_size": d.patch_size,
        "patch_shape": list(d.patches.shape[2:]),
        "normalisation": NORMALISATION,
        "seed": job.config.seed,
        "training": job.config.to_dict(),
        "metrics": result.metrics,
        "history": list(result.history),
        "n_labels": int(len(d.labels)),
        "label_counts": job.label_counts,
        "images": sorted({k[0] for k in d.keys}),
        "device": result.device,
        "threads": result.threads,
        "seconds": round(result.seconds, 3),
        "parameters": count_parameters(result.model),
        "versions": package_versions(),
        "created": now_iso(),
    }
    folder = project.model_dir(job.model_id)
    existed = folder.exists()
    try:
        save_checkpoint(folder, result.model, card)
        project.register_model(
            job.model_id, {"architecture": job.arch, "accuracy": result.metrics.get("accuracy")}
        )
    except BaseException:
        if not existed:  # a half-written model folder must not stay behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return TrainedModel(job.model_id, card, folder)


def train_project(
    project: Project,
    config: Any = None,
    *,
    patch_size: int | str | None = "auto",
    name: str | None = None,
    arch_file: str | Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TrainedModel:
    """Train on every labelled object; only a finished run writes into the bundle."""
    cancel = ensure_token(cancel)
    job = prepare_training(
        project, config, patch_size=patch_size, name=name, arch_file=arch_file, progress=progress
    )
    cancel.raise_if_cancelled()
    result = run_training(job, progress, cancel)
    cancel.raise_if_cancelled()
    return finish_training(project, job, result)


def load_model(project: Project, model_id: str | None = None):
    """The model and its card; ``None`` means the newest."""
    from svetlana.core.models import load_checkpoint

    model_id = project.resolve_model(model_id)
    return load_checkpoint(project.model_dir(model_id))


# ---- prediction -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImagePrediction:
    """Per-object predictions of one image, rows in the order of ``table.ids``."""

    image: str
    table: Any
    probs: np.ndarray
    class_names: tuple[str, ...]
    uncertainty: np.ndarray = field(default=None)  # type: ignore[assignment]

    @property
    def ids(self) -> np.ndarray:
        return self.table.ids

    @property
    def class_index(self) -> np.ndarray:
        """1-based class of each object (0 is reserved for background)."""
        return self.probs.argmax(axis=1).astype(np.int64) + 1

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    def counts(self) -> dict[str, int]:
        idx = self.class_index - 1
        return {c: int((idx == k).sum()) for k, c in enumerate(self.class_names)}


def _check_compatible(card: dict, loaded: LoadedImage, where: Path | None = None) -> None:
    if int(card.get("ndim", loaded.labels.ndim)) != loaded.labels.ndim:
        raise ModelError(
            f"the model was trained on {card['ndim']}D images; {loaded.name!r} is {loaded.labels.ndim}D",
            where,
        )
    if int(card.get("channels", loaded.image.shape[0])) != loaded.image.shape[0]:
        raise ModelError(
            f"the model expects {card['channels']} channel(s); {loaded.name!r} has {loaded.image.shape[0]}",
            where,
        )


def predict_loaded(
    model,
    card: dict,
    loaded: LoadedImage,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImagePrediction:
    from svetlana.core.patches import PatchSource
    from svetlana.core.prediction import predict_probabilities, uncertainty
    from svetlana.core.training import resolve_device

    _check_compatible(card, loaded)
    table = loaded.table
    source = PatchSource(
        loaded.normalised, loaded.labels, table, table.ids, int(card["patch_size"]), loaded.spacing
    )
    probs = predict_probabilities(
        model, source, device=resolve_device(device), progress=progress, cancel=cancel
    )
    return ImagePrediction(loaded.name, table, probs, tuple(card["classes"]), uncertainty(probs))


def prediction_rows(pred: ImagePrediction, manual: dict | None = None) -> list[dict]:
    """Rows of predictions.csv for one image."""
    t = pred.table
    nd = t.ndim
    axes = "zyx"[3 - nd :]
    rows = []
    idx = pred.class_index
    conf = pred.confidence
    for i, obj in enumerate(t.ids):
        row: dict[str, Any] = {
            "image": pred.image,
            "object": int(obj),
            "class": pred.class_names[idx[i] - 1],
            "confidence": round(float(conf[i]), 5),
            "uncertainty": round(float(pred.uncertainty[i]), 5),
        }
        for k, c in enumerate(pred.class_names):
            row[f"p_{c}"] = round(float(pred.probs[i, k]), 5)
        row["area"] = int(t.area[i])
        for a in "zyx":
            row[f"centroid_{a}"] = (
                round(float(t.centroid[i, axes.index(a)]), 2) if a in axes else ""
            )
        for a in "zyx":
            row[f"bbox_{a}0"] = int(t.bbox[i, axes.index(a)]) if a in axes else ""
        for a in "zyx":
            row[f"bbox_{a}1"] = int(t.bbox[i, nd + axes.index(a)]) if a in axes else ""
        lab = (manual or {}).get(int(obj))
        row["label"] = lab.class_name if lab is not None else ""
        rows.append(row)
    return rows


def rows_to_csv(rows: list[dict], class_names: Sequence[str]) -> str:
    fields = [
        "image",
        "object",
        "class",
        "confidence",
        "uncertainty",
        *[f"p_{c}" for c in class_names],
    ]
    fields += ["area", "centroid_z", "centroid_y", "centroid_x"]
    fields += ["bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1", "label"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@dataclass(frozen=True)
class PredictionRun:
    model_id: str
    out_dir: Path
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # image -> class -> count
    files: tuple[Path, ...]
    seconds: float
    predictions: dict = field(default_factory=dict)  # image -> ImagePrediction

    @property
    def total_counts(self) -> dict[str, int]:
        tot = dict.fromkeys(self.class_names, 0)
        for c in self.counts.values():
            for k, v in c.items():
                tot[k] += v
        return tot


def write_prediction_outputs(
    out_dir: Path, preds: list[tuple[ImagePrediction, LoadedImage]], class_names, manual_of
) -> list[Path]:
    import tifffile

    from svetlana.core.prediction import class_mask

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    rows: list[dict] = []
    for pred, loaded in preds:
        cm = class_mask(loaded.labels, pred.ids, pred.class_index)
        path = out_dir / f"{_safe(pred.image)}_classes.tif"
        atomic_write_with(path, lambda p, cm=cm: tifffile.imwrite(p, cm))
        files.append(path)
        rows.extend(prediction_rows(pred, manual_of(pred.image)))
    csv_path = out_dir / "predictions.csv"
    atomic_write_text(csv_path, rows_to_csv(rows, class_names))
    files.append(csv_path)
    return files


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _import_torch_in_background() -> None:
    """Start importing torch on a daemon thread unless it is loaded (errors surface on first use)."""
    import sys
    import threading

    if "torch" in sys.modules:
        return

    def run() -> None:
        with contextlib.suppress(Exception):  # the main thread's own import reports it
            from svetlana.core._torch import load_torch

            load_torch("fx")

    threading.Thread(target=run, name="import-torch", daemon=True).start()


def predict_project(
    project: Project,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PredictionRun:
    """Classify every object of the chosen images; write class masks and predictions.csv.

    Without ``out_dir`` the results go to ``predictions/<model>/`` inside the bundle, replaced
    only once every file is complete (a cancelled run leaves the previous results).
    """
    t0 = time.perf_counter()
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    model_id = project.resolve_model(model_id)
    names = list(images) if images else list(project.image_names)
    for n in names:
        project.image(n)
    if not names:
        raise InputError("the project has no images to predict", project.path)
    # Importing torch takes seconds: do it on a second thread while the first image is read
    # and measured (16,671 objects on 4096x4096, 2 busy cores: 4.0 s -> 3.2 s to both ready).
    _import_torch_in_background()
    first = project.load(names[0])
    first.table, first.normalised  # noqa: B018 - computed (and cached) now, alongside the import
    model, card = load_model(project, model_id)
    preds = []
    for k, name in enumerate(names):
        cancel.raise_if_cancelled()
        loaded = project.load(name)

        sub = image_progress(progress, k, len(names), name)

        preds.append(
            (
                predict_loaded(model, card, loaded, device=device, progress=sub, cancel=cancel),
                loaded,
            )
        )
    cancel.raise_if_cancelled()
    class_names = tuple(card["classes"])

    def manual_of(im):
        return project.annotations.for_image(im)

    if out_dir is None:
        final = project.predictions_dir / model_id
        replace_prediction_folder(final, preds, class_names, manual_of, cancel)
        out = final
        files = tuple(sorted(final.iterdir()))
    else:
        out = Path(out_dir)
        files = tuple(write_prediction_outputs(out, preds, class_names, manual_of))
    counts = {p.image: p.counts() for p, _ in preds}
    progress(Progress("predict", 1, 1, "done"))
    return PredictionRun(
        model_id,
        out,
        class_names,
        counts,
        files,
        time.perf_counter() - t0,
        {p.image: p for p, _ in preds},
    )


def image_progress(progress: ProgressFn, k: int, n: int, name: str) -> ProgressFn:
    """Progress of image ``k`` of ``n`` as a part of the whole run (0..n*1000)."""

    def sub(p: Progress) -> None:
        progress(
            Progress(
                "predict", k * 1000 + int(p.fraction * 1000), n * 1000, f"image {k + 1}/{n}: {name}"
            )
        )

    return sub


def replace_prediction_folder(
    final: Path, preds, class_names, manual_of, cancel: CancelToken | None = None
) -> None:
    """Write a prediction folder beside the old one, then swap: a failure or a cancel leaves
    the previous results (leftovers of an earlier crash are cleaned up first)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{final.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write_prediction_outputs(tmp, preds, class_names, manual_of)
        if cancel is not None:
            cancel.raise_if_cancelled()
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_predictions(path: str | Path) -> dict[str, dict[int, dict]]:
    """predictions.csv -> image -> object -> row (class, confidence, probabilities...)."""
    out: dict[str, dict[int, dict]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["image"], {})[int(row["object"])] = row
    return out


def predict_folder(
    model_folder: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    *,
    axes: str | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PredictionRun:
    """Predict image/mask pairs of a folder that are not in a project (read-only on the inputs)."""
    from svetlana.core.images import file_stem, find_pairs, read_pair
    from svetlana.core.models import load_checkpoint

    t0 = time.perf_counter()
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    model, card = load_checkpoint(Path(model_folder))
    pairs = find_pairs(Path(folder))
    if not pairs:
        raise InputError(
            "no image/mask pairs found (expected e.g. x.tif with x_masks.tif or x_cp_masks.png)",
            folder,
        )
    preds = []
    for k, (ip, mp) in enumerate(pairs):
        cancel.raise_if_cancelled()
        img, mask = read_pair(ip, mp, axes=axes)
        loaded = LoadedImage(file_stem(ip), img.data, mask.labels, img.spacing)
        progress(Progress("predict", k, len(pairs), f"{ip.name}"))
        preds.append((predict_loaded(model, card, loaded, device=device, cancel=cancel), loaded))
    class_names = tuple(card["classes"])
    files = write_prediction_outputs(Path(out_dir), preds, class_names, lambda im: {})
    progress(Progress("predict", len(pairs), len(pairs), "done"))
    counts = {p.image: p.counts() for p, _ in preds}
    return PredictionRun(
        str(card.get("id", Path(model_folder).name)),
        Path(out_dir),
        class_names,
        counts,
        tuple(files),
        time.perf_counter() - t0,
        {p.image: p for p, _ in preds},
    )


# ---- info -----------------------------------------------------------------------------


def project_summary(project: Project) -> dict:
    store = project.annotations
    images = []
    for e in project.images:
        labelled = store.for_image(e.name)
        images.append(
            {
                "name": e.name,
                "shape": list(e.shape),
                "channels": e.channels,
                "objects": e.n_objects,
                "labelled": len(labelled),
                "spacing": list(e.spacing) if e.spacing else None,
            }
        )
    models = []
    for mid in project.model_ids():
        try:
            card = project.model_card(mid)
        except Exception as exc:  # a damaged card must not hide the rest of the project
            models.append({"id": mid, "error": str(exc)})
            continue
        models.append(
            {
                "id": mid,
                "architecture": card.get("architecture"),
                "accuracy": (card.get("metrics") or {}).get("accuracy"),
                "labels": card.get("n_labels"),
                "created": card.get("created"),
            }
        )
    return {
        "project": str(project.path),
        "classes": [{**c.to_dict(), "count": store.counts().get(c.name, 0)} for c in store.classes],
        "images": images,
        "labels": len(store),
        "models": models,
    }


# ---- demo -----------------------------------------------------------------------------

DEMO_LABELS_PER_CLASS = 30


def build_demo(path: str | Path, seed: int = 0, n_objects: int = 200) -> Project:
    """A project like the paper's experiment 1: two textures, known classes, some labels."""
    import tifffile

    from svetlana.core.synthetic import texture_scene

    scene = texture_scene(n_objects=n_objects, shape=(640, 640), seed=seed)
    project = Project.create(path, classes=list(scene.class_names))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ip, mp = Path(tmp) / "textures.tif", Path(tmp) / "textures_masks.tif"
            tifffile.imwrite(ip, scene.image[0])
            tifffile.imwrite(mp, scene.labels)
            project.add_image(ip, mp, name="textures")
        project.settings["demo"] = True
        rng = np.random.default_rng(seed)
        ids = np.array(sorted(scene.classes))
        truth = np.array([scene.classes[i] for i in ids])
        changes = []
        for k, cname in enumerate(scene.class_names):
            pick = rng.permutation(ids[truth == k])[:DEMO_LABELS_PER_CLASS]
            changes += [("textures", int(o), cname) for o in pick]
        project.annotations.apply_labels(changes, source="import")
        truth_rows = "image,object,class\n" + "".join(
            f"textures,{i},{scene.class_names[c]}\n" for i, c in zip(ids, truth, strict=True)
        )
        atomic_write_text(project.path / "demo_truth.csv", truth_rows)
        project.save()
    except BaseException:
        project.close()
        raise
    return project


@dataclass(frozen=True)
class DemoResult:
    model_id: str
    unlabelled: int
    errors: int
    accuracy: float
    train_seconds: float
    predict_seconds: float
    device: str


def run_demo_headless(
    project: Project,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DemoResult:
    """Train with default settings, predict, and score the unlabelled objects against the truth."""
    from svetlana.core.annotations import read_label_csv

    t0 = time.perf_counter()
    trained = train_project(project, progress=progress, cancel=cancel)
    t1 = time.perf_counter()
    run = predict_project(project, trained.id, progress=progress, cancel=cancel)
    t2 = time.perf_counter()
    truth = {
        (r["image"], r["object"]): r["class"]
        for r in read_label_csv(project.path / "demo_truth.csv")
    }
    predicted = read_predictions(run.out_dir / "predictions.csv")
    n = err = 0
    for (im, obj), cls in truth.items():
        if project.annotations.get(im, obj) is not None:
            continue
        n += 1
        err += predicted[im][obj]["class"] != cls
    if n == 0:
        raise Cancelled("every object of the demo is labelled; nothing left to score")
    return DemoResult(trained.id, n, err, 1 - err / n, t1 - t0, t2 - t1, trained.card["device"])

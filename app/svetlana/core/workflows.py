"""The use-cases shared by the CLI and the GUI: import/export labels, train, summarise, demo.

Prediction use-cases are in ``predicting``; exports in ``exports``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana import __version__
from svetlana.core.annotations import label_time
from svetlana.core.csvsafe import to_csv_text
from svetlana.core.errors import Cancelled, InputError, SvetlanaError, TrainingError
from svetlana.core.fileio import atomic_write_text
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project import SUFFIX, Project, now_iso

log = logging.getLogger(__name__)

NORMALISATION = "per-image percentiles 1-99.8 per channel"


# ---- labels ---------------------------------------------------------------------------


def nearest_class(name: str, classes: Sequence[str]) -> str | None:
    """The existing class a mistyped name probably means (same letters in another case, or a
    small typo), or ``None``."""
    import difflib

    lower = {c.lower(): c for c in classes}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.75)
    return lower[close[0]] if close else None


def _unknown_classes_message(unknown: Sequence[str], classes: Sequence[str]) -> str:
    parts = []
    for c in unknown[:8]:
        near = nearest_class(c, classes)
        parts.append(f"{c!r}" + (f" (did you mean {near!r}?)" if near else ""))
    more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
    return (
        f"unknown class{'es' if len(unknown) > 1 else ''} {', '.join(parts)}{more}; "
        f"the project's classes are {', '.join(classes)}. Fix the CSV, or add "
        f"{'them' if len(unknown) > 1 else 'it'} as new classes with --add-classes"
    )


def import_labels(project: Project, csv_path: str | Path, *, add_classes: bool = False) -> int:
    """Import image,object,class rows: everything is checked before anything is changed, and
    the file's labels (and new classes) are applied as one transaction, even if killed.

    A class name the project lacks is refused (with the nearest existing name: ``smal`` ->
    ``small``) unless ``add_classes``; a project without any class yet takes the CSV's.
    """
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
    if new_classes and store.class_names and not add_classes:
        raise InputError(_unknown_classes_message(new_classes, store.class_names), csv_path)
    for cls in new_classes:  # a bad name must stop the import before any class is added
        try:
            validate_class_name(cls)
        except InputError as exc:
            raise InputError(exc.message, csv_path) from None
    by_class: dict[str, list] = {}
    for r in rows:
        by_class.setdefault(r["class"], []).append((r["image"], r["object"], r["class"]))
    with store.transaction():  # one journal record: a kill leaves all of the file or none
        for cls in new_classes:
            store.add_class(cls)
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
    for pkg in ("numpy", "torch", "scikit-image", "tifffile", "scikit-learn", "skops"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


KINDS: tuple[str, ...] = ("auto", "forest", "cnn")


@dataclass(frozen=True, eq=False)
class MeasureSource:
    """One image's arrays and labelled object ids (in the training set's order), for measuring."""

    image_name: str
    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, ...] | None
    ids: np.ndarray


@dataclass(frozen=True, eq=False)
class TrainingJob:
    """A frozen snapshot for training off the main thread: data, config and where it will go.

    ``kind``: "auto" (forest or CNN by cross-validation), "forest", or "cnn" (``config.arch``).
    """

    model_id: str
    config: Any
    data: TrainingSet
    arch: str
    arch_file: str | None
    model: Any  # a user network to fine-tune, or None to build ``config.arch``
    class_colours: tuple[str, ...]
    label_counts: dict
    started: str = ""  # when the labels were taken (label_time format)
    kind: str = "cnn"
    sources: tuple[MeasureSource, ...] = ()
    budget_s: float | None = None

    @property
    def groups(self) -> np.ndarray:
        """The image of each labelled object (index into the sorted image names)."""
        names = sorted({k[0] for k in self.data.keys})
        return np.asarray([names.index(k[0]) for k in self.data.keys], dtype=np.int64)


def prepare_training(
    project: Project,
    config: Any = None,
    *,
    patch_size: int | str | None = "auto",
    name: str | None = None,
    arch_file: str | Path | None = None,
    progress: ProgressFn | None = None,
    kind: str = "cnn",
    budget_s: float | None = None,
) -> TrainingJob:
    """Check the labels and extract the patches (fast); raises a clear error before any work.

    ``kind`` "auto" (the CLI's and the GUI's default) cross-validates the forest and the CNN
    ``config.arch`` and keeps the better (see ``core.choosing``); "forest" and "cnn" (this
    function's default, as before) force one. A network file forces "cnn".
    """
    from svetlana.core.models import load_user_network
    from svetlana.core.training import TrainingConfig

    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    config = config or TrainingConfig()
    model_id = project.new_model_id(name)
    # Labels given from now on are news to this model ("corrections since this model").
    started = label_time()
    data = training_set(project, patch_size, progress or no_progress)
    model = None
    arch = config.arch
    if arch_file is not None:
        kind = "cnn"
        arch, model = load_user_network(
            Path(arch_file), data.patches.shape[1], len(data.class_names), data.ndim
        )
    sources: list[MeasureSource] = []
    if kind != "cnn":  # the worker measures the labelled objects (arrays only, no project)
        by_image: dict[str, list[int]] = {}
        for im, obj in data.keys:
            by_image.setdefault(im, []).append(obj)
        for im, ids in by_image.items():
            loaded = project.load(im)
            sources.append(
                MeasureSource(im, loaded.image, loaded.labels, loaded.spacing, np.asarray(ids))
            )
    store = project.annotations
    counts = store.counts()
    return TrainingJob(
        started=started,
        model_id=model_id,
        config=config,
        data=data,
        arch=arch,
        arch_file=str(arch_file) if arch_file else None,
        model=model,
        class_colours=tuple(c.colour for c in store.classes),
        label_counts={c: int(counts.get(c, 0)) for c in data.class_names},
        kind=kind,
        sources=tuple(sources),
        budget_s=budget_s,
    )


def measure_training_set(
    job: TrainingJob, progress: ProgressFn | None = None, cancel: CancelToken | None = None
):
    """``(names, units, values)``: the measurements of the labelled objects, in label order."""
    from svetlana.core.measurements import measure_objects

    progress = progress or no_progress
    cancel = ensure_token(cancel)
    rows: dict[tuple[str, int], np.ndarray] = {}
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    for k, src in enumerate(job.sources):
        cancel.raise_if_cancelled()
        progress(Progress("measure", k, len(job.sources), f"measuring {src.image_name}"))
        m = measure_objects(
            src.image, src.labels, ids=np.unique(src.ids), spacing=src.spacing, cancel=cancel
        )
        if names and tuple(m.names) != names:
            raise TrainingError("the images give different measurements; train them separately")
        names, units = tuple(m.names), tuple(m.units)
        for i, obj in enumerate(m.ids):
            rows[(src.image_name, int(obj))] = m.values[i]
    progress(Progress("measure", len(job.sources), len(job.sources), "measured"))
    values = np.stack([rows[(im, int(obj))] for im, obj in job.data.keys]).astype(np.float32)
    return names, units, values


def run_training(
    job: TrainingJob, progress: ProgressFn | None = None, cancel: CancelToken | None = None
):
    """The long part; touches no project state, so it may run in a worker thread.

    Returns a ``choosing.FitResult`` (model, kind, metrics, history, selection...).
    """
    from svetlana.core.choosing import FitResult, choose
    from svetlana.core.training import train

    d = job.data
    if job.kind == "cnn":
        result = train(
            d.patches,
            d.labels,
            len(d.class_names),
            job.config,
            model=job.model,
            progress=progress,
            cancel=cancel,
        )
        metrics = dict(result.metrics)
        metrics["estimate"] = "held-out" if metrics.get("n_val") else "training"
        return FitResult(
            kind="cnn",
            arch=job.arch,
            model=result.model,
            metrics=metrics,
            history=result.history,
            device=result.device,
            seconds=result.seconds,
            threads=result.threads,
            selection={"mode": "forced", "chosen": job.arch},
        )
    started = time.perf_counter()
    names, units, values = measure_training_set(job, progress, cancel)
    result = choose(
        features=values,
        feature_names=names,
        patches=d.patches,
        labels=d.labels,
        groups=job.groups,
        class_names=d.class_names,
        config=job.config,
        candidates=("forest", "cnn") if job.kind == "auto" else ("forest",),
        budget_s=job.budget_s,
        progress=progress,
        cancel=cancel,
    )
    selection = {
        **result.selection,
        "measure_seconds": round(time.perf_counter() - started - result.seconds, 2),
    }
    extra = {"measurements": list(names), "measurement_units": list(units)}
    payload = None
    if result.kind == "forest":  # serialised here, off the GUI thread (seconds for big forests)
        from svetlana.core.forest import forest_bytes

        payload = forest_bytes(result.model)
    return dataclasses.replace(result, selection={**selection, **extra}, payload=payload)


def _cnn_card(job: TrainingJob, result: Any) -> dict:
    from svetlana.core.models import count_parameters

    return {
        "architecture": result.arch,
        "architecture_file": job.arch_file,
        "parameters": count_parameters(result.model),
        "history": list(result.history),
    }


def _forest_card(result: Any) -> dict:
    from svetlana.core.forest import FOREST, IMPORTANCES_KEPT

    sel = result.selection
    return {
        "architecture": FOREST,
        "measurements": sel["measurements"],
        "measurement_units": sel["measurement_units"],
        "importances": [
            {"name": n, "importance": round(v, 5)}
            for n, v in result.model.importances(IMPORTANCES_KEPT)
        ],
        "trees": result.model.n_trees,
        "history": [],
    }


def finish_training(project: Project, job: TrainingJob, result: Any) -> TrainedModel:
    """Write the model file and card, then register the model (manifest last)."""
    from svetlana.core.choosing import FitResult
    from svetlana.core.models import save_checkpoint

    if not isinstance(result, FitResult):  # a bare training.TrainingResult
        result = FitResult("cnn", job.arch, result.model, dict(result.metrics), result.history,
                           result.device, result.seconds, result.threads)  # fmt: skip
    d = job.data
    selection = {
        k: v for k, v in result.selection.items() if k not in ("measurements", "measurement_units")
    }
    card = {
        "id": job.model_id,
        "kind": result.kind,
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
        "selection": selection,
        **(_forest_card(result) if result.kind == "forest" else _cnn_card(job, result)),
        "n_labels": int(len(d.labels)),
        "label_counts": job.label_counts,
        "images": sorted({k[0] for k in d.keys}),
        "device": result.device,
        "threads": result.threads,
        "seconds": round(result.seconds, 3),
        "versions": package_versions(),
        "created": now_iso(),
        "training_started": job.started,
    }
    folder = project.model_dir(job.model_id)
    existed = folder.exists()
    try:
        if result.kind == "forest":
            from svetlana.core.forest import save_forest

            save_forest(folder, result.model, card, result.payload)
        else:
            save_checkpoint(folder, result.model, card)
        project.register_model(
            job.model_id,
            {"architecture": card["architecture"], "accuracy": result.metrics.get("accuracy")},
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
    kind: str = "cnn",
    budget_s: float | None = None,
) -> TrainedModel:
    """Train on every labelled object; only a finished run writes into the bundle."""
    cancel = ensure_token(cancel)
    job = prepare_training(
        project, config, patch_size=patch_size, name=name, arch_file=arch_file,
        progress=progress, kind=kind, budget_s=budget_s,
    )  # fmt: skip
    cancel.raise_if_cancelled()
    result = run_training(job, progress, cancel)
    cancel.raise_if_cancelled()
    return finish_training(project, job, result)


# ---- prediction -----------------------------------------------------------------------


def _parse_time(text: str):
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def corrections_since(project: Project, model_id: str | None) -> int:
    """Corrections (labels with source 'correction') made after ``model_id``'s training began.

    A model without ``training_started`` (made before it was recorded) counts from its
    ``created`` time; labels without a time (older projects) are not counted.
    """
    if model_id is None:
        return 0
    try:
        card = project.model_card(model_id)
    except SvetlanaError:
        return 0
    since = _parse_time(card.get("training_started") or card.get("created") or "")
    if since is None:
        return 0
    n = 0
    for _, lab in project.annotations.items():
        if lab.source == "correction":
            t = _parse_time(lab.time)
            n += t is not None and t >= since
    return n


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
        metrics = card.get("metrics") or {}
        models.append(
            {
                "id": mid,
                "kind": card.get("kind", "cnn"),
                "architecture": card.get("architecture"),
                "accuracy": metrics.get("accuracy"),
                "metrics": {
                    k: metrics.get(k)
                    for k in ("accuracy", "balanced_accuracy", "n_val", "n_train", "estimate")
                },
                "chosen_by": (card.get("selection") or {}).get("reason"),
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


def demo_path() -> Path:
    """Where the demo project lives: the user's data folder (kept between runs)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("Svetlana", appauthor=False)) / f"demo{SUFFIX}"


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
        truth_rows = to_csv_text(
            ["image", "object", "class"],
            [("textures", int(i), scene.class_names[c]) for i, c in zip(ids, truth, strict=True)],
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
    from svetlana.core.predicting import predict_project, read_predictions

    t0 = time.perf_counter()
    trained = train_project(project, progress=progress, cancel=cancel, kind="auto")
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

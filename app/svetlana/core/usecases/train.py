"""Train a classifier on the labelled objects: plan (main thread), run (worker), commit.

``prepare_training`` reads the project and builds the training set; ``run_training`` touches no
project (it runs in a worker thread or the CLI's process); ``finish_training`` writes the model
and registers it. ``train_project`` is the one-shot form the CLI calls.

~600 lines: the training verb in its three steps (plan, run, commit) plus the training set
(with the reference objects of the forest for new images) and the card they share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana import __version__
from svetlana.core.annotations.store import label_time
from svetlana.core.errors import InputError, TrainingError
from svetlana.core.io.fileio import remove_tree
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.project.bundle import Project, now_iso

log = logging.getLogger(__name__)


NORMALISATION = "per-image percentiles 1-99.8 per channel"


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
    from svetlana.core.objects.patches import auto_patch_size

    if not project.images:
        raise InputError("the project has no images yet; add one with `svetlana add`", project.path)
    sizes = [auto_patch_size(project.load(e.name).table, e.spacing) for e in project.images]
    return int(max(sizes))


def check_training_labels(project: Project) -> int:
    """The number of labelled objects; a TrainingError unless two classes have labels (quick:
    the GUI checks this before it starts the work in a worker)."""
    counts = project.annotations.counts()
    present = [c for c in project.annotations.class_names if counts.get(c, 0) > 0]
    if len(present) < 2:
        raise TrainingError(
            "only one class is labelled: label objects of at least two classes"
            if present
            else "no object is labelled yet: label objects of at least two classes"
        )
    return int(sum(counts.values()))


def user_network(project: Project, arch_file: str | Path):
    """``(arch, model)`` of a user's network file for this project's labelled images, checked
    (a file holding a program is refused) before any training work starts."""
    from svetlana.core.ml.models import load_user_network

    names = {im for im, _ in project.annotations.items()} & set(project.image_names)
    entries = [project.image(n) for n in sorted(names)] or list(project.images)
    if not entries:
        raise InputError("the project has no images", project.path)
    e = entries[0]
    return load_user_network(
        Path(arch_file), e.channels + 1, len(project.annotations.class_names), e.ndim
    )


def training_set(
    project: Project, patch_size: int | str | None = "auto", progress: ProgressFn = no_progress
) -> TrainingSet:

    store = project.annotations
    labelled = store.items()
    names = store.class_names
    check_training_labels(project)
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
        chunks.append(loaded.patches(ids, size))  # a large image: only the tiles around them
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
    object_ids: np.ndarray | None = None  # every object of the image (its reference sample)
    identity: str = ""  # core/objects/image_stats.image_identity: the image, whatever its name


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
    mode: str = "quick"  # auto: "quick" or "thorough" (core.ml.choosing.MODES)
    sampling_seed: int = 0  # the project's random order: each image's reference sample

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
    model_id: str | None = None,
    started: str | None = None,
    network: tuple[str, Any] | None = None,
    mode: str = "quick",
) -> TrainingJob:
    """Check the labels and extract the patches (fast); raises a clear error before any work.

    ``kind`` "auto" (the CLI's and the GUI's default) cross-validates the forest and the CNN
    ``config.arch`` and keeps the better (see ``core.choosing``); "forest" and "cnn" (this
    function's default, as before) force one. A network file forces "cnn".

    ``model_id``, ``started`` and ``network`` (``user_network``) are given when the caller
    decided them already (the GUI, before running this on a read-only view in a worker).
    """
    from svetlana.core.ml.choosing import MODES
    from svetlana.core.ml.models import load_user_network
    from svetlana.core.ml.training import TrainingConfig

    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    if mode not in MODES:
        raise InputError(f"unknown training mode {mode!r}; choose one of {', '.join(MODES)}")
    config = config or TrainingConfig()
    model_id = model_id or project.models.new_id(name)
    # Labels given from now on are news to this model ("corrections since this model").
    started = started or label_time()
    data = training_set(project, patch_size, progress or no_progress)
    model = None
    arch = config.arch
    if network is not None:
        kind = "cnn"
        arch, model = network
    elif arch_file is not None:
        kind = "cnn"
        arch, model = load_user_network(
            Path(arch_file), data.patches.shape[1], len(data.class_names), data.ndim
        )
    sources: list[MeasureSource] = []
    if kind != "cnn":  # the worker measures the labelled objects (arrays only, no project)
        from svetlana.core.objects import image_stats

        by_image: dict[str, list[int]] = {}
        for im, obj in data.keys:
            by_image.setdefault(im, []).append(obj)
        for im, ids in by_image.items():
            loaded = project.load(im)
            sources.append(
                MeasureSource(im, loaded.image, loaded.labels, loaded.spacing, np.asarray(ids),
                              np.asarray(loaded.table.ids, np.int64),
                              image_stats.image_identity(loaded.table))
            )  # fmt: skip
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
        mode=mode,
        sampling_seed=project.sampling_seed,
    )


def estimate(job: TrainingJob) -> str:
    """What training will do and for about how long, said before it starts (CLI, Train tab)."""
    from svetlana.core.ml.choosing import estimate_text

    n = len(job.data.labels)
    if job.kind == "auto":
        return "auto, " + estimate_text(n, job.data.ndim, job.mode, job.budget_s)
    if job.kind == "forest":
        return f"forest on the measurements of the {n} labelled objects (seconds)"
    return f"CNN {job.arch}, {job.config.epochs} epochs on {n} labelled objects"


def reference_sample(job: TrainingJob, src: MeasureSource) -> np.ndarray:
    """The image's reference objects (``core/objects/image_stats.py``); none when the labels
    come from one image (no forest for new images is fitted then)."""
    from svetlana.core.objects import image_stats

    if len(job.sources) < 2 or src.object_ids is None or not len(src.object_ids):
        return np.zeros(0, np.int64)
    return image_stats.reference_ids(
        job.sampling_seed, src.image_name, src.object_ids, image_stats.REFERENCE_OBJECTS
    )


def measure_training_set_with_stats(
    job: TrainingJob, progress: ProgressFn | None = None, cancel: CancelToken | None = None
):
    """``(names, units, values, stats)``: the labelled objects' measurements in label order and
    each image's reference statistics (``image -> (centre, spread)``; empty with one image),
    from its reference objects measured along with the labelled ones."""
    from svetlana.core.objects.image_stats import reference_stats
    from svetlana.core.objects.measurements import measure_objects

    progress = progress or no_progress
    cancel = ensure_token(cancel)
    rows: dict[tuple[str, int], np.ndarray] = {}
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    for k, src in enumerate(job.sources):
        cancel.raise_if_cancelled()
        progress(Progress("measure", k, len(job.sources), f"measuring {src.image_name}"))
        ref = reference_sample(job, src)
        m = measure_objects(
            src.image, src.labels, ids=np.union1d(np.unique(src.ids), ref), spacing=src.spacing,
            cancel=cancel,
        )  # fmt: skip
        if names and tuple(m.names) != names:
            raise TrainingError("the images give different measurements; train them separately")
        names, units = tuple(m.names), tuple(m.units)
        for i, obj in enumerate(m.ids):
            rows[(src.image_name, int(obj))] = m.values[i]
        if len(ref):
            stats[src.image_name] = reference_stats(m.values[np.isin(m.ids, ref)])
    progress(Progress("measure", len(job.sources), len(job.sources), "measured"))
    values = np.stack([rows[(im, int(obj))] for im, obj in job.data.keys]).astype(np.float32)
    return names, units, values, stats


def run_training(
    job: TrainingJob, progress: ProgressFn | None = None, cancel: CancelToken | None = None
):
    """The long part; touches no project state, so it may run in a worker thread.

    Returns a ``choosing.FitResult`` (model, kind, metrics, history, selection...).
    """
    from svetlana.core.ml.choosing import FitResult, choose
    from svetlana.core.ml.training import train

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
    names, units, values, stats = measure_training_set_with_stats(job, progress, cancel)
    result = choose(
        features=values,
        feature_names=names,
        patches=d.patches,
        labels=d.labels,
        groups=job.groups,
        class_names=d.class_names,
        config=job.config,
        candidates=_candidates(job),
        budget_s=job.budget_s,
        mode=job.mode,
        progress=progress,
        cancel=cancel,
    )
    selection = {
        **result.selection,
        "measure_seconds": round(time.perf_counter() - started - result.seconds, 2),
    }
    if result.kind == "forest" and stats:
        result = _with_new_image_forest(job, result, values, stats, cancel)
    if result.kind == "forest" and getattr(result.model, "linear", None) is not None:
        # the linear part serves the labels' images only (ForestModel.for_image)
        known = tuple(sorted({src.identity for src in job.sources if src.identity}))
        result = dataclasses.replace(
            result, model=dataclasses.replace(result.model, linear_identities=known)
        )
    extra = {"measurements": list(names), "measurement_units": list(units)}
    payload = None
    if result.kind in ("forest", "hybrid"):  # serialised here, off the GUI thread (seconds)
        from svetlana.core.ml.forest import forest_bytes

        payload = forest_bytes(result.model if result.kind == "forest" else result.model.forest)
    return dataclasses.replace(result, selection={**selection, **extra}, payload=payload)


def _with_new_image_forest(job: TrainingJob, result: Any, values, stats, cancel) -> Any:
    """The forest with one for images that hold no labels, on per-image scaled measurements,
    when that predicts the images left out better (``core.ml.forest.add_new_image_forest``)."""
    from svetlana.core.ml.forest import add_new_image_forest
    from svetlana.core.objects import image_stats

    t0 = time.perf_counter()
    model = add_new_image_forest(
        result.model, values, job.data.labels, [k[0] for k in job.data.keys], stats,
        seed=job.config.seed, reference_seed=job.sampling_seed,
        n_trees=result.model.n_trees,  # as many trees as the first (the card's "trees")
        reference_objects=image_stats.REFERENCE_OBJECTS,
        identities=[src.identity for src in job.sources if src.identity], cancel=cancel,
    )  # fmt: skip
    return dataclasses.replace(
        result, model=model, seconds=result.seconds + time.perf_counter() - t0
    )


def _candidates(job: TrainingJob) -> tuple[str, ...]:
    if job.kind != "auto":
        return ("forest",)
    return ("forest", "cnn", "hybrid") if job.mode == "thorough" else ("forest", "cnn")


def _hybrid_card(job: TrainingJob, result: Any) -> dict:
    """A hybrid's card: the forest's fields (its measurements end with the CNN's probability
    columns) and the CNN's (``cnn_architecture``, parameters, the final fit's history)."""
    from svetlana.core.ml.forest import IMPORTANCES_KEPT
    from svetlana.core.ml.hybrid import HYBRID
    from svetlana.core.ml.models import count_parameters

    model = result.model
    sel = result.selection
    return {
        "architecture": HYBRID,
        "cnn_architecture": model.cnn_arch,
        "measurements": list(model.forest.feature_names),
        "measurement_units": list(sel["measurement_units"]) + [""] * model.n_stacked,
        "importances": [
            {"name": n, "importance": round(v, 5)}
            for n, v in model.forest.importances(IMPORTANCES_KEPT)
        ],
        "trees": model.forest.n_trees,
        "parameters": count_parameters(model.cnn),
        "history": list(result.history),
        **_stains_note(sel["measurements"]),
    }


def _cnn_card(job: TrainingJob, result: Any) -> dict:
    from svetlana.core.ml.models import count_parameters

    return {
        "architecture": result.arch,
        "architecture_file": job.arch_file,
        "parameters": count_parameters(result.model),
        "history": list(result.history),
    }


def _forest_card(result: Any) -> dict:
    from svetlana.core.ml.forest import FOREST, IMPORTANCES_KEPT, new_images_card
    from svetlana.core.ml.linear import linear_card

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
        **_stains_note(sel["measurements"]),
        # with or without the neighbours' measurements, and why (core/ml/forest.py)
        **({"measurements_chosen": note} if (note := getattr(result.model, "note", "")) else {}),
        **new_images_card(result.model),  # the forest for images without labels, if any
        **linear_card(result.model),  # the linear model averaged in, if any
    }


def _stains_note(measurements: list[str]) -> dict:
    """The card says when the images were taken for RGB brightfield and measured per stain."""
    from svetlana.core.objects.stains import PREFIXES, STAINS

    if not any(n.startswith(PREFIXES) for n in measurements):
        return {}
    return {
        "stains": list(STAINS),
        "stains_note": "RGB uint8 images measured per stain too (colour deconvolution, "
        "scikit-image rgb2hed: haematoxylin and eosin optical densities)",
    }


def finish_training(project: Project, job: TrainingJob, result: Any) -> TrainedModel:
    """Write the model file and card, then register the model (manifest last)."""
    from svetlana.core.ml.choosing import FitResult
    from svetlana.core.ml.models import save_checkpoint

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
        **(
            _forest_card(result)
            if result.kind == "forest"
            else _hybrid_card(job, result)
            if result.kind == "hybrid"
            else _cnn_card(job, result)
        ),
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
    folder = project.models.dir(job.model_id)
    existed = folder.exists()
    try:
        if result.kind == "forest":
            from svetlana.core.ml.forest import save_forest

            save_forest(folder, result.model, card, result.payload)
        elif result.kind == "hybrid":
            from svetlana.core.ml.hybrid import save_hybrid

            save_hybrid(folder, result.model, card, result.payload)
        else:
            save_checkpoint(folder, result.model, card)
        project.models.register(
            job.model_id,
            {"architecture": card["architecture"], "accuracy": result.metrics.get("accuracy")},
        )
    except BaseException:
        if not existed:  # a half-written model folder must not stay behind
            remove_tree(folder)  # never follows a link
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
    mode: str = "quick",
    announce: Callable[[TrainingJob], None] | None = None,
) -> TrainedModel:
    """Train on every labelled object; only a finished run writes into the bundle."""
    cancel = ensure_token(cancel)
    job = prepare_training(
        project, config, patch_size=patch_size, name=name, arch_file=arch_file,
        progress=progress, kind=kind, budget_s=budget_s, mode=mode,
    )  # fmt: skip
    if announce is not None:  # e.g. the CLI prints the estimate before the long part
        announce(job)
    cancel.raise_if_cancelled()
    result = run_training(job, progress, cancel)
    cancel.raise_if_cancelled()
    return finish_training(project, job, result)

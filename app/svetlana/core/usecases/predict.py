"""Project-level prediction: classify every object of images, write class masks and the CSV.

~640 lines: the one predict path (plan, run, one-shot, folder) and the rows and CSV of
predictions.csv; the files are written and read back by ``results.py``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from svetlana.core.annotations.final_class import MODEL, FinalClasses, final_classes, result_classes
from svetlana.core.errors import InputError, ModelError
from svetlana.core.io.csvsafe import to_csv_text, write_csv
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.objects.measurement_cache import MeasurementCache
from svetlana.core.project.bundle import Project
from svetlana.core.project.images import LoadedImage
from svetlana.core.usecases.results import (  # noqa: F401 - the writer and reader, re-exported
    read_predictions,
    replace_prediction_folder,
    write_prediction_outputs,
)

log = logging.getLogger(__name__)


def load_model(project: Project, model_id: str | None = None):
    """The model and its card; ``None`` means the newest."""
    from svetlana.core.ml.models import load_checkpoint

    model_id = project.models.resolve(model_id)
    return load_checkpoint(project.models.dir(model_id))


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
    measurements: MeasurementCache | None = None,
) -> ImagePrediction:
    """Classify every object of one image with a CNN or a forest.

    A forest reads the objects' measurements: through the bundle's cache when ``measurements``
    (a snapshot of where it is) is given, else measured now from ``loaded``.
    """
    from svetlana.core.ml.forest import is_forest
    from svetlana.core.ml.hybrid import is_hybrid
    from svetlana.core.ml.inference import uncertainty

    _check_compatible(card, loaded)
    table = loaded.table
    if is_forest(card):
        probs = _forest_probabilities(model, loaded, measurements, progress, cancel)
        return ImagePrediction(
            loaded.name, table, probs, tuple(card["classes"]), uncertainty(probs)
        )
    if is_hybrid(card):  # the CNN's probabilities, then the forest on measurements + them
        cnn = predict_loaded(model.cnn, {**card, "kind": "cnn", "architecture": model.cnn_arch},
                             loaded, device=device, progress=progress, cancel=cancel)  # fmt: skip
        probs = _forest_probabilities(
            model.given(cnn.probs), loaded, measurements, progress, cancel
        )
        return ImagePrediction(
            loaded.name, table, probs, tuple(card["classes"]), uncertainty(probs)
        )
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import resolve_device  # (a CNN's only: torch's device)

    source, order = loaded.patch_source(int(card["patch_size"]))
    probs = np.empty((len(table), len(card["classes"])), np.float32)
    probs[order] = predict_probabilities(
        model, source, device=resolve_device(device), progress=progress, cancel=cancel
    )
    return ImagePrediction(loaded.name, table, probs, tuple(card["classes"]), uncertainty(probs))


# Objects given to a forest at a time (their columns copied in the model's order).
_FEATURE_BLOCK = 65_536


def _forest_probabilities(model, loaded: LoadedImage, cache, progress, cancel) -> np.ndarray:
    from svetlana.core.ml.forest import select_features
    from svetlana.core.objects.measurements import measure_objects

    cancel = ensure_token(cancel)
    ids = loaded.table.ids
    read = model.read_features  # only the measurements its trees read are computed
    lazy_ids = loaded.measured_ids  # None: the whole mask in one pass; a large image: its ids
    # The table's ids and centroids are every object's: the neighbours' means need no pass over
    # the mask to find them (a whole slide: two passes over its 20,000² mask spared).
    centroids = loaded.table.centroid
    if cache is not None:
        m = cache.measure(
            loaded.image, loaded.labels, ids=lazy_ids, columns=read, progress=progress,
            cancel=cancel, mask_ids=ids, mask_centroids=centroids,
        )  # fmt: skip
    else:  # the table lists every object of the mask: measured as every object (as the cache
        # is), not as a subset, whose context would sum the whole mask once more (~1 s at 16k)
        m = measure_objects(
            loaded.image, loaded.labels, ids=lazy_ids, spacing=loaded.spacing, columns=read,
            mask_ids=ids, progress=progress, cancel=cancel, mask_centroids=centroids,
        )  # fmt: skip
    cancel.raise_if_cancelled()
    rows = None  # the measurement rows of the table's objects (None: the same order)
    if not np.array_equal(m.ids, ids):
        pos = np.searchsorted(m.ids, ids).clip(0, max(len(m.ids) - 1, 0))
        if len(m.ids) == 0 or not np.array_equal(m.ids[pos], ids):
            raise ModelError(f"the measurements of {loaded.name!r} do not cover every object")
        rows = pos

    def features(part: slice) -> np.ndarray:  # the model's columns of these objects
        values = m.values[part] if rows is None else m.values[rows[part]]
        card = getattr(model, "card_path", None)
        return select_features(m.names, values, model.feature_names, card, read)

    identity = None
    if getattr(model, "needs_identity", lambda: False)():  # images known by their content
        from svetlana.core.objects.image_stats import image_identity

        identity = image_identity(loaded.table)
    if identity is not None and model.uses_scaled(loaded.name, identity):
        # an image without labels: the forest on per-image scaled measurements (its reference
        # objects are among every object measured here)
        probs = model.predict_image(features(slice(None)), loaded.name, ids, identity)
    else:  # a block of objects at a time: the model's columns never copied whole (416,025
        # objects x 200 columns: 0.33 GB next to the measurements)
        serving = model.for_image(identity) if identity is not None else model
        starts = range(0, len(ids), _FEATURE_BLOCK) if len(ids) else [0]
        probs = np.concatenate(
            [serving.predict_proba(features(slice(a, a + _FEATURE_BLOCK))) for a in starts]
        )
    if progress is not None:
        progress(Progress("predict", 1, 1, f"{len(ids)} objects"))
    return probs


# Rows of predictions.csv are made this many objects at a time: a 20,000x20,000 image with
# 416,025 objects kept one dict per row plus the whole CSV text, 2.7 GB at the peak.
_ROW_BLOCK = 4096


def prediction_fields(class_names: Sequence[str]) -> list[str]:
    """The columns of predictions.csv; ``class_names`` are the model's (one ``p_`` column each)."""
    fields = ["image", "object", "class", "source", "predicted", "confidence", "uncertainty"]
    fields += [f"p_{c}" for c in class_names]
    fields += ["area", "centroid_z", "centroid_y", "centroid_x"]
    fields += ["bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1", "label", "model"]
    return fields


def prediction_rows(
    pred: ImagePrediction,
    final: FinalClasses,
    model_id: str = "",
    class_names: Sequence[str] | None = None,
) -> Iterator[list]:
    """Rows of predictions.csv for one image, in ``prediction_fields(class_names)`` order
    (default: the model's classes); ``class`` is the final class (``final_class``).

    Rows are made a block of objects at a time from the arrays, so memory does not grow with
    the number of objects when they are written as they come (``write_predictions_csv``).
    """
    t = pred.table
    nd = t.ndim
    axes = "zyx"[3 - nd :]
    names = final.class_names
    model_cols = list(pred.class_names)
    cols = [model_cols.index(c) if c in model_cols else -1 for c in class_names or model_cols]
    n = len(t.ids)
    for a in range(0, n, _ROW_BLOCK):
        b = min(n, a + _ROW_BLOCK)
        ids = t.ids[a:b].tolist()
        final_name = [names[k - 1] for k in final.index[a:b].tolist()]
        predicted = [names[k - 1] for k in final.predicted[a:b].tolist()]
        source = [str(s) for s in final.source[a:b].tolist()]
        conf = pred.confidence[a:b].tolist()
        unc = pred.uncertainty[a:b].tolist()
        probs = pred.probs[a:b].tolist()
        area = t.area[a:b].tolist()
        cen = t.centroid[a:b].tolist()
        box = t.bbox[a:b].tolist()
        for i in range(b - a):
            c, bx = cen[i], box[i]
            row = [
                pred.image,
                ids[i],
                final_name[i],
                source[i],
                predicted[i],
                round(conf[i], 5),
                round(unc[i], 5),
            ]
            row += [round(probs[i][k], 5) if k >= 0 else "" for k in cols]
            row.append(area[i])
            row += [round(c[axes.index(x)], 2) if x in axes else "" for x in "zyx"]
            row += [bx[axes.index(x)] if x in axes else "" for x in "zyx"]
            row += [bx[nd + axes.index(x)] if x in axes else "" for x in "zyx"]
            row.append(final_name[i] if source[i] != MODEL else "")
            row.append(model_id)
            yield row


def prediction_csv_blocks(
    pred: ImagePrediction,
    final: FinalClasses,
    model_id: str = "",
    class_names: Sequence[str] | None = None,
) -> Iterator[str]:
    """The lines of ``prediction_rows`` as ``csvsafe.write_csv`` writes them (byte for byte),
    a block of objects at a time: the few texts of a run (image, classes, sources, model) are
    quoted and made spreadsheet-safe once, not per cell (5x faster at 16,671 objects)."""
    texts = [
        pred.image,
        model_id,
        *final.class_names,
        *(str(s) for s in set(final.source.tolist())),
    ]
    if any("\r" in t for t in texts):  # such a row is written fully quoted: row by row then
        buf = io.StringIO()
        rows = prediction_rows(pred, final, model_id, class_names)
        write_csv(buf, prediction_fields(class_names or pred.class_names), rows, with_header=False)
        yield buf.getvalue()
        return
    cell = {t: _csv_cell(t) for t in texts}
    t = pred.table
    nd = t.ndim
    axes = "zyx"[3 - nd :]
    names = [cell[c] for c in final.class_names]
    model_cols = list(pred.class_names)
    cols = [model_cols.index(c) if c in model_cols else -1 for c in class_names or model_cols]
    image, model = cell[pred.image], cell[model_id]
    n = len(t.ids)
    for a in range(0, n, _ROW_BLOCK):
        b = min(n, a + _ROW_BLOCK)
        m = b - a
        final_name = [names[k - 1] for k in final.index[a:b].tolist()]
        human = (final.source[a:b] != MODEL).tolist()
        columns = [
            [image] * m,
            [str(i) for i in t.ids[a:b].tolist()],
            final_name,
            [cell[str(s)] for s in final.source[a:b].tolist()],
            [names[k - 1] for k in final.predicted[a:b].tolist()],
            _rounded(pred.confidence[a:b], 5),
            _rounded(pred.uncertainty[a:b], 5),
        ]
        probs = pred.probs[a:b]
        for k in cols:
            columns.append(_rounded(probs[:, k], 5) if k >= 0 else [""] * m)
        columns.append([str(v) for v in t.area[a:b].tolist()])
        cen, box = t.centroid[a:b], t.bbox[a:b]
        for x in "zyx":
            k = axes.index(x) if x in axes else -1
            columns.append([repr(round(v, 2)) for v in cen[:, k].tolist()] if k >= 0 else [""] * m)
        for off in (0, nd):
            for x in "zyx":
                k = axes.index(x) if x in axes else -1
                columns.append([str(v) for v in box[:, off + k].tolist()] if k >= 0 else [""] * m)
        columns.append([f if h else "" for f, h in zip(final_name, human, strict=True)])
        columns.append([model] * m)
        yield "".join(",".join(row) + "\n" for row in zip(*columns, strict=True))


def _rounded(values: np.ndarray, digits: int) -> list[str]:
    """``repr(round(v, digits))`` of each value, made once per distinct value (a forest's
    probabilities take few): the same texts, a fraction of the calls."""
    values = np.asarray(values)
    if values.dtype.itemsize not in (4, 8) or values.dtype.kind != "f":
        return [repr(round(v, digits)) for v in values.tolist()]
    bits = values.view(np.uint32 if values.dtype.itemsize == 4 else np.uint64)  # -0.0, NaNs
    uniq, first, inverse = np.unique(bits, return_index=True, return_inverse=True)
    if 2 * uniq.size > values.size:
        return [repr(round(v, digits)) for v in values.tolist()]
    texts = [repr(round(v, digits)) for v in values[first].tolist()]
    return [texts[i] for i in inverse.tolist()]


def _csv_cell(text: str) -> str:
    """One text cell as ``csvsafe.write_csv`` writes it inside a row (neutralised, quoted)."""
    if text == "":
        return ""
    buf = io.StringIO()
    write_csv(buf, (), [[text, ""]], with_header=False)
    return buf.getvalue()[: -len(",\n")]


def write_predictions_csv(
    f: TextIO, class_names: Sequence[str], rows: Iterable = (), blocks: Iterable[str] = ()
) -> None:
    """predictions.csv to the text file ``f``: the header, ``blocks`` of finished lines
    (``prediction_csv_blocks``), then ``rows`` (``csvsafe.write_csv``), as they come."""
    header = prediction_fields(class_names)
    write_csv(f, header, ())
    for block in blocks:
        f.write(block)
    write_csv(f, header, rows, with_header=False)


def rows_to_csv(rows: Iterable, class_names: Sequence[str]) -> str:
    """predictions.csv text; ``class_names`` are the model's (one ``p_`` column each)."""
    return to_csv_text(prediction_fields(class_names), rows)


@dataclass(frozen=True)
class PredictionRun:
    model_id: str
    out_dir: Path
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # image -> class -> count
    files: tuple[Path, ...]
    seconds: float
    predictions: dict = field(default_factory=dict)  # image -> ImagePrediction
    errors: tuple[tuple[str, str, str], ...] = ()  # (image, file, message) of failed images
    resumed: int = 0  # images kept from an earlier run (--resume)

    @property
    def total_counts(self) -> dict[str, int]:
        tot = dict.fromkeys(self.class_names, 0)
        for c in self.counts.values():
            for k, v in c.items():
                tot[k] += v
        return tot


def final_of_run(
    preds: Sequence[ImagePrediction], class_names, manual_of, project_classes: Sequence[str] = ()
) -> dict[str, FinalClasses]:
    """image -> final classes of a run's predictions, with the labels ``manual_of(image)``."""
    names = result_classes(class_names, project_classes)
    return {p.image: final_classes(p, manual_of(p.image), names) for p in preds}


def _import_torch_in_background() -> None:
    """Start importing torch on a daemon thread unless it is loaded (errors surface on first use)."""
    import sys
    import threading

    if "torch" in sys.modules:
        return

    def run() -> None:
        with contextlib.suppress(Exception):  # the main thread's own import reports it
            from svetlana.core.ml._torch import load_torch

            load_torch("fx")

    threading.Thread(target=run, name="import-torch", daemon=True).start()


@dataclass(frozen=True, eq=False)
class PredictionPlan:
    """Everything a prediction needs, taken from a project by ``plan_prediction``; running it
    (``run_prediction``) reads the images through ``images`` only, on the thread that owns that
    project (the CLI's, or a GUI worker with its own read-only view)."""

    model_id: str
    model_dir: Path
    card: dict
    images: tuple[Callable[[], LoadedImage], ...]  # each loads its image when its turn comes
    caches: tuple[MeasurementCache | None, ...]  # where each image's measurements are cached
    manual: dict  # image -> {object: Label}: a snapshot of the user's labels
    project_classes: tuple[str, ...]
    out_dir: Path | None  # None: the bundle's predictions/<model>/, replaced when complete
    bundle_dir: Path
    write: bool = True  # False: predict only
    model_box: list = field(default_factory=list)  # the loaded model, once loaded
    others: tuple[str, ...] = ()  # the project's other images: their saved predictions stay


def plan_prediction(
    project: Project,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    write: bool = True,
    model: Any = None,
    cache_measurements: bool | None = None,
) -> PredictionPlan:
    """Resolve the model and images, snapshot labels and cache locations; the first image is
    read now, the others when their turn comes (one image in memory at a time: the project's
    cache keeps the last few). ``cache_measurements``: cache a forest's measurements in the bundle even from a read-only
    view (the GUI plans in a worker on one)."""
    from svetlana.core.objects.measurement_cache import measurement_cache

    model_id = project.models.resolve(model_id)
    names = list(images) if images else list(project.image_names)
    for n in names:
        project.image(n)
    if not names:
        raise InputError("the project has no images to predict", project.path)
    if out_dir is not None and write:  # refused before the work, not after it
        from svetlana.core.io.outputs import check_output_folder

        check_output_folder(out_dir, "predictions", inputs=[project.path])
    model_dir = project.models.dir(model_id)
    card = project.models.card(model_id)  # checked: a damaged card is one clear message

    from svetlana.core.ml.forest import is_forest

    needs_pixels = not is_forest(card)  # a network reads normalised patches; a forest measures

    def ready(name: str) -> LoadedImage:
        im = project.load(name)
        im.prepare(pixels=needs_pixels)  # computed here: a worker only reads it
        return im

    ready(names[0])  # read while torch is imported in the background (predict_project)
    loaders = tuple((lambda n=n: ready(n)) for n in names)
    return PredictionPlan(
        model_id=model_id,
        model_dir=model_dir,
        card=card,
        images=loaders,
        caches=tuple(measurement_cache(project, n, cache_measurements) for n in names),
        manual={n: dict(project.annotations.for_image(n)) for n in names},
        project_classes=tuple(project.annotations.class_names),
        out_dir=None if out_dir is None else Path(out_dir),
        bundle_dir=project.prediction_dir(model_id),  # checked: no link on the way
        write=write,
        model_box=[model] if model is not None else [],
        others=tuple(n for n in project.image_names if n not in names),
    )


def run_prediction(
    plan: PredictionPlan,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PredictionRun:
    """Classify every object of the plan's images; write class masks and predictions.csv
    (into ``out_dir``, or the bundle's prediction folder swapped in only once complete: a
    cancelled run leaves the previous results)."""
    from svetlana.core.ml.models import load_checkpoint

    t0 = time.perf_counter()
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    if not plan.model_box:
        progress(Progress("predict", 0, 1, f"loading {plan.model_id}"))
        plan.model_box.append(load_checkpoint(plan.model_dir)[0])
    model, card = plan.model_box[0], plan.card
    preds = []
    n = len(plan.images)
    for k, (load, cache) in enumerate(zip(plan.images, plan.caches, strict=True)):
        cancel.raise_if_cancelled()
        loaded = load()
        sub = image_progress(progress, k, n, loaded.name)
        pred = predict_loaded(
            model, card, loaded, device=device, progress=sub, cancel=cancel, measurements=cache
        )
        preds.append((pred, loaded))
    cancel.raise_if_cancelled()
    class_names = tuple(card["classes"])

    def manual_of(im):
        return plan.manual.get(im, {})

    provenance = {
        "model_id": plan.model_id,
        "model_dir": plan.model_dir,
        "project_classes": plan.project_classes,
    }
    files: tuple[Path, ...] = ()
    out = plan.out_dir if plan.out_dir is not None else plan.bundle_dir
    if plan.write and plan.out_dir is None:
        files = tuple(
            replace_prediction_folder(
                out, preds, class_names, manual_of, cancel, keep=plan.others, **provenance
            )
        )
    elif plan.write:  # --out: written beside, swapped in whole (never two runs mixed)
        from svetlana.core.io.outputs import output_folder

        with output_folder(out, "predictions") as tmp:
            written = write_prediction_outputs(tmp, preds, class_names, manual_of, **provenance)
            cancel.raise_if_cancelled()
        files = tuple(out / p.name for p in written)
    finals = final_of_run([p for p, _ in preds], class_names, manual_of, plan.project_classes)
    counts = {name: f.counts() for name, f in finals.items()}
    progress(Progress("predict", 1, 1, "done"))
    return PredictionRun(
        plan.model_id,
        out,
        class_names,
        counts,
        files,
        time.perf_counter() - t0,
        {p.image: p for p, _ in preds},
    )


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
    """The one-shot form (the CLI's): ``plan_prediction`` then ``run_prediction``."""
    # Importing torch takes seconds: do it on a second thread while the images are read
    # (16,671 objects on 4096x4096, 2 busy cores: 4.0 s -> 3.2 s to both ready).
    from svetlana.core.ml.forest import is_forest

    try:
        forest = is_forest(project.models.card(project.models.resolve(model_id)))
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - the plan reports a damaged card clearly
        forest = False
    if not forest:  # a forest needs no torch
        _import_torch_in_background()
    plan = plan_prediction(project, model_id, images, out_dir)
    return run_prediction(plan, device=device, progress=progress, cancel=cancel)


def image_progress(progress: ProgressFn, k: int, n: int, name: str) -> ProgressFn:
    """Progress of image ``k`` of ``n`` as a part of the whole run (0..n*1000)."""

    def sub(p: Progress) -> None:
        progress(
            Progress(
                "predict", k * 1000 + int(p.fraction * 1000), n * 1000, f"image {k + 1}/{n}: {name}"
            )
        )

    return sub


def predict_folder(
    model_folder: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    *,
    axes: str | None = None,
    device: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PredictionRun:
    """Predict image/mask pairs of a folder that are not in a project (read-only on the inputs).

    One task per pair (``core/usecases/batch.py``): in this process, or on a Dask cluster of ``workers``
    local processes or at ``scheduler``. A bad pair is an error line (``errors.csv``), not a stop;
    ``resume`` keeps the images an earlier run completed.
    """
    from svetlana.core.usecases import batch

    t0 = time.perf_counter()
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    model_folder = Path(model_folder)
    _, card = batch.cached_model(batch.ModelRef.of(model_folder))  # a bad model stops here
    model_id = str(card.get("id", model_folder.name))
    if device == "auto" and (workers or scheduler):
        device = "cpu"  # workers share the machine's accelerators badly; CPU is predictable
    from svetlana.core.io.outputs import check_output_folder, output_folder

    final = check_output_folder(out_dir, "predictions", inputs=[folder])
    staging = batch.staging_folder(final)
    tasks = batch.plan_folder(
        model_folder, folder, staging, axes=axes, device=device, model_id=model_id
    )
    batch.prepare_staging(final, resume)
    if workers or scheduler:
        from svetlana.core.usecases.cluster import dask_client, run_on_client

        with dask_client(workers, scheduler) as client:
            results = batch.run_tasks(
                tasks, lambda todo: run_on_client(client, todo, cancel), resume=resume,
                progress=progress,
            )  # fmt: skip
    else:
        results = batch.run_tasks(
            tasks, lambda todo: batch.run_here(todo, cancel), resume=resume, progress=progress
        )
    cancel.raise_if_cancelled()
    class_names = tuple(card["classes"])
    written = batch.merge_parts(tasks, results, class_names, model_dir=model_folder)
    keep = {p.name for p in written} | {batch.PARTS_DIR}
    with output_folder(final, "predictions", inputs=[folder]) as tmp:  # swapped in whole
        for p in staging.iterdir():
            if p.name in keep:
                p.rename(tmp / p.name)
    shutil.rmtree(staging, ignore_errors=True)
    files = [final / p.name for p in written]
    progress(Progress("predict", len(tasks), len(tasks), "done"))
    ok = [results[t.image] for t in tasks if results[t.image].ok]
    return PredictionRun(
        model_id,
        final,
        class_names,
        {r.image: r.counts for r in ok},
        tuple(files),
        time.perf_counter() - t0,
        errors=tuple((r.image, r.file, r.error) for r in results.values() if not r.ok),
        resumed=sum(r.resumed for r in results.values()),
    )

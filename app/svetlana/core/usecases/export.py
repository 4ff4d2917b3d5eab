"""Every export as one operation, for the GUI and the CLI: ``plan_export`` (main thread: cheap
checks, a snapshot of what to write) → ``run_export`` (a worker or the CLI: a read-only view of
the bundle of its own, or the CLI's open project; Qt-free) → an ``ExportDone`` to report. The
Predict tab exports the predictions it shows; the CLI (``from_saved``) the saved ones, or
predicted now. ``export_refusal`` tells a menu what cannot be exported before a folder is asked
for. ``run_export_whole`` writes a folder export beside the folder chosen and swaps it in whole
(``core/io/outputs.output_folder``): a cancel, a failure or a crash leaves that folder as it was."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from svetlana.core.errors import InputError, SvetlanaError
from svetlana.core.jobs import CancelToken, Progress
from svetlana.core.wording import plural

log = logging.getLogger(__name__)

MASKS, TABLE, OBJECTS, BIOIMAGEIO = "masks", "table", "objects", "bioimageio"
FILTERED, PATCHES, MODEL = "filtered", "patches", "model"  # the CLI's export-mask/-patches/-model
KINDS = (MASKS, TABLE, OBJECTS, BIOIMAGEIO, FILTERED, PATCHES, MODEL)


@dataclass(frozen=True)
class ExportKind:
    """How a folder export is named, the one table of it for the CLI and the GUI."""

    folder: str  # recorded in its folder's run.json: a later export replaces only its own
    what: str  # in a sentence: "Export <what> to …"
    title: str = ""  # its entry in the Predict tab's Export menu ("": the CLI only)


# the kinds ``run_export_whole`` writes (outputs.check_output_folder reads ``folder`` back)
EXPORT_KINDS = {
    MASKS: ExportKind("predictions", "predictions", "Class masks and predictions.csv"),
    TABLE: ExportKind("table", "the measurement table", "Measurement table (CSV)"),
    OBJECTS: ExportKind("objects", "the GeoJSON files", "Objects for QuPath (GeoJSON)"),
    BIOIMAGEIO: ExportKind("bioimage.io", "the bioimage.io package", "bioimage.io model package"),
    PATCHES: ExportKind("labelled patches", "the labelled patches"),
    MODEL: ExportKind("model", "the model"),
}


@dataclass(frozen=True, eq=False)
class ExportPlan:
    """What one export writes, decided on the main thread; all the worker gets."""

    kind: str  # one of KINDS
    bundle: Path
    out_dir: Path
    model_id: str | None  # None: the latest (or, for OBJECTS, the labels only)
    images: tuple[str, ...] | None = ()  # None: every image of the project
    predictions: Mapping[str, Any] | None = None  # image -> ImagePrediction; None: the saved
    info: Any = None  # bioimageio_export.PackageInfo
    note: str = ""  # said with the result (e.g. 3D images left out of the GeoJSON)
    options: Mapping[str, Any] = field(default_factory=dict)  # the kind's own (e.g. summary)


@dataclass(frozen=True)
class ExportDone:
    """What an export wrote, for the report on the main thread."""

    kind: str
    folder: Path
    files: tuple[Path, ...]
    message: str
    result: Any = None  # what the export function returned (the CLI prints from it)


def export_refusal(project, kind: str, predictions, model_id: str | None) -> SvetlanaError | None:
    """Why ``kind`` cannot be exported now (no prediction, a forest for a package, only 3D
    images for GeoJSON), or None: checked before the user is asked for a folder."""
    try:
        plan_export(project, kind, None, predictions, model_id)
    except SvetlanaError as exc:
        return exc
    return None


def plan_export(
    project,
    kind: str,
    out_dir: str | Path | None,
    predictions=None,
    model_id: str | None = None,
    info=None,
    *,
    from_saved: bool = False,
    images=None,
    options: Mapping[str, Any] | None = None,
) -> ExportPlan:
    """Check on the main thread that ``kind`` can be written (cheap checks only; raises
    InputError/ModelError with the reason) and snapshot what the worker needs (``out_dir``
    None: only the checks).

    ``from_saved`` (the CLI): the saved predictions of ``model_id``, or predicted now, of
    ``images`` (None: all); the export itself checks its arguments as it starts (one message
    for each mistake, as the CLI has always said it).
    """
    out = Path(out_dir) if out_dir is not None else Path()
    if kind not in KINDS:
        raise ValueError(f"unknown export {kind!r}")
    if from_saved:
        names = tuple(images) if images else None
        return ExportPlan(
            kind, project.path, out, model_id, names, None, info, options=dict(options or {})
        )
    if out_dir is not None and out.exists() and not out.is_dir():
        raise InputError("the output must be a folder", out)
    if kind == BIOIMAGEIO:
        from svetlana.core.ml.forest import is_forest
        from svetlana.core.usecases.export_bioimageio import forest_refusal

        if not model_id:
            raise InputError("the project has no trained model yet: train one in the Training tab")
        from svetlana.core.ml.hybrid import is_hybrid
        from svetlana.core.usecases.export_bioimageio import hybrid_refusal

        if is_forest(project.models.card(model_id)):
            raise forest_refusal(model_id)
        if is_hybrid(project.models.card(model_id)):
            raise hybrid_refusal(model_id)
        return ExportPlan(kind, project.path, out, model_id, info=info)
    if kind not in (MASKS, TABLE, OBJECTS):
        raise ValueError(f"the Predict tab does not export {kind!r}")
    if not predictions or not model_id:
        raise InputError("nothing to export: run a prediction first")
    images = tuple(predictions)
    note = ""
    if kind == OBJECTS:
        flat = tuple(im for im in images if project.image(im).ndim == 2)
        left = [im for im in images if im not in flat]
        if not flat:
            raise InputError(
                "GeoJSON outlines are 2D and the predicted images are 3D: export the measurement "
                "table instead",
                project.path,
            )
        if left:
            note = f"{plural(len(left), '3D image')} left out (GeoJSON outlines are 2D): {', '.join(left)}"
        images = flat
    return ExportPlan(kind, project.path, out, model_id, images, dict(predictions), note=note)


def run_export(
    plan: ExportPlan,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    project=None,
) -> ExportDone:
    """Write ``plan`` (Qt-free): from a read-only view of the bundle of its own (a worker), or
    from ``project`` (the CLI's, opened for it)."""
    from svetlana.core.project.bundle import Project

    progress = progress if progress is not None else (lambda _event: None)
    cancel = cancel if cancel is not None else CancelToken()
    write = _WRITERS[plan.kind]
    if project is not None:
        files, message, result = write(project, plan, progress, cancel)
    else:
        with Project.open(plan.bundle, readonly=True) as view:
            files, message, result = write(view, plan, progress, cancel)
    if plan.note:
        message += f"\n{plan.note}."
    return ExportDone(plan.kind, plan.out_dir, tuple(files), message, result)


def run_export_whole(
    plan: ExportPlan,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    project=None,
    arg: str = "--out",
) -> ExportDone:
    """``run_export`` into a new folder beside ``plan.out_dir``, swapped in whole once complete
    (``outputs.output_folder``, as the CLI's predict does): a cancel, a failure or a crash leaves
    the folder as it was, never half-written. The folder must be new, empty or an earlier export
    of the same kind (else InputError naming it as ``arg``, before anything is written); a
    ``run.json`` marks it as such. Paths in the result name the final folder (Qt-free)."""
    from svetlana.core.io.fileio import atomic_write_json
    from svetlana.core.io.outputs import RUN_FILE, output_folder

    kind = EXPORT_KINDS[plan.kind].folder
    cancel = cancel if cancel is not None else CancelToken()
    with output_folder(plan.out_dir, kind, arg=arg) as tmp:
        done = run_export(replace(plan, out_dir=tmp), progress, cancel, project)
        if not (tmp / RUN_FILE).exists():  # the next export knows the folder is its own
            atomic_write_json(tmp / RUN_FILE, {"kind": kind})
        cancel.raise_if_cancelled()
    final = Path(plan.out_dir).absolute()
    return _moved(replace(done, folder=final), Path(tmp), final)


def _moved(value, tmp: Path, final: Path):
    """``value`` with every path inside ``tmp`` (in dataclasses, tuples, lists, dicts) moved to
    the same place in ``final``."""
    if isinstance(value, Path):
        try:
            return final / value.relative_to(tmp)
        except ValueError:
            return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _moved(getattr(value, f.name), tmp, final)
                  for f in dataclasses.fields(value) if f.init}  # fmt: skip
        return replace(value, **fields)
    if isinstance(value, tuple | list):
        return type(value)(_moved(v, tmp, final) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, tmp, final) for k, v in value.items()}
    return value


def _write_masks(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.predict import write_prediction_outputs

    pairs = []
    for k, (name, pred) in enumerate(plan.predictions.items()):
        cancel.raise_if_cancelled()
        progress(Progress("export", k, len(plan.predictions), f"loading {name}"))
        pairs.append((pred, view.load(name)))
    files = write_prediction_outputs(
        plan.out_dir, pairs, next(iter(plan.predictions.values())).class_names,
        view.annotations.for_image, model_id=plan.model_id,
        model_dir=view.models.dir(plan.model_id),
        project_classes=view.annotations.class_names,
    )  # fmt: skip
    message = (
        f"Wrote the class masks of {plural(len(pairs), 'image')} "
        "(<image>_classes.tif: pixel value = class number) and predictions.csv."
    )
    return files, message, None


def _of_predictions(export, view, plan: ExportPlan, progress, cancel):
    """A table or objects export of the plan's images, with its predictions."""
    return export(
        view, plan.out_dir, plan.images, model_id=plan.model_id, predictions=plan.predictions,
        progress=progress, cancel=cancel, **plan.options,
    )  # fmt: skip


def _write_table(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_table import export_table

    r = _of_predictions(export_table, view, plan, progress, cancel)
    message = (
        f"Wrote {plural(r.rows, 'object')} of {plural(len(r.images), 'image')} to "
        f"{r.files[0].name}, and the counts and means per class to {r.files[1].name}."
    )
    return r.files, message, r


def _write_objects(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_geojson import export_objects

    r = _of_predictions(export_objects, view, plan, progress, cancel)
    message = (
        f"Wrote {plural(r.objects, 'object')} to {plural(len(r.files), 'GeoJSON file')}"
        f" ({', '.join(f.name for f in r.files)}). In QuPath: open the image, then "
        "File ▸ Import objects from file."
    )
    return r.files, message, r


def _write_bioimageio(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_bioimageio import (
        DEFAULT_AUTHOR,
        PackageInfo,
        export_bioimageio,
    )

    progress(Progress("export", 0, 1, f"packaging {plan.model_id or 'the latest model'}"))
    info = plan.info or PackageInfo()
    r = export_bioimageio(view, plan.out_dir, plan.model_id, info)
    message = (
        f"Wrote the bioimage.io package of {r.model_id}: the folder {r.folder.name} and "
        f"{r.zip_path.name}. Check it with: bioimageio test {r.rdf}"
    )
    if DEFAULT_AUTHOR in info.authors:
        message += f"\nThe author is given as {DEFAULT_AUTHOR!r}: edit rdf.yaml before sharing it."
    return (r.folder, r.zip_path), message, r


def _write_filtered(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_masks import export_filtered

    o = dict(plan.options)
    s = export_filtered(
        view, o.pop("keep"), plan.out_dir, model_id=plan.model_id, images=plan.images,
        progress=progress, cancel=cancel, **o,
    )  # fmt: skip
    files = s.files or (*(p for r in s.images for p in r.files), s.csv_path)
    message = f"Kept {plural(s.kept, 'object')}, removed {s.removed}; wrote {s.csv_path.name}."
    return files, message, s


def _write_patches(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_patches import export_patches

    r = export_patches(view, plan.out_dir, progress=progress, cancel=cancel, **plan.options)
    return (r.npz, r.csv), f"Wrote {plural(r.n, 'patch', 'patches')} to {r.npz.name}.", r


def _write_model(view, plan: ExportPlan, progress, cancel):
    from svetlana.core.usecases.export_model import export_model

    r = export_model(view, plan.out_dir, plan.model_id)
    return r.files, f"Exported {r.model_id} to {r.files[0].name}.", r


_WRITERS = {
    MASKS: _write_masks, TABLE: _write_table, OBJECTS: _write_objects,
    BIOIMAGEIO: _write_bioimageio, FILTERED: _write_filtered, PATCHES: _write_patches,
    MODEL: _write_model,
}  # fmt: skip

"""Tidy tables out of a project: per-object measurements, with the final classes and the
model's probabilities (one CSV per project), and a per-image summary per class."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn

log = logging.getLogger(__name__)

MEASUREMENTS_CSV = "measurements.csv"
COLUMNS_CSV = "measurements_columns.csv"
MEASURE_KIND = "measurements"  # `svetlana measure`'s folder, in its run.json
OBJECTS_CSV = "objects.csv"
SUMMARY_CSV = "summary.csv"
OBJECT_COLUMNS_CSV = "objects_columns.csv"
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class TableExport:
    """What an export wrote: the files, rows (objects) and images."""

    files: tuple[Path, ...]
    rows: int
    images: tuple[str, ...]
    columns: tuple[str, ...]
    note: str = ""  # e.g. "predicted now": said to the user


def _measure_images(
    project, names: Sequence[str], progress: ProgressFn | None, cancel: CancelToken | None
) -> tuple[list, dict[str, str]]:
    """Each image's measurements (the bundle's cache) and the union of their columns -> unit."""
    from svetlana.core.objects.measurement_cache import project_measurements

    tables = []
    for k, name in enumerate(names):
        if cancel is not None:
            cancel.raise_if_cancelled()

        def sub(p: Progress, k=k, name=name) -> None:
            if progress is not None:
                frac = (k + p.fraction) / len(names)
                progress(Progress("measure", int(frac * 1000), 1000, f"measuring {name}"))

        tables.append(project_measurements(project, name, progress=sub, cancel=cancel))
    columns: dict[str, str] = {}
    for m in tables:
        for col, unit in zip(m.names, m.units, strict=True):
            columns.setdefault(col, unit)
    return tables, columns


def text_cell(value: str) -> str:
    """A text cell ready to join with commas: one a spreadsheet will not run as a formula (see
    ``csvsafe.neutralise``), quoted as the csv module would when it holds , " or a line end."""
    from svetlana.core.io.csvsafe import neutralise

    text = str(neutralise(str(value)))
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _check_images(project, images: Sequence[str] | None) -> list[str]:
    names = list(project.image_names)
    if not images:
        if not names:
            raise InputError("the project has no images yet", project.path)
        return names
    unknown = [im for im in images if im not in names]
    if unknown:
        raise InputError(
            f"no image named {', '.join(map(repr, unknown))} (images: {', '.join(names)})",
            project.path,
        )
    return list(dict.fromkeys(images))


def _check_out(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    return out_dir


def _format_block(values: np.ndarray) -> list[str]:
    """Rows of numbers as CSV text (%.7g keeps every float32 digit; integers print bare)."""
    if values.size == 0:
        return [""] * values.shape[0]
    buf = io.StringIO()
    np.savetxt(buf, values, fmt="%.7g", delimiter=",")
    return buf.getvalue().splitlines()


def export_measurements(
    project,
    out_dir: str | Path,
    images: Sequence[str] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    arg: str = "--out",
) -> TableExport:
    """``out_dir/measurements.csv``: image, object, then every measurement (cached in the bundle),
    ``measurements_columns.csv`` (column, unit) and ``run.json``. Images with other columns
    (channels, 2D/3D) leave the cells they lack empty. ``out_dir`` must be new, empty or an
    earlier output of this export (``arg`` names it in the refusal); it is written beside and
    swapped in whole (``outputs.output_folder``): a failure or cancel leaves it as it was."""
    from svetlana.core.io.fileio import atomic_write_json, atomic_write_text
    from svetlana.core.io.outputs import RUN_FILE, check_output_folder, output_folder

    names = _check_images(project, images)
    earlier = (MEASUREMENTS_CSV, COLUMNS_CSV)  # measure's folder before it had a run.json
    final = check_output_folder(out_dir, MEASURE_KIND, arg=arg, earlier=earlier)  # before measuring
    cancel = cancel if cancel is not None else CancelToken()
    tables, columns = _measure_images(project, names, progress, cancel)
    order = list(columns)
    lines = [",".join(["image", "object", *order])]
    for name, m in zip(names, tables, strict=True):
        pos = [order.index(c) for c in m.names]
        full = np.full((len(m), len(order)), np.nan, np.float32)
        full[:, pos] = m.values
        body = _format_block(full)
        cell = text_cell(name)
        for obj, row in zip(m.ids, body, strict=True):
            lines.append(f"{cell},{int(obj)},{row.replace('nan', '')}")
    with output_folder(final, MEASURE_KIND, arg=arg, earlier=earlier) as tmp:
        atomic_write_text(tmp / MEASUREMENTS_CSV, "\n".join(lines) + "\n")
        text = "column,unit\n" + "".join(f"{c},{columns[c]}\n" for c in order)
        atomic_write_text(tmp / COLUMNS_CSV, text)
        atomic_write_json(tmp / RUN_FILE, {"kind": MEASURE_KIND})
        cancel.raise_if_cancelled()
    table, units = final / MEASUREMENTS_CSV, final / COLUMNS_CSV
    if progress is not None:
        progress(Progress("measure", 1000, 1000, f"wrote {table.name}"))
    rows = sum(len(m) for m in tables)
    return TableExport((table, units), rows, tuple(names), tuple(order))


# ---- the classes each object leaves with --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImageResult:
    """One image's objects with their final class (see core.final_class) and probabilities."""

    image: str
    ids: np.ndarray  # (n,) int64 ascending: every object of the image
    final: np.ndarray  # (n,) str final class ("" when neither a label nor a prediction)
    source: np.ndarray  # (n,) str: manual | correction | import | model | ""
    predicted: np.ndarray  # (n,) str: the model's class ("" without a prediction)
    confidence: np.ndarray  # (n,) float, NaN without a prediction
    probs: np.ndarray  # (n, len(model_classes)) float, NaN without a prediction


@dataclass(frozen=True, eq=False)
class Results:
    """The final classes of a project's objects, from its saved predictions of one model."""

    model_id: str  # "" when the project has no model (labels only)
    model_classes: tuple[str, ...]
    class_names: tuple[str, ...]  # every class an object can end with, in order
    colours: dict[str, str]  # class -> "#rrggbb"
    images: dict[str, ImageResult]
    note: str = ""  # e.g. the predictions were made now, none being saved and current


def load_results(
    project,
    images: Sequence[str],
    model_id: str | None = None,
    predictions: Mapping[str, Any] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Results:
    """Final classes of every object of ``images``: the human label where there is one, else the
    class predicted by ``model_id`` (the newest model by default): its saved predictions when
    current, else predicted now (``results.project_predictions``; ``Results.note`` says so).
    Without any model: the labels only. ``predictions`` (image -> ``ImagePrediction`` of
    ``model_id``, e.g. the ones the window shows) replace the saved ones."""
    from svetlana.core.annotations.final_class import MODEL, final_classes, result_classes

    store = project.annotations
    colours = {c.name: c.colour for c in store.classes}
    saved: Mapping[str, Any]
    note = ""
    if predictions:
        if not model_id:
            raise ValueError("predictions need the model_id that made them")
        mid = model_id
        model_classes = tuple(str(c) for c in next(iter(predictions.values())).class_names)
        saved = predictions
    elif model_id is None and project.models.latest() is None:
        mid, model_classes, saved = "", (), {}
    else:
        from svetlana.core.usecases.results import project_predictions

        got = project_predictions(project, model_id, images, progress=progress, cancel=cancel)
        mid, saved, note = got.model_id, got.predictions, got.note
        model_classes = tuple(str(c) for c in project.models.card(mid)["classes"])
    names = list(result_classes(model_classes, store.class_names))
    out = {}
    for image in images:
        ids = project.load(image).table.ids
        n = ids.size
        final = np.full(n, "", dtype=object)
        source = np.full(n, "", dtype=object)
        predicted = np.full(n, "", dtype=object)
        conf = np.full(n, np.nan)
        probs = np.full((n, len(model_classes)), np.nan)
        labels = store.for_image(image)
        if image in saved:
            fc = final_classes(saved[image], labels, names)
            rows = np.searchsorted(ids, fc.ids)
            ok = (rows < n) & (ids[np.minimum(rows, n - 1)] == fc.ids) if n else rows < 0
            rows, pick = rows[ok], np.flatnonzero(ok)
            final[rows] = np.array(fc.names(), dtype=object)[pick]
            source[rows] = fc.source[pick]
            predicted[rows] = np.array([fc.class_names[k - 1] for k in fc.predicted])[pick]
            conf[rows] = fc.confidence[pick]
            probs[rows] = saved[image].probs[pick]
        for obj, lab in labels.items():  # labels of objects without a saved prediction
            r = int(np.searchsorted(ids, obj))
            if r < n and ids[r] == obj and source[r] in ("", MODEL) and not predicted[r]:
                final[r], source[r] = lab.class_name, lab.source
                if lab.class_name not in names:
                    names.append(lab.class_name)
        out[image] = ImageResult(
            image, ids, final.astype(str), source.astype(str), predicted.astype(str), conf, probs
        )
    return Results(mid, model_classes, tuple(names), colours, out, note)


# ---- export-table -----------------------------------------------------------------------------


def _default_summary(names: Sequence[str]) -> list[str]:
    size = [c for c in ("area", "volume", "equivalent_diameter") if c in names]
    return size + [c for c in names if c.startswith("ch") and c.endswith("_mean") and
                   c.count("_") == 1]  # fmt: skip


def export_table(
    project,
    out_dir: str | Path,
    images: Sequence[str] | None = None,
    *,
    model_id: str | None = None,
    summary: Sequence[str] | None = None,
    predictions: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TableExport:
    """``objects.csv`` (one row per object: image, object, class, source, predicted,
    confidence, p_<class>..., every measurement), ``summary.csv`` (per image and class: count,
    fraction, mean of the ``summary`` measurements), ``objects_columns.csv`` (units) and
    ``run.json``. ``predictions``: see ``load_results`` (default: the saved ones)."""
    from svetlana.core.io.fileio import atomic_write_text
    from svetlana.core.project.provenance import write_run_record

    names = _check_images(project, images)
    out_dir = _check_out(out_dir)
    results = load_results(project, names, model_id, predictions, progress=progress, cancel=cancel)
    tables, columns = _measure_images(project, names, progress, cancel)
    order = list(columns)
    chosen = list(summary) if summary else _default_summary(order)
    unknown = [c for c in chosen if c not in columns]
    if unknown:
        raise InputError(
            f"no measurement named {', '.join(map(repr, unknown))} for the summary "
            f"(see {COLUMNS_CSV} of `svetlana measure`, e.g. {', '.join(order[:4])})"
        )
    pcols = [f"p_{c}" for c in results.model_classes]
    head = ["image", "object", "class", "source", "predicted", "confidence", *pcols, *order]
    lines = [",".join(text_cell(h) for h in head)]
    summary_rows = [["image", "class", "count", "fraction", *[f"mean_{c}" for c in chosen]]]
    for name, m in zip(names, tables, strict=True):
        r = results.images[name]
        if not np.array_equal(r.ids, m.ids):
            raise InputError(f"the measurements of {name} do not match its objects; measure again")
        full = np.full((len(m), len(order)), np.nan, np.float32)
        full[:, [order.index(c) for c in m.names]] = m.values
        nums = np.concatenate([r.confidence[:, None], r.probs, full], axis=1)
        body = _format_block(nums)
        cell = text_cell(name)
        for i, row in enumerate(body):
            text = ",".join(
                [cell, str(int(r.ids[i])), text_cell(r.final[i]), r.source[i],
                 text_cell(r.predicted[i]), row.replace("nan", "")]
            )  # fmt: skip
            lines.append(text)
        classes = list(results.class_names) + ([UNCLASSIFIED] if (r.final == "").any() else [])
        total = max(len(m), 1)
        for c in classes:
            sel = r.final == ("" if c == UNCLASSIFIED else c)
            means = [
                f"{float(full[sel, order.index(col)].mean()):.7g}" if sel.any() else ""
                for col in chosen
            ]
            summary_rows.append(
                [cell, text_cell(c), str(int(sel.sum())), f"{sel.sum() / total:.6g}", *means]
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = out_dir / OBJECTS_CSV
    atomic_write_text(objects, "\n".join(lines) + "\n")
    summ = out_dir / SUMMARY_CSV
    atomic_write_text(summ, "".join(",".join(row) + "\n" for row in summary_rows))
    units = {"confidence": "", **dict.fromkeys(pcols, ""), **columns}
    cols = out_dir / OBJECT_COLUMNS_CSV
    atomic_write_text(
        cols, "column,unit\n" + "".join(f"{text_cell(c)},{u}\n" for c, u in units.items())
    )
    run = write_run_record(
        out_dir,
        kind="table",
        model_id=results.model_id,
        model_dir=project.models.dir(results.model_id) if results.model_id else None,
        images=names,
        classes=results.class_names,
        extra={"summary_measurements": chosen},
    )
    if progress is not None:
        progress(Progress("measure", 1000, 1000, f"wrote {objects.name}"))
    rows = sum(len(m) for m in tables)
    return TableExport((objects, summ, cols, run), rows, tuple(names), tuple(head), results.note)

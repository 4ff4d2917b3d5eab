"""Saved predictions: the one writer and the one reader, with one staleness rule.

Writer: ``write_prediction_outputs`` (``<image>_classes.tif`` + ``predictions.csv`` +
``run.json``), used by every predict path (the bundle's ``predictions/<model>/``, ``--out``,
``--folder``'s merge uses its class-mask writer and CSV format) and the window's export.

Reader: ``saved_predictions``. The rule: saved predictions of a model are *current* when the
folder's ``run.json`` names the model's exact card (sha256 of ``card.json``; for a folder written
before run.json held it: not older than the card) and every image asked for has a row for each
of its objects, and no other. Anything else is stale and ignored (never partly used).

``project_predictions``: the saved ones when current, else predicted now in memory; the caller
is told which (``PredictionsFor.predicted_now``) and says so.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError, SvetlanaError
from svetlana.core.io.fileio import atomic_folder, atomic_open, atomic_write_with
from svetlana.core.io.outputs import NAMES_KEY, output_stems, renamed
from svetlana.core.jobs import CancelToken, ProgressFn, in_background
from svetlana.core.project.provenance import card_digest, read_run_record, write_run_record

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.csv"
CLASS_MASK_SUFFIX = "_classes.tif"


def class_mask_path(out_dir: str | Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}{CLASS_MASK_SUFFIX}"


def write_class_mask(path: Path, labels, ids: np.ndarray, class_index: np.ndarray) -> Path:
    """THE class-mask writer (0 = background, k = the k-th class), atomically: an in-memory
    mask as a TIFF, a lazy one (larger than memory) as a tiled BigTIFF written tile by tile."""
    import tifffile

    from svetlana.core.io.masks import class_mask

    if isinstance(labels, np.ndarray):
        cm = class_mask(labels, ids, class_index)
        atomic_write_with(path, lambda p: tifffile.imwrite(p, cm))
    else:
        from svetlana.core.objects.lazy import write_class_mask_tiff

        atomic_write_with(path, lambda p: write_class_mask_tiff(p, labels, ids, class_index))
    return path


def write_prediction_outputs(
    out_dir: Path,
    preds: list,
    class_names,
    manual_of,
    *,
    model_id: str = "",
    model_dir: Path | None = None,
    project_classes: Sequence[str] = (),
    carry_from: Path | None = None,
    carry: Sequence[str] = (),
) -> list[Path]:
    """``<image>_classes.tif`` + ``predictions.csv`` + ``run.json`` into ``out_dir`` with the final
    classes; ``preds`` holds ``(ImagePrediction, LoadedImage)`` pairs. File names come from
    ``outputs.output_stems`` (two images never share a file). ``carry``: images of an earlier
    run of the same model in ``carry_from`` kept beside these (their class mask linked, their
    rows copied): predicting one image keeps the others' saved predictions. Returns the files
    written (the carried class masks are not among them)."""
    from svetlana.core.usecases.predict import (
        final_of_run,
        prediction_csv_blocks,
        write_predictions_csv,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = final_of_run([p for p, _ in preds], class_names, manual_of, project_classes)
    new = [p.image for p, _ in preds]
    carried = _carried_masks(carry_from, [c for c in carry if c not in new])
    stems = output_stems([*new, *carried])

    def write_masks() -> list[Path]:
        written = []
        for pred, loaded in preds:
            final = finals[pred.image]
            path = class_mask_path(out_dir, stems[pred.image])
            written.append(write_class_mask(path, loaded.labels, pred.ids, final.index))
        return written

    csv_path = out_dir / PREDICTIONS_FILE
    blocks = (
        block
        for pred, _ in preds
        for block in prediction_csv_blocks(pred, finals[pred.image], model_id, class_names)
    )
    rows = _old_rows(carry_from / PREDICTIONS_FILE, set(carried)) if carried else ()
    # The class masks on a thread while the CSV is written (its lookups and file writes leave
    # the interpreter to the CSV's text); the CSV is kept only once they are written.
    masks = in_background(write_masks, "class-masks")
    with atomic_open(csv_path, "w", encoding="utf-8") as f:
        try:
            write_predictions_csv(f, class_names, rows, blocks)
        finally:
            files = masks()  # (its error first: the CSV is then not kept)
    for image, old in carried.items():  # kept, not written: not in the returned files
        _link_or_copy(old, class_mask_path(out_dir, stems[image]))
    files.append(csv_path)
    out_classes = next(iter(finals.values())).class_names if finals else tuple(class_names)
    extra = {"class_mask": "0 = background, k = the k-th name of classes"}
    if renamed(stems):
        extra[NAMES_KEY] = renamed(stems)
    files.append(
        write_run_record(
            out_dir,
            kind="predictions",
            model_id=model_id,
            model_dir=model_dir,
            images=[*new, *carried],
            classes=out_classes,
            extra=extra,
        )
    )
    return files


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _carried_masks(folder: Path | None, images: Sequence[str]) -> dict[str, Path]:
    """image -> its class mask in ``folder`` (an earlier run), for those of ``images`` it holds."""
    if folder is None or not images:
        return {}
    record = read_run_record(folder) or {}
    names = record.get(NAMES_KEY) if isinstance(record.get(NAMES_KEY), dict) else {}
    held = set(record.get("images") or ())
    old_stems = {**output_stems(record.get("images") or ()), **names}
    out = {}
    for image in images:
        path = class_mask_path(folder, str(old_stems.get(image, "")))
        if image in held and path.is_file() and not path.is_symlink():
            out[image] = path
    return out


def _old_rows(path: Path, images: set[str]):
    from svetlana.core.io.csvsafe import read_dicts

    with open(path, newline="", encoding="utf-8") as f:
        for row in read_dicts(f):
            if row.get("image") in images:
                yield row


def replace_prediction_folder(
    final: Path,
    preds,
    class_names,
    manual_of,
    cancel: CancelToken | None = None,
    keep: Sequence[str] = (),
    **provenance,
) -> list[Path]:
    """The bundle's ``predictions/<model>/``: written beside, swapped in whole (a failure or a
    cancel leaves the previous results). ``keep``: other images whose saved predictions stay,
    when the folder's are current for this model."""
    model_dir = provenance.get("model_dir")
    current = (
        final.is_dir()
        and model_dir is not None
        and (final / PREDICTIONS_FILE).is_file()
        and _current(final, Path(model_dir))
    )
    with atomic_folder(final) as tmp:
        written = write_prediction_outputs(
            tmp, preds, class_names, manual_of, carry_from=final if current else None,
            carry=keep if current else (), **provenance,
        )  # fmt: skip
        if cancel is not None:
            cancel.raise_if_cancelled()
    return [final / p.name for p in written]


def read_predictions(path: str | Path) -> dict[str, dict[int, dict]]:
    """predictions.csv -> image -> object -> row (class, confidence, probabilities...)."""
    import io

    from svetlana.core.io.csvsafe import read_dicts
    from svetlana.core.io.fileio import open_regular

    out: dict[str, dict[int, dict]] = {}
    # A regular file, not through a link (a FIFO there would block the export forever).
    raw = open_regular(path, 1 << 40, follow=False)
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        for row in read_dicts(f):
            out.setdefault(row["image"], {})[int(row["object"])] = row
    return out


def _current(folder: Path, model_dir: Path) -> bool:
    """THE staleness rule's model half: the folder was made with the model's exact card."""
    record = read_run_record(folder)
    digest = (record or {}).get("model_card_sha256")
    if digest:
        return digest == card_digest(model_dir)
    card = model_dir / "card.json"
    return (folder / PREDICTIONS_FILE).stat().st_mtime >= card.stat().st_mtime


def saved_predictions(project, model_id: str, images: Sequence[str]) -> dict | None:
    """The bundle's saved predictions of ``model_id`` for ``images`` (image -> ImagePrediction),
    or ``None`` when they are missing or stale (see the module's rule)."""
    from svetlana.core.ml.inference import uncertainty
    from svetlana.core.usecases.predict import ImagePrediction

    folder = project.prediction_dir(model_id)  # checked: no link on the way
    path = folder / PREDICTIONS_FILE
    try:
        if not path.is_file() or not _current(folder, project.models.dir(model_id)):
            return None
        class_names = tuple(project.models.card(model_id)["classes"])
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
    except (OSError, KeyError, ValueError, TypeError, SvetlanaError) as exc:
        log.info("saved predictions of %s not usable (%s)", model_id, exc)
        return None


@dataclass(frozen=True, eq=False)
class PredictionsFor:
    """Predictions of one model for some images: saved ones, or made now (``predicted_now``)."""

    model_id: str
    predictions: dict  # image -> ImagePrediction
    predicted_now: bool

    @property
    def note(self) -> str:
        if not self.predicted_now:
            return ""
        return (
            f"{self.model_id} has no current saved predictions of these images: predicted them "
            "now (not saved; `svetlana predict` without --out saves them in the project)"
        )


def project_predictions(
    project,
    model_id: str | None = None,
    images: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PredictionsFor:
    """The saved predictions when current, else a fresh prediction in memory (nothing written)."""
    from svetlana.core.usecases.predict import plan_prediction, run_prediction

    model_id = project.models.resolve(model_id)
    names = list(images) if images else list(project.image_names)
    if not names:
        raise InputError("the project has no images", project.path)
    for n in names:
        project.image(n)
    saved = saved_predictions(project, model_id, names)
    if saved is not None:
        log.info("using the saved predictions of %s", model_id)
        return PredictionsFor(model_id, saved, False)
    log.info("no current saved predictions of %s: predicting now", model_id)
    plan = plan_prediction(project, model_id, names, write=False)
    run = run_prediction(plan, device=device, progress=progress, cancel=cancel)
    return PredictionsFor(model_id, dict(run.predictions), True)

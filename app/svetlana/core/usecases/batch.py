"""Folder prediction in parts: one task per image pair writes its own outputs; one merge at the end.

The same per-image function (``predict_pair``) runs in this process or on Dask workers
(``core/usecases/cluster.py``): it reads the pair, checks the mask as ``svetlana add`` does,
classifies it with the model cached in its process, and writes ``<image>_classes.tif`` and
``parts/<image>.csv`` atomically, then a completion marker ``parts/<image>.done.json`` last (with
a content hash of both inputs: ``--resume`` keeps an image only when its files are the same).
``merge_parts`` joins the parts, in the folder's order, into the ``predictions.csv`` a
single-process run writes, with ``run.json`` and ``errors.csv``.

Everything is written into a staging folder beside ``--out`` (``.<out>.svetlana-run``, kept
after an interruption for ``--resume``) and swapped in whole at the end: ``--out`` holds one
complete run, never files of two.

~400 lines: the per-image task, the several-images task of the cluster and the merge share
the staging folder's layout, which this one module defines.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from svetlana.core.errors import InputError, ModelError, SvetlanaError
from svetlana.core.io.csvsafe import to_csv_text
from svetlana.core.io.fileio import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    read_json,
    safe_file_name,
)
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress

log = logging.getLogger(__name__)

PARTS_DIR = "parts"
ERRORS_FILE = "errors.csv"
PREDICTIONS_FILE = "predictions.csv"
_MARKER_VERSION = 1


@dataclass(frozen=True)
class ModelRef:
    """A saved model by folder and content digest: the key of each process's model cache."""

    folder: str
    digest: str
    model_id: str

    @classmethod
    def of(cls, folder: str | Path, model_id: str = "") -> ModelRef:
        folder = Path(folder)
        return cls(str(folder.resolve()), model_digest(folder), model_id or folder.name)


@dataclass(frozen=True)
class PairTask:
    """One image/mask pair to classify into ``out_dir`` (``mask`` is ``None`` when none was found);
    paths are absolute (a worker elsewhere has another working folder); ``stem`` names its files
    (``outputs.output_stems``)."""

    image: str
    image_path: str
    mask_path: str | None
    out_dir: str
    model: ModelRef
    axes: str | None = None
    device: str = "cpu"
    stem: str = ""


@dataclass(frozen=True)
class PairResult:
    """What one task did: counts per final class, or the one-line error that stopped it."""

    image: str
    counts: dict[str, int] = field(default_factory=dict)
    n_objects: int = 0
    seconds: float = 0.0
    error: str = ""
    file: str = ""
    resumed: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def model_digest(folder: str | Path) -> str:
    """sha256 over the names and bytes of every file of a model folder."""
    folder = Path(folder)
    h = hashlib.sha256()
    try:
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                h.update(p.name.encode() + b"\0")
                h.update(hashlib.sha256(p.read_bytes()).digest())
    except OSError as exc:
        raise ModelError(f"cannot read the model: {exc.strerror or exc}", folder) from exc
    return h.hexdigest()


_cache: dict[str, tuple] = {}
_cache_lock = threading.Lock()
loads = 0  # models this process loaded from disk (a worker: one per model, whatever the tasks)


def cached_model(ref: ModelRef):
    """``(model, card)`` of ``ref``, loaded once per process (a worker keeps it for every task)."""
    from svetlana.core.ml.models import load_checkpoint

    global loads
    with _cache_lock:
        hit = _cache.get(ref.digest)
        if hit is None:
            if model_digest(ref.folder) != ref.digest:
                raise ModelError(
                    "the model's files differ from those the run started with "
                    "(changed since, or another copy on this worker)",
                    ref.folder,
                )
            _cache.clear()  # one model at a time: a long-lived worker does not accumulate them
            hit = _cache[ref.digest] = load_checkpoint(Path(ref.folder))
            loads += 1
        return hit


def part_paths(out_dir: str | Path, stem: str) -> tuple[Path, Path, Path]:
    """(class mask, CSV part, completion marker) of the image whose files are named ``stem``."""
    from svetlana.core.usecases.results import class_mask_path

    out_dir = Path(out_dir)
    parts = out_dir / PARTS_DIR
    return class_mask_path(out_dir, stem), parts / f"{stem}.csv", parts / f"{stem}.done.json"


def _task_paths(task: PairTask) -> tuple[Path, Path, Path]:
    return part_paths(task.out_dir, task.stem or safe_file_name(task.image))


def _fingerprint(path: str | None) -> list:
    """Name, size and a content hash (BLAKE2b, ~1 GB/s) of an input file: a file rewritten with
    the same size and time is not taken for the one an earlier run predicted."""
    if path is None:
        return []
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "blake2b").hexdigest()
    return [str(path), os.stat(path).st_size, digest]


def _load_lazy_pair(task: PairTask):
    """A large tiled TIFF pair as a lazy ``LoadedImage`` (checked like ``svetlana add`` does)."""
    from svetlana.core.io.mask_checks import check_label_array
    from svetlana.core.objects.lazy import compute_objects_chunked, open_pair
    from svetlana.core.project.images import LargeImage

    img, mask = open_pair(task.image_path, task.mask_path, task.axes)
    check_label_array(mask.data, task.mask_path, task.image_path)  # as `svetlana add` does
    table = compute_objects_chunked(mask.data, img.data)
    spacing = img.spacing or mask.spacing
    return LargeImage(task.image, img.data, mask.data, spacing, _table=table)


def predict_pair(task: PairTask) -> PairResult:
    """Classify one pair and write its outputs; a problem with this pair becomes its error line.

    The one per-image function of every folder run (in this process and on Dask workers).
    """
    from svetlana.core.annotations.final_class import final_classes, result_classes
    from svetlana.core.io.images import read_pair
    from svetlana.core.io.mask_checks import check_label_mask
    from svetlana.core.objects.lazy import is_large_tiled_tiff
    from svetlana.core.project.images import LoadedImage
    from svetlana.core.usecases.predict import (
        predict_loaded,
        prediction_csv_blocks,
        write_predictions_csv,
    )
    from svetlana.core.usecases.results import write_class_mask

    t0 = time.perf_counter()
    try:
        if task.mask_path is None:
            raise InputError("no mask found beside it (expected e.g. x_masks.tif)", task.image_path)
        model, card = cached_model(task.model)
        lazy = is_large_tiled_tiff(task.image_path)
        if lazy:  # larger than memory: read tile by tile (objects chunk-wise, exact)
            loaded = _load_lazy_pair(task)
        else:
            img, mask = read_pair(task.image_path, task.mask_path, axes=task.axes)
            check_label_mask(mask, task.image_path)  # a swapped pair: as `svetlana add` refuses
            loaded = LoadedImage(task.image, img.data, mask.labels, img.spacing)
        pred = predict_loaded(model, card, loaded, device=task.device)
        class_names = tuple(card["classes"])
        final = final_classes(pred, {}, result_classes(class_names))
        tif, part, marker = _task_paths(task)
        part.parent.mkdir(parents=True, exist_ok=True)
        write_class_mask(tif, loaded.labels, pred.ids, final.index)
        with atomic_open(part, "w", encoding="utf-8") as f:
            blocks = prediction_csv_blocks(pred, final, task.model.model_id, class_names)
            write_predictions_csv(f, class_names, blocks=blocks)
        counts = final.counts()
        atomic_write_json(
            marker,
            {
                "version": _MARKER_VERSION,
                "image": task.image,
                "model_digest": task.model.digest,
                "inputs": [_fingerprint(task.image_path), _fingerprint(task.mask_path)],
                "outputs": {tif.name: tif.stat().st_size, part.name: part.stat().st_size},
                "counts": counts,
                "n_objects": len(pred.ids),
            },
        )
        return PairResult(task.image, counts, len(pred.ids), time.perf_counter() - t0)
    except SvetlanaError as exc:
        return PairResult(
            task.image,
            seconds=time.perf_counter() - t0,
            error=exc.message + (f" ({exc.hint})" if exc.hint else ""),
            file=str(exc.path or task.image_path),
        )
    except MemoryError:
        return PairResult(task.image, error="not enough memory", file=task.image_path)


def predict_pairs(tasks: Sequence[PairTask]) -> list[PairResult]:
    """``predict_pair`` of several pairs, one after the other: one cluster task for a few small
    images (a task's round trip through the scheduler costs ~10 ms of CPU; an image ~30 ms)."""
    return [predict_pair(t) for t in tasks]


def completed(task: PairTask) -> PairResult | None:
    """The result of an earlier run of ``task`` when its outputs are complete and current."""
    tif, part, marker = _task_paths(task)
    try:
        m = read_json(marker)
        if (
            not isinstance(m, dict)
            or m.get("version") != _MARKER_VERSION
            or m.get("model_digest") != task.model.digest
            or m.get("inputs") != [_fingerprint(task.image_path), _fingerprint(task.mask_path)]
            or m.get("outputs") != {tif.name: tif.stat().st_size, part.name: part.stat().st_size}
        ):
            return None
        return PairResult(task.image, dict(m["counts"]), int(m["n_objects"]), 0.0, resumed=True)
    except (SvetlanaError, OSError, KeyError, TypeError, ValueError):
        return None


def plan_folder(
    model_folder: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    *,
    axes: str | None = None,
    device: str = "cpu",
    model_id: str = "",
) -> list[PairTask]:
    """One task per image of ``folder`` (images without a mask too: they become error lines),
    every path absolute, each image's files named by ``outputs.output_stems``."""
    from svetlana.core.io.folders import file_stem, find_pairs
    from svetlana.core.io.outputs import output_stems

    missing: list[Path] = []
    folder = Path(folder).absolute()
    pairs = find_pairs(folder, missing=missing)
    if not pairs:
        raise InputError(
            "no image/mask pairs found (expected e.g. x.tif with x_masks.tif or x_cp_masks.png)",
            folder,
        )
    ref = ModelRef.of(model_folder, model_id)
    out = str(Path(out_dir).absolute())
    items = [(ip, str(mp)) for ip, mp in pairs] + [(ip, None) for ip in missing]
    items.sort(key=lambda t: t[0].name)
    stems = output_stems(file_stem(ip) for ip, _ in items)
    return [
        PairTask(file_stem(ip), str(ip), mp, out, ref, axes, device, stems[file_stem(ip)])
        for ip, mp in items
    ]


def staging_folder(out_dir: str | Path) -> Path:
    """Where a folder run writes before its outputs are swapped into ``out_dir`` whole."""
    out = Path(out_dir).absolute()
    return out.parent / f".{out.name}.svetlana-run"


def prepare_staging(out_dir: str | Path, resume: bool) -> Path:
    """An empty staging folder; with ``resume`` the one an interrupted run left, or one holding
    (hard links to) the files of the complete run in ``out_dir``."""
    staging = staging_folder(out_dir)
    if not resume:
        shutil.rmtree(staging, ignore_errors=True)
    if resume and not staging.exists() and Path(out_dir).is_dir():
        tmp = staging.with_name(staging.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out_dir, tmp, copy_function=_link_or_copy)
        tmp.rename(staging)
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_here(tasks: Sequence[PairTask], cancel: CancelToken | None = None) -> Iterator[PairResult]:
    """Run the tasks one after the other in this process."""
    cancel = ensure_token(cancel)
    for t in tasks:
        cancel.raise_if_cancelled()
        yield predict_pair(t)


def run_tasks(
    tasks: Sequence[PairTask],
    runner: Callable[[Sequence[PairTask]], Iterable[PairResult]],
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, PairResult]:
    """Results by image: those complete from an earlier run (``resume``), then the runner's."""
    progress = progress or no_progress
    results: dict[str, PairResult] = {}
    todo = []
    for t in tasks:
        done = completed(t) if resume else None
        if done is not None:
            results[t.image] = done
        else:
            todo.append(t)
    n = len(tasks)
    if results:
        log.info("resuming: %d of %d images already complete", len(results), n)
    progress(Progress("predict", len(results), n, f"{len(results)} of {n} images done"))
    for r in runner(todo):
        results[r.image] = r
        what = f"{r.image}: {'error' if r.error else f'{r.n_objects} objects'}"
        progress(Progress("predict", len(results), n, f"{len(results)}/{n} {what}"))
    return results


def merge_parts(
    tasks: Sequence[PairTask],
    results: dict[str, PairResult],
    class_names: Sequence[str],
    *,
    model_dir: str | Path,
) -> list[Path]:
    """``predictions.csv`` (parts in the folder's order), ``run.json`` and ``errors.csv``."""
    from svetlana.core.annotations.final_class import result_classes
    from svetlana.core.io.outputs import NAMES_KEY
    from svetlana.core.project.provenance import write_run_record
    from svetlana.core.usecases.predict import rows_to_csv

    out_dir = Path(tasks[0].out_dir)
    good = [t for t in tasks if results[t.image].ok]
    header = rows_to_csv([], class_names)
    csv_path = out_dir / PREDICTIONS_FILE
    with atomic_open(csv_path, "w", encoding="utf-8") as f:
        f.write(header)
        for t in good:
            with _task_paths(t)[1].open(encoding="utf-8", newline="") as part:
                if part.read(len(header)) != header:
                    raise ModelError(f"the CSV part of {t.image!r} has other columns", out_dir)
                shutil.copyfileobj(part, f)  # a part is copied a block at a time
    files = [_task_paths(t)[0] for t in good] + [csv_path]
    errors = [results[t.image] for t in tasks if not results[t.image].ok]
    names = {t.image: t.stem for t in tasks if t.stem and t.stem != safe_file_name(t.image)}
    err_path = out_dir / ERRORS_FILE
    if errors:
        rows = ([r.image, r.file, r.error] for r in errors)
        atomic_write_text(err_path, to_csv_text(["image", "file", "error"], rows))
        files.append(err_path)
    elif err_path.exists():
        err_path.unlink()  # from an earlier run whose failed images are now done
    files.append(
        write_run_record(
            out_dir,
            kind="predictions",
            model_id=tasks[0].model.model_id,
            model_dir=model_dir,
            images=[t.image for t in good],
            classes=result_classes(class_names),
            extra={
                "class_mask": "0 = background, k = the k-th name of classes",
                **({NAMES_KEY: names} if names else {}),
            },
        )
    )
    return files

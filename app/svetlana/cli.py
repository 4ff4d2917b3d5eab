"""The `svetlana` command line: argparse sub-commands over core.workflows, with exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from svetlana import __version__
from svetlana.core.errors import Cancelled, SvetlanaError
from svetlana.core.jobs import CancelToken, Progress
from svetlana.core.wording import accuracy_estimate, plural

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
# What a shell reports for a program stopped by SIGPIPE (128 + 13), as `cat`, `ls`... give.
EXIT_BROKEN_PIPE = 141


def _silence_closed_pipes(*streams: TextIO) -> None:
    """Point the closed stdout/stderr at /dev/null so Python's final flush stays quiet.

    The recipe of the Python docs (signal module, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue  # an in-memory stream (tests): nothing to silence
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class ProgressPrinter:
    """A progress bar on a terminal; plain, rate-limited lines otherwise (logs, CI)."""

    def __init__(self, stream: TextIO = sys.stderr, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_line = 0.0
        self._last_stage = ""
        self._open_bar = False

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if p.stage == "train" and p.metrics:
            m = p.metrics
            parts = [f"epoch {p.done}/{p.total}", f"loss {m.get('loss', float('nan')):.4f}"]
            if m.get("accuracy") is not None:
                parts.append(f"acc {m['accuracy']:.3f}")
            if m.get("val_accuracy") is not None:
                parts.append(f"val acc {m['val_accuracy']:.3f}")
            text = "  ".join(parts)
        else:
            text = p.message or p.stage
        eta = f"  ETA {p.eta_s:.0f}s" if p.eta_s is not None else ""
        if self.tty:
            width = 28
            filled = int(round(p.fraction * width))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {p.fraction * 100:5.1f}%  {text}{eta}\x1b[K")
            self._open_bar = True
            if p.fraction >= 1.0:
                self.stream.write("\n")
                self._open_bar = False
            self.stream.flush()
            return
        now = time.monotonic()
        if p.stage != self._last_stage or p.fraction >= 1.0 or now - self._last_line >= 2.0:
            self.stream.write(f"{p.stage}: {p.fraction * 100:5.1f}%  {text}{eta}\n")
            self.stream.flush()
            self._last_line = now
            self._last_stage = p.stage

    def close(self) -> None:
        if self._open_bar:
            self.stream.write("\n")
            self._open_bar = False


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _spacing(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"spacing must be numbers like 2,0.5,0.5, not {text!r}"
        ) from None
    if len(values) not in (2, 3) or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("spacing must be 2 or 3 positive numbers (Z,Y,X)")
    return values


def build_parser() -> argparse.ArgumentParser:
    from svetlana.core.models import ARCHITECTURES
    from svetlana.core.training import AUGMENTATIONS, LOSSES, TrainingConfig

    d = TrainingConfig()
    p = argparse.ArgumentParser(
        prog="svetlana",
        description="Classify segmented objects in microscopy images: label, train, predict, count.",
    )
    p.add_argument("--version", action="version", version=f"svetlana {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("init", help="create a project bundle")
    s.add_argument("bundle", type=Path)
    s.add_argument("--classes", type=_csv_list, default=[], help="class names, comma separated")

    s = sub.add_parser("add", help="add an image and its segmentation mask")
    s.add_argument("bundle", type=Path)
    s.add_argument("image", type=Path)
    s.add_argument("mask", type=Path)
    s.add_argument("--name", help="name in the project (default: the image file's stem)")
    s.add_argument("--axes", help="axes of the image, e.g. ZCYX or YXC (default: inferred)")
    s.add_argument("--spacing", type=_spacing, help="voxel size Z,Y,X (3D) when the file lacks it")
    s.add_argument(
        "--force-mask",
        action="store_true",
        help="use the mask even if it looks like an intensity image (skip that check)",
    )

    s = sub.add_parser("import-labels", help="import labels from a CSV (image,object,class)")
    s.add_argument("bundle", type=Path)
    s.add_argument("csv", type=Path)
    s.add_argument(
        "--add-classes",
        action="store_true",
        help="add class names the project lacks (without it they are refused as likely typos)",
    )

    s = sub.add_parser(
        "classes",
        help="list the classes; rename, merge or remove one",
        description="Without an action: list the classes with their labels and models.",
    )
    s.add_argument("bundle", type=Path)
    act = s.add_mutually_exclusive_group()
    act.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"), help="rename a class")
    act.add_argument(
        "--merge",
        nargs=2,
        metavar=("CLASS", "INTO"),
        help="give CLASS's labels to INTO and remove CLASS",
    )
    act.add_argument("--remove", metavar="CLASS", help="remove a class (with labels: --force)")
    s.add_argument("--force", action="store_true", help="with --remove: also remove its labels")

    s = sub.add_parser(
        "suggest",
        help="which objects to label next, most useful first (CSV image,object)",
        description="Uncertain objects of the fast forest refitted on your labels, spread over "
        "the measurements, with 20 %% random ones; random order until two classes are labelled.",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("-n", type=int, default=10, help="how many objects (default 10)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")

    s = sub.add_parser(
        "check-labels",
        help="labels that are probably wrong (CSV image,object,label,suggested,score)",
        description="Cross-validated forests judge every label; confident learning (cleanlab) "
        "lists those likely wrong, most suspicious first.",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, help="CSV file to write (default: print it)")

    s = sub.add_parser("export-labels", help="export labels to a CSV (image,object,class,source)")
    s.add_argument("bundle", type=Path)
    s.add_argument("csv", type=Path)

    s = sub.add_parser("train", help="train a model on the labelled objects")
    s.add_argument("bundle", type=Path)
    s.add_argument(
        "--arch",
        default="auto",
        help=(
            "auto (default: cross-validate a forest on measurements and the CNN "
            f"{d.arch!r}, keep the better), forest, a CNN ({', '.join(ARCHITECTURES)}), "
            "or a .pt FILE holding a state_dict of one (weights only)"
        ),
    )
    s.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="auto: seconds for cross-validation and the final fit (default 12 in 2D, 20 in 3D)",
    )
    s.add_argument("--epochs", type=int, default=d.epochs)
    s.add_argument("--batch-size", type=int, default=d.batch_size)
    s.add_argument("--lr", type=float, default=d.lr)
    s.add_argument("--weight-decay", type=float, default=d.weight_decay)
    s.add_argument("--loss", choices=LOSSES, default=d.loss)
    s.add_argument("--augment", choices=AUGMENTATIONS, default=d.augment)
    s.add_argument("--patch-size", default="auto", help="pixels, or auto (default)")
    s.add_argument("--val-fraction", type=float, default=d.val_fraction)
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: chosen for speed)"
    )
    s.add_argument("--name", help="model name (default: model-N)")

    s = sub.add_parser(
        "predict", help="classify every object; write class masks and predictions.csv"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument(
        "--folder", type=Path, help="predict image/mask pairs of a folder outside the project"
    )
    s.add_argument("--axes", help="axes of the folder's images (with --folder)")
    s.add_argument("--out", type=Path, help="output folder (default: inside the project)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with --folder: run on a local Dask cluster of N worker processes",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --folder: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786)",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="with --folder: keep the images an earlier run into --out completed",
    )

    s = sub.add_parser("info", help="show the project's images, classes, labels and models")
    s.add_argument("bundle", type=Path)
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser(
        "demo", help="build the demo project (two textures); --headless trains and scores it"
    )
    s.add_argument(
        "bundle",
        type=Path,
        nargs="?",
        help="where to create it (default: demo.svetlana in your data folder, kept between runs)",
    )
    s.add_argument(
        "--headless", action="store_true", help="no window: train, predict, print the accuracy"
    )

    _add_export_parsers(sub)
    _add_table_parsers(sub)

    s = sub.add_parser("gui", help="open the desktop application")
    s.add_argument("bundle", type=Path, nargs="?")

    sub.add_parser(
        "install-desktop",
        help="Linux: add Svetlana to the applications menu and open .svetlana projects with it",
    )
    sub.add_parser("uninstall-desktop", help="Linux: remove what install-desktop added")
    # -q/-v also after the command (`svetlana train B -q`); SUPPRESS keeps the top-level value.
    for sp in sub.choices.values():
        sp.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=argparse.SUPPRESS,
            help="no progress output",
        )
        sp.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log details to stderr",
        )
    return p


def _open(bundle: Path, readonly: bool = False):
    from svetlana.core.project import Project

    return Project.open(bundle, readonly=readonly)


def cmd_init(a, out: TextIO, progress) -> int:
    from svetlana.core.project import Project

    with Project.create(a.bundle, a.classes) as project:
        print(
            f"created {project.path}"
            + (f" with classes {', '.join(project.annotations.class_names)}" if a.classes else ""),
            file=out,
        )
    return EXIT_OK


def cmd_add(a, out: TextIO, progress) -> int:
    with _open(a.bundle) as project:
        e = project.add_image(
            a.image, a.mask, name=a.name, axes=a.axes, spacing=a.spacing, force_mask=a.force_mask
        )
    dims = "x".join(map(str, e.shape))
    print(
        f"added {e.name!r}: {dims}, {plural(e.channels, 'channel')}, {plural(e.n_objects, 'object')}"
        + (" (binary mask split into objects)" if e.was_binary else ""),
        file=out,
    )
    if len(e.shape) == 3 and not e.spacing:
        print(
            f"note: {a.image.name} gives no voxel size: assuming spacing 1,1,1 (Z as fine as Y "
            "and X). If the planes are further apart, add it again with --spacing Z,Y,X",
            file=out,
        )
    return EXIT_OK


def cmd_import_labels(a, out: TextIO, progress) -> int:
    from svetlana.core.workflows import import_labels

    with _open(a.bundle) as project:
        n = import_labels(project, a.csv, add_classes=a.add_classes)
        counts = project.annotations.counts()
    print(
        f"imported {plural(n, 'label')}; " + ", ".join(f"{k}: {v}" for k, v in counts.items()),
        file=out,
    )
    return EXIT_OK


def cmd_classes(a, out: TextIO, progress) -> int:
    from svetlana.core import classes
    from svetlana.core.wording import plural as _n

    if a.force and a.remove is None:
        from svetlana.core.errors import InputError

        raise InputError("--force goes with --remove CLASS")
    readonly = a.rename is None and a.merge is None and a.remove is None
    with _open(a.bundle, readonly=readonly) as project:
        if a.rename:
            n = classes.rename_class(project, *a.rename)
            print(f"renamed {a.rename[0]!r} to {a.rename[1]!r} ({_n(n, 'label')})", file=out)
        elif a.merge:
            n = classes.merge_class(project, *a.merge)
            print(f"merged {a.merge[0]!r} into {a.merge[1]!r} ({_n(n, 'label')} moved)", file=out)
        elif a.remove:
            n = classes.remove_class(project, a.remove, force=a.force)
            print(
                f"removed class {a.remove!r}" + (f" and its {_n(n, 'label')}" if n else ""),
                file=out,
            )
        rows = classes.class_summary(project)
    if readonly:
        for c in rows:
            used = f"; in {', '.join(c.models)}" if c.models else ""
            print(f"{c.name}: key {c.key or '-'}, {_n(c.labels, 'label')}{used}", file=out)
        if not rows:
            print("no classes yet (svetlana init --classes A,B or import-labels)", file=out)
    return EXIT_OK


def cmd_suggest(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.csvsafe import to_csv_text
    from svetlana.core.errors import InputError
    from svetlana.core.suggest import suggest_project

    if a.n < 1:
        raise InputError(f"-n must be at least 1, not {a.n}")
    with _open_for_cache(a.bundle) as project:
        s, objects = suggest_project(project, a.n, a.image, progress=progress, cancel=cancel)
    progress.close()
    out.write(to_csv_text(("image", "object"), objects))
    if s.note and not a.quiet:
        print(f"note: {s.note}", file=progress.stream)
    return EXIT_OK


def cmd_check_labels(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.fileio import atomic_write_text
    from svetlana.core.label_check import check_project_labels, suspects_csv

    if a.out is not None and (a.out.is_dir() or not a.out.parent.is_dir()):
        raise InputError("--out must be a CSV file in an existing folder", a.out)
    with _open_for_cache(a.bundle) as project:
        check = check_project_labels(project, a.image, progress=progress, cancel=cancel)
    progress.close()
    text = suspects_csv(check)
    summary = (
        f"{plural(len(check.suspects), 'label')} of {check.checked} judged likely wrong"
        f" ({check.folds}-fold cross-validation, confident learning)"
    )
    if check.unchecked_classes:
        summary += f"; not judged (fewer than 3 labels): {', '.join(check.unchecked_classes)}"
    if a.out is not None:
        atomic_write_text(a.out, text)
        print(f"{summary} -> {a.out}", file=out)
    else:
        out.write(text)
        if not a.quiet:
            progress.stream.write(summary + "\n")
    return EXIT_OK


def cmd_export_labels(a, out: TextIO, progress) -> int:
    from svetlana.core.workflows import export_labels

    with _open(a.bundle, readonly=True) as project:
        n = export_labels(project, a.csv)
    print(f"wrote {plural(n, 'label')} to {a.csv}", file=out)
    return EXIT_OK


def cmd_train(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.models import ARCHITECTURES
    from svetlana.core.training import TrainingConfig
    from svetlana.core.workflows import train_project

    arch_file = None
    arch = a.arch
    kind = "cnn"
    if arch in ("auto", "forest"):
        kind, arch = arch, TrainingConfig().arch
    elif arch not in ARCHITECTURES:
        candidate = Path(arch)
        if not candidate.exists():
            raise InputError(
                f"--arch must be auto, forest, one of {', '.join(ARCHITECTURES)} or an existing "
                f"file, not {arch!r}"
            )
        arch_file, arch = candidate, "minimal"
    if a.time_budget is not None and not a.time_budget > 0:
        raise InputError(f"--time-budget must be a positive number of seconds, not {a.time_budget}")
    config = TrainingConfig.from_dict(
        {
            **TrainingConfig().to_dict(),
            "arch": arch,
            "epochs": a.epochs,
            "batch_size": a.batch_size,
            "lr": a.lr,
            "weight_decay": a.weight_decay,
            "loss": a.loss,
            "augment": a.augment,
            "val_fraction": a.val_fraction,
            "seed": a.seed,
            "device": a.device,
            "threads": a.threads,
        }
    )
    from svetlana.core.classes import rare_classes_warning

    with _open(a.bundle) as project:
        warning = rare_classes_warning(project.annotations.counts())
        if warning:
            print(f"warning: {warning}", file=out)
        trained = train_project(
            project,
            config,
            patch_size=a.patch_size,
            name=a.name,
            arch_file=arch_file,
            progress=progress,
            cancel=cancel,
            kind=kind,
            budget_s=a.time_budget,
        )
    for line in selection_lines(trained.card):
        print(line, file=out)
    print(
        f"trained {trained.id}: {trained.card['architecture']}, "
        f"{plural(trained.card['n_labels'], 'label')}, "
        f"{accuracy_estimate(trained.card['metrics'])}, "
        f"{trained.card['seconds']:.1f} s on {trained.card['device']}",
        file=out,
    )
    print(trained.id, file=out)
    return EXIT_OK


def selection_lines(card: dict) -> list[str]:
    """The cross-validated comparison of the candidates, as printed by `svetlana train`."""
    sel = card.get("selection") or {}
    rows = sel.get("candidates") or []
    if not rows:
        return []
    cv = sel.get("cv") or {}
    how = f"{cv.get('folds', 0)}-fold {cv.get('method', 'cross-validation')}"
    if cv.get("grouped_by_image"):
        how += ", grouped by image"
    lines = [f"candidates ({how}; balanced accuracy on held-out folds):"]
    for r in rows:
        score = r.get("balanced_accuracy")
        text = (
            f"{score:.3f} ± {r.get('spread') or 0:.3f} over {len(r.get('folds', []))} folds"
            if isinstance(score, float) and r.get("status") == "done"
            else "-"
        )
        mark = "*" if r.get("name") == sel.get("chosen") else " "
        note = f"  {r['status']}: {r['note']}" if r.get("note") else ""
        lines.append(f" {mark} {r['name']:<10} {text:<34} {r.get('seconds', 0):6.1f} s{note}")
    lines.append(f"chosen: {sel.get('chosen')} ({sel.get('reason', '')})")
    top = card.get("importances") or []
    if top:
        lines.append(
            "most important measurements: "
            + ", ".join(f"{t['name']} {t['importance']:.2f}" for t in top[:5])
        )
    return lines


def cmd_predict(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.predicting import predict_folder, predict_project

    if a.folder is None:
        for flag in ("workers", "scheduler"):
            if getattr(a, flag) is not None:
                raise InputError(f"--{flag} works with --folder (a folder of image/mask pairs)")
        if a.resume:
            raise InputError("--resume works with --folder (a folder of image/mask pairs)")
    if a.folder is not None:
        if a.out is None:
            raise InputError("--folder needs --out DIR (the input folder is never written to)")
        if a.workers is not None and a.workers < 1:
            raise InputError(f"--workers must be at least 1 (got {a.workers})")
        with _open(a.bundle, readonly=True) as project:
            mid = project.resolve_model(a.model)
            model_dir = project.model_dir(mid)
        run = predict_folder(
            model_dir,
            a.folder,
            a.out,
            axes=a.axes,
            device=a.device,
            workers=a.workers,
            scheduler=a.scheduler,
            resume=a.resume,
            progress=progress,
            cancel=cancel,
        )
    else:
        from svetlana.core.classes import class_mismatch

        with _open(a.bundle) as project:
            mid = project.resolve_model(a.model)
            note = class_mismatch(project, project.model_card(mid).get("classes", ()))
            if note:
                print(f"note: {mid}: {note}", file=out)
            run = predict_project(
                project, mid, a.image, a.out, device=a.device, progress=progress, cancel=cancel
            )
    for image, counts in run.counts.items():
        print(f"{image}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=out)
    n_masks = sum(p.name.endswith(("_classes.tif", "_classes.ome.zarr")) for p in run.files)
    kept = f" ({run.resumed} kept from the earlier run)" if run.resumed else ""
    print(
        f"model {run.model_id}; wrote {run.out_dir / 'predictions.csv'} and {plural(n_masks, 'class mask')}{kept} in {run.seconds:.1f} s",
        file=out,
    )
    if run.errors:
        progress.close()
        err = getattr(progress, "stream", out)
        for _image, file, message in run.errors:
            print(f"error: {file}: {message}", file=err)
        print(
            f"{len(run.errors)} of {plural(len(run.errors) + len(run.counts), 'image')} failed; "
            f"listed in {run.out_dir / 'errors.csv'}",
            file=out,
        )
        return EXIT_ERROR
    return EXIT_OK


def cmd_info(a, out: TextIO, progress) -> int:
    from svetlana.core.workflows import project_summary

    with _open(a.bundle, readonly=True) as project:
        s = project_summary(project)
    if a.json:
        print(json.dumps(s, indent=2), file=out)
        return EXIT_OK
    print(f"project {s['project']}", file=out)
    print(
        "classes: "
        + (
            ", ".join(
                f"{c['name']} (key {c['key'] or '-'}, {plural(c['count'], 'label')})"
                for c in s["classes"]
            )
            or "none"
        ),
        file=out,
    )
    print(f"images ({len(s['images'])}):", file=out)
    for im in s["images"]:
        print(
            f"  {im['name']}: {'x'.join(map(str, im['shape']))}, {plural(im['channels'], 'channel')}, {plural(im['objects'], 'object')}, {im['labelled']} labelled",
            file=out,
        )
    print(f"models ({len(s['models'])}):", file=out)
    for m in s["models"]:
        if "error" in m:
            print(f"  {m['id']}: cannot read its card ({m['error']})", file=out)
            continue
        print(
            f"  {m['id']}: {m.get('architecture')}, {plural(m.get('labels') or 0, 'label')}, "
            f"{accuracy_estimate(m.get('metrics') or {})}",
            file=out,
        )
    return EXIT_OK


def cmd_demo(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.project import Project
    from svetlana.core.workflows import build_demo, demo_path, run_demo_headless
    from svetlana.desktop import has_display

    if not a.headless:
        if a.open_gui is not None and has_display():
            return a.open_gui(a.bundle, demo=True)
        print("no display found: running the demo without a window", file=out)
    # The project is kept (in the user's data folder, as the window's demo) to be opened later.
    bundle = a.bundle or demo_path()
    if (bundle / "project.json").is_file():
        project = Project.open(bundle)
    else:
        bundle.parent.mkdir(parents=True, exist_ok=True)
        project = build_demo(bundle)
    with project:
        n_obj = sum(e.n_objects for e in project.images)
        print(
            f"demo project {bundle}: {n_obj} objects of two textures, {len(project.annotations)} labelled",
            file=out,
        )
        r = run_demo_headless(project, progress=progress, cancel=cancel)
    print(
        f"demo: {r.accuracy * 100:.1f}% of {r.unlabelled} unlabelled objects correctly classified "
        f"({r.errors} errors); training {r.train_seconds:.1f} s, prediction {r.predict_seconds:.1f} s on {r.device}",
        file=out,
    )
    print(f"the demo project is kept in {bundle} (open it with: svetlana gui {bundle})", file=out)
    return EXIT_OK


def _add_export_parsers(sub) -> None:
    """Sub-commands that take results out of Svetlana (see core.exports)."""
    s = sub.add_parser(
        "export-mask",
        help="write the segmentation keeping only objects of chosen classes (original ids)",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--keep", type=_csv_list, default=[], help="classes to keep, comma separated")
    s.add_argument(
        "--min-confidence", type=float, default=0.0, help="keep only objects predicted this surely"
    )
    s.add_argument(
        "--per-class", action="store_true", help="also write one mask per class: IMAGE_CLASS.tif"
    )
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")

    s = sub.add_parser(
        "export-patches", help="write the labelled objects' patches and classes (npz, csv, tiff)"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--patch-size", default="auto", help="pixels, or auto (default)")
    s.add_argument(
        "--tiff", action="store_true", help="also one TIFF per patch: CLASS/IMAGE_ID.tif"
    )

    s = sub.add_parser(
        "export-model",
        help="write a model as ONNX (runs without Svetlana) + weights.pt + card.json",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument(
        "--format",
        choices=("svetlana", "bioimageio"),
        default="svetlana",
        help="svetlana (default): the model folder (model.onnx, weights.pt, card.json); "
        "bioimageio: a bioimage.io model package (folder + .zip) for bioimage.io tools",
    )
    s.add_argument(
        "--author", action="append", help="bioimageio: an author's name (repeat for several)"
    )
    s.add_argument("--license", help="bioimageio: SPDX licence id (default: CC-BY-4.0)")
    s.add_argument(
        "--cite",
        nargs=2,
        action="append",
        metavar=("TEXT", "DOI_OR_URL"),
        help="bioimageio: a reference to cite besides the Svetlana paper (repeatable)",
    )
    s.add_argument("--name", help="bioimageio: the package's name (default: project and model)")
    s.add_argument("--out", type=Path, required=True, help="output folder")


def _add_table_parsers(sub) -> None:
    """Sub-commands that write tables of per-object measurements (see core.tables)."""
    s = sub.add_parser(
        "measure", help="measure every object (shape, intensity, texture): measurements.csv"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")

    s = sub.add_parser(
        "export-table",
        help="one CSV of every object: final class, probabilities, measurements; and a summary",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="whose saved predictions (default: the newest model)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument(
        "--summary",
        type=_csv_list,
        help="measurements averaged per class in summary.csv (default: size and channel means)",
    )
    s.add_argument("--out", type=Path, required=True, help="output folder")

    s = sub.add_parser(
        "export-objects", help="object outlines with class and measurements for QuPath (GeoJSON)"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--format", choices=("geojson",), default="geojson")
    s.add_argument("--model", help="whose saved predictions (default: the newest model)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")


def _open_for_cache(bundle: Path):
    """Open writable so derived data is cached; read-only when another Svetlana has it open."""
    from svetlana.core.errors import ProjectLockedError

    try:
        return _open(bundle)
    except ProjectLockedError:
        return _open(bundle, readonly=True)


def cmd_measure(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.tables import export_measurements

    with _open_for_cache(a.bundle) as project:
        r = export_measurements(project, a.out, a.image, progress=progress, cancel=cancel)
    print(
        f"measured {plural(r.rows, 'object')} in {plural(len(r.images), 'image')}, "
        f"{plural(len(r.columns), 'column')}"
        f" -> {r.files[0]} (units: {r.files[1].name})",
        file=out,
    )
    return EXIT_OK


def cmd_export_table(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.tables import export_table

    with _open_for_cache(a.bundle) as project:
        r = export_table(
            project, a.out, a.image, model_id=a.model, summary=a.summary,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    print(
        f"wrote {r.rows} objects of {len(r.images)} image(s) to {r.files[0]}"
        f" and the per-class summary to {r.files[1].name}",
        file=out,
    )
    return EXIT_OK


def cmd_export_objects(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.geojson import export_objects

    with _open_for_cache(a.bundle) as project:
        r = export_objects(
            project, a.out, a.image, fmt=a.format, model_id=a.model,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    source = f"classes of {r.model_id} (labels first)" if r.model_id else "labels only"
    print(
        f"wrote {r.objects} objects ({source}) to {len(r.files)} GeoJSON file(s) in {a.out}",
        file=out,
    )
    return EXIT_OK


def cmd_export_mask(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.exports import export_filtered

    with _open(a.bundle, readonly=True) as project:
        s = export_filtered(
            project,
            a.keep,
            a.out,
            min_confidence=a.min_confidence,
            model_id=a.model,
            images=a.image,
            per_class=a.per_class,
            device=a.device,
            progress=progress,
            cancel=cancel,
        )
    for r in s.images:
        line = f"{r.image}: kept {r.kept}, removed {r.removed} of {r.objects} objects"
        if r.low_confidence:
            line += f" ({r.low_confidence} under the confidence threshold)"
        print(line + f" -> {', '.join(p.name for p in r.files)}", file=out)
    print(f"model {s.model_id}; kept {s.kept}, removed {s.removed}; wrote {s.csv_path}", file=out)
    return EXIT_OK


def cmd_export_patches(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.exports import export_patches

    with _open(a.bundle, readonly=True) as project:
        r = export_patches(
            project, a.out, a.patch_size, tiff=a.tiff, progress=progress, cancel=cancel
        )
    counts = ", ".join(f"{k} {v}" for k, v in r.class_counts.items())
    print(
        f"wrote {r.n} patches of {'x'.join(map(str, r.patch_shape))} px ({counts}) to {r.npz}"
        + (f" and {r.tiff_files} TIFFs" if r.tiff_files else ""),
        file=out,
    )
    return EXIT_OK


def cmd_export_model(a, out: TextIO, progress) -> int:
    from svetlana.core.exports import export_model

    if a.format == "bioimageio":
        return _export_bioimageio(a, out)
    with _open(a.bundle, readonly=True) as project:
        r = export_model(project, a.out, a.model)
    print(f"exported {r.model_id} to {r.files[0]} (see {r.files[-1].name})", file=out)
    return EXIT_OK


def _export_bioimageio(a, out: TextIO) -> int:
    from svetlana.core.bioimageio_export import (
        DEFAULT_AUTHOR,
        DEFAULT_LICENSE,
        Citation,
        PackageInfo,
        export_bioimageio,
    )

    info = PackageInfo(
        authors=tuple(x.strip() for x in a.author if x.strip()) if a.author else (DEFAULT_AUTHOR,),
        license=a.license or DEFAULT_LICENSE,
        cite=tuple(Citation(t, d) for t, d in a.cite or ()),
        name=a.name or "",
    )
    with _open(a.bundle, readonly=True) as project:
        r = export_bioimageio(project, a.out, a.model, info)
    print(f"exported {r.model_id} as a bioimage.io package: {r.folder} and {r.zip_path}", file=out)
    print(f"check it with: bioimageio test {r.rdf}", file=out)
    if not a.author:
        print(f"note: author given as {DEFAULT_AUTHOR!r}: set --author NAME", file=out)
    return EXIT_OK


def cmd_install_desktop(a, out: TextIO, progress) -> int:
    from svetlana import desktop

    if not desktop.is_supported():
        print(f"install-desktop: nothing to do on this system; {desktop.PLATFORM_HINT}", file=out)
        return EXIT_ERROR
    change = desktop.install_desktop()
    print(
        f"installed the Svetlana launcher ({len(change.files)} files under {desktop.data_home()})",
        file=out,
    )
    for note in change.notes:
        print(f"note: {note}", file=out)
    return EXIT_OK


def cmd_uninstall_desktop(a, out: TextIO, progress) -> int:
    from svetlana import desktop

    if not desktop.is_supported():
        print(f"uninstall-desktop: nothing to do on this system; {desktop.PLATFORM_HINT}", file=out)
        return EXIT_ERROR
    change = desktop.uninstall_desktop()
    print(f"removed {len(change.files)} Svetlana launcher files", file=out)
    for note in change.notes:
        print(f"note: {note}", file=out)
    return EXIT_OK


COMMANDS = {
    "init": cmd_init,
    "add": cmd_add,
    "import-labels": cmd_import_labels,
    "classes": cmd_classes,
    "export-labels": cmd_export_labels,
    "suggest": cmd_suggest,
    "check-labels": cmd_check_labels,
    "train": cmd_train,
    "predict": cmd_predict,
    "info": cmd_info,
    "demo": cmd_demo,
    "export-mask": cmd_export_mask,
    "export-patches": cmd_export_patches,
    "export-model": cmd_export_model,
    "measure": cmd_measure,
    "export-table": cmd_export_table,
    "export-objects": cmd_export_objects,
    "install-desktop": cmd_install_desktop,
    "uninstall-desktop": cmd_uninstall_desktop,
}


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    open_gui: Callable[..., int] | None = None,
) -> int:
    """Run one command. ``open_gui(bundle, demo=False)`` opens the window (given by the entry
    point, so that the command line never imports the GUI itself)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    a.open_gui = open_gui
    if a.command is None or a.command == "gui":
        if open_gui is None:
            print("error: this entry point cannot open the window; run `svetlana gui`", file=err)
            return EXIT_ERROR
        return open_gui(getattr(a, "bundle", None))
    progress = ProgressPrinter(err, quiet=a.quiet)
    try:
        status = COMMANDS[a.command](a, out, progress)
        out.flush()  # a closed pipe shows here, inside the border, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (`svetlana info B | head -1`): not an error, stop quietly.
        _silence_closed_pipes(out, err)
        return EXIT_BROKEN_PIPE
    except Cancelled:
        progress.close()
        print("cancelled; nothing was changed", file=err)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        progress.close()
        print("interrupted; nothing was changed", file=err)
        return EXIT_CANCELLED
    except SvetlanaError as exc:
        progress.close()
        print(f"error: {exc}", file=err)
        return EXIT_ERROR
    except MemoryError:
        progress.close()
        print("error: not enough memory for this operation; nothing was changed", file=err)
        return EXIT_ERROR
    except Exception as exc:  # the border: one clear line, details only when asked
        progress.close()
        log.debug("unexpected error", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", file=err)
        if os.environ.get("SVETLANA_DEBUG"):
            raise
        return EXIT_ERROR

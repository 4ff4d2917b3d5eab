"""The project commands: set up, label, train, predict, summarise, demo (thin: the work is in
core.usecases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from svetlana.cli.progress import EXIT_ERROR, EXIT_OK
from svetlana.core.jobs import CancelToken
from svetlana.core.wording import accuracy_estimate, plural


def open_bundle(bundle: Path, readonly: bool = False):
    from svetlana.core.project.bundle import Project

    return Project.open(bundle, readonly=readonly)


def open_for_cache(bundle: Path):
    """Open writable so derived data is cached; read-only when another Svetlana has it open."""
    from svetlana.core.errors import ProjectLockedError

    try:
        return open_bundle(bundle)
    except ProjectLockedError:
        return open_bundle(bundle, readonly=True)


def cmd_init(a, out: TextIO, progress) -> int:
    from svetlana.core.project.bundle import Project

    with Project.create(a.bundle, a.classes) as project:
        print(
            f"created {project.path}"
            + (f" with classes {', '.join(project.annotations.class_names)}" if a.classes else ""),
            file=out,
        )
    return EXIT_OK


def cmd_add(a, out: TextIO, progress) -> int:
    with open_bundle(a.bundle) as project:
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
            "and X). If the planes are further apart: svetlana set-spacing "
            f"{a.bundle} {e.name} Z,Y,X",
            file=out,
        )
    return EXIT_OK


def cmd_remove_image(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases.images import remove_image

    with open_bundle(a.bundle) as project:
        removal = remove_image(project, a.image, confirmed=a.yes)
    gone = f" and its {plural(removal.n_labels, 'label')}" if removal.n_labels else ""
    print(f"removed image {a.image!r}{gone}", file=out)
    return EXIT_OK


def cmd_set_spacing(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases.images import set_spacing

    with open_bundle(a.bundle) as project:
        e = set_spacing(project, a.image, a.spacing)
    print(
        f"voxel size of {e.name!r} is now {','.join(f'{v:g}' for v in e.spacing)}; "
        "measurements are recomputed when next needed; train again for a model to use it",
        file=out,
    )
    return EXIT_OK


def cmd_import_labels(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases.labels import import_labels

    with open_bundle(a.bundle) as project:
        n = import_labels(project, a.csv, add_classes=a.add_classes)
        counts = project.annotations.counts()
    print(
        f"imported {plural(n, 'label')}; " + ", ".join(f"{k}: {v}" for k, v in counts.items()),
        file=out,
    )
    return EXIT_OK


def cmd_classes(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases import classes
    from svetlana.core.wording import plural as _n

    if a.force and a.remove is None:
        from svetlana.core.errors import InputError

        raise InputError("--force goes with --remove CLASS")
    readonly = a.rename is None and a.merge is None and a.remove is None
    with open_bundle(a.bundle, readonly=readonly) as project:
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
    from svetlana.core.errors import InputError
    from svetlana.core.io.csvsafe import to_csv_text
    from svetlana.core.usecases.suggest import suggest_project

    if a.n < 1:
        raise InputError(f"-n must be at least 1, not {a.n}")
    with open_for_cache(a.bundle) as project:
        s, objects = suggest_project(project, a.n, a.image, progress=progress, cancel=cancel)
    progress.close()
    out.write(to_csv_text(("image", "object"), objects))
    if s.note and not a.quiet:
        print(f"note: {s.note}", file=progress.stream)
    return EXIT_OK


def cmd_check_labels(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.io.fileio import atomic_write_text
    from svetlana.core.usecases.label_check import check_project_labels, suspects_csv

    if a.out is not None and (a.out.is_dir() or not a.out.parent.is_dir()):
        raise InputError("--out must be a CSV file in an existing folder", a.out)
    with open_for_cache(a.bundle) as project:
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
    from svetlana.core.usecases.labels import export_labels

    with open_bundle(a.bundle, readonly=True) as project:
        n = export_labels(project, a.csv)
    print(f"wrote {plural(n, 'label')} to {a.csv}", file=out)
    return EXIT_OK


def cmd_train(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.ml.models import ARCHITECTURES
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import estimate, train_project

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
    from svetlana.core.usecases.classes import rare_classes_warning

    with open_bundle(a.bundle) as project:
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
            mode=a.mode,
            announce=lambda job: print(f"training: {estimate(job)}", file=out, flush=True),
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
    effort = f", {sel['effort']} mode, budget {sel['budget_s']:.0f} s" if sel.get("effort") else ""
    lines = [f"candidates ({how}{effort}; balanced accuracy on held-out folds):"]
    for r in rows:
        score = r.get("balanced_accuracy")
        n_folds = len(r.get("folds", []))
        if isinstance(score, float) and r.get("status") == "done":
            text = f"{score:.3f} ± {r.get('spread') or 0:.3f} over {n_folds} folds"
        elif isinstance(score, float):  # cut short: what it had reached
            text = f"{score:.3f} on {n_folds} fold{'s' if n_folds != 1 else ''} only"
        else:
            text = "-"
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
    from svetlana.core.usecases.predict import predict_folder, predict_project

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
        with open_bundle(a.bundle, readonly=True) as project:
            mid = project.models.resolve(a.model)
            model_dir = project.models.dir(mid)
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
        from svetlana.core.usecases.classes import class_mismatch

        with open_bundle(a.bundle) as project:
            mid = project.models.resolve(a.model)
            note = class_mismatch(project, project.models.card(mid).get("classes", ()))
            if note:
                print(f"note: {mid}: {note}", file=out)
            run = predict_project(
                project, mid, a.image, a.out, device=a.device, progress=progress, cancel=cancel
            )
    for image, counts in run.counts.items():
        print(f"{image}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=out)
    n_masks = len({p for p in run.files if p.name.endswith("_classes.tif") and p.is_file()})
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
    from svetlana.core.usecases.summary import project_summary

    with open_bundle(a.bundle, readonly=True) as project:
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
    from svetlana.core.usecases.demo import demo_path, open_or_build_demo, run_demo_headless
    from svetlana.desktop import has_display

    if not a.headless:
        if a.open_gui is not None and has_display():
            return a.open_gui(a.bundle, demo=True)
        print("no display found: running the demo without a window", file=out)
    # The project is kept (in the user's data folder, as the window's demo) to be opened later;
    # a folder that is not a demo project is refused (the demo would train inside it).
    bundle = a.bundle or demo_path()
    project = open_or_build_demo(bundle)
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

"""The project commands: set up, manage images, label, summarise, demo (thin: the work is in
core.usecases); training and predicting are model_commands.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from svetlana.cli.progress import EXIT_OK
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

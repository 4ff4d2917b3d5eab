"""The commands that take results out of a project: measurements, tables, objects, masks,
patches, models. Every export goes through core/usecases/export.py's plan_export/run_export,
the plan the Predict tab's Export menu runs too; the ones that write a folder of their own
(table, objects, patches, model; measure too, by export_measurements) write it beside --out and
swap it in whole (run_export_whole):
--out must be new, empty or an earlier output of the same command, and Ctrl+C, a failure or a
crash leaves it as it was."""

from __future__ import annotations

from typing import TextIO

from svetlana.cli.commands import open_bundle, open_for_cache
from svetlana.cli.progress import EXIT_OK
from svetlana.core.jobs import CancelToken
from svetlana.core.wording import plural


def _export(project, kind: str, a, progress, cancel, info=None, **options):
    """Plan and run one export of the saved predictions (or predicted now); its result."""
    from svetlana.core.usecases.export import (
        MODEL,
        OBJECTS,
        PATCHES,
        TABLE,
        plan_export,
        run_export,
        run_export_whole,
    )

    plan = plan_export(
        project, kind, a.out, model_id=getattr(a, "model", None), info=info, from_saved=True,
        images=getattr(a, "image", None), options=options,
    )  # fmt: skip
    # export-mask swaps its folder in itself; a bioimage.io package is one folder and a zip in --out
    run = run_export_whole if kind in (TABLE, OBJECTS, PATCHES, MODEL) else run_export
    return run(plan, progress, cancel, project=project).result


def cmd_measure(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export_table import export_measurements

    with open_for_cache(a.bundle) as project:
        r = export_measurements(project, a.out, a.image, progress=progress, cancel=cancel)
    print(
        f"measured {plural(r.rows, 'object')} in {plural(len(r.images), 'image')}, "
        f"{plural(len(r.columns), 'column')}"
        f" -> {r.files[0]} (units: {r.files[1].name})",
        file=out,
    )
    return EXIT_OK


def cmd_export_table(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export import TABLE

    with open_for_cache(a.bundle) as project:
        r = _export(project, TABLE, a, progress, cancel, summary=a.summary)
    if r.note:
        print(f"note: {r.note}", file=out)
    print(
        f"wrote {r.rows} objects of {len(r.images)} image(s) to {r.files[0]}"
        f" and the per-class summary to {r.files[1].name}",
        file=out,
    )
    return EXIT_OK


def cmd_export_objects(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export import OBJECTS

    with open_for_cache(a.bundle) as project:
        r = _export(project, OBJECTS, a, progress, cancel, fmt=a.format)
    source = f"classes of {r.model_id} (labels first)" if r.model_id else "labels only"
    if r.note:
        print(f"note: {r.note}", file=out)
    n_files = len({p for p in r.files if p.is_file()})  # the files that exist, each once
    print(
        f"wrote {r.objects} objects ({source}) to {plural(n_files, 'GeoJSON file')} in {a.out}",
        file=out,
    )
    return EXIT_OK


def cmd_export_mask(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export import FILTERED

    with open_bundle(a.bundle, readonly=True) as project:
        s = _export(
            project, FILTERED, a, progress, cancel, keep=a.keep,
            min_confidence=a.min_confidence, per_class=a.per_class, device=a.device,
        )  # fmt: skip
    if s.note:
        print(f"note: {s.note}", file=out)
    for r in s.images:
        line = f"{r.image}: kept {r.kept}, removed {r.removed} of {r.objects} objects"
        if r.low_confidence:
            line += f" ({r.low_confidence} under the confidence threshold)"
        print(line + f" -> {', '.join(p.name for p in r.files)}", file=out)
    print(f"model {s.model_id}; kept {s.kept}, removed {s.removed}; wrote {s.csv_path}", file=out)
    return EXIT_OK


def cmd_export_patches(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export import PATCHES

    with open_bundle(a.bundle, readonly=True) as project:
        r = _export(project, PATCHES, a, progress, cancel, patch_size=a.patch_size, tiff=a.tiff)
    counts = ", ".join(f"{k} {v}" for k, v in r.class_counts.items())
    print(
        f"wrote {r.n} patches of {'x'.join(map(str, r.patch_shape))} px ({counts}) to {r.npz}"
        + (f" and {r.tiff_files} TIFFs" if r.tiff_files else ""),
        file=out,
    )
    return EXIT_OK


def cmd_export_model(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases.export import MODEL

    if a.format == "bioimageio":
        return _export_bioimageio(a, out, progress)
    with open_bundle(a.bundle, readonly=True) as project:
        r = _export(project, MODEL, a, progress, None)
    print(f"exported {r.model_id} to {r.files[0]} (see {r.files[-1].name})", file=out)
    return EXIT_OK


def _export_bioimageio(a, out: TextIO, progress) -> int:
    from svetlana.core.usecases.export import BIOIMAGEIO
    from svetlana.core.usecases.export_bioimageio import (
        DEFAULT_AUTHOR,
        DEFAULT_LICENSE,
        Citation,
        PackageInfo,
    )

    info = PackageInfo(
        authors=tuple(x.strip() for x in a.author if x.strip()) if a.author else (DEFAULT_AUTHOR,),
        license=a.license or DEFAULT_LICENSE,
        cite=tuple(Citation(t, d) for t, d in a.cite or ()),
        name=a.name or "",
    )
    with open_bundle(a.bundle, readonly=True) as project:
        r = _export(project, BIOIMAGEIO, a, progress, None, info=info)
    print(f"exported {r.model_id} as a bioimage.io package: {r.folder} and {r.zip_path}", file=out)
    print(f"check it with: bioimageio test {r.rdf}", file=out)
    if not a.author:
        print(f"note: author given as {DEFAULT_AUTHOR!r}: set --author NAME", file=out)
    return EXIT_OK

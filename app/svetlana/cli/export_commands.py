"""The commands that take results out of a project: measurements, tables, objects, masks,
patches, models."""

from __future__ import annotations

from typing import TextIO

from svetlana.cli.commands import open_bundle, open_for_cache
from svetlana.cli.progress import EXIT_OK
from svetlana.core.jobs import CancelToken
from svetlana.core.wording import plural


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
    from svetlana.core.usecases.export_table import export_table

    with open_for_cache(a.bundle) as project:
        r = export_table(
            project, a.out, a.image, model_id=a.model, summary=a.summary,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    if r.note:
        print(f"note: {r.note}", file=out)
    print(
        f"wrote {r.rows} objects of {len(r.images)} image(s) to {r.files[0]}"
        f" and the per-class summary to {r.files[1].name}",
        file=out,
    )
    return EXIT_OK


def cmd_export_objects(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.usecases.export_geojson import export_objects

    with open_for_cache(a.bundle) as project:
        r = export_objects(
            project, a.out, a.image, fmt=a.format, model_id=a.model,
            progress=progress, cancel=cancel,
        )  # fmt: skip
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
    from svetlana.core.usecases.export_masks import export_filtered

    with open_bundle(a.bundle, readonly=True) as project:
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
    from svetlana.core.usecases.export_patches import export_patches

    with open_bundle(a.bundle, readonly=True) as project:
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
    from svetlana.core.usecases.export_model import export_model

    if a.format == "bioimageio":
        return _export_bioimageio(a, out)
    with open_bundle(a.bundle, readonly=True) as project:
        r = export_model(project, a.out, a.model)
    print(f"exported {r.model_id} to {r.files[0]} (see {r.files[-1].name})", file=out)
    return EXIT_OK


def _export_bioimageio(a, out: TextIO) -> int:
    from svetlana.core.usecases.export_bioimageio import (
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
    with open_bundle(a.bundle, readonly=True) as project:
        r = export_bioimageio(project, a.out, a.model, info)
    print(f"exported {r.model_id} as a bioimage.io package: {r.folder} and {r.zip_path}", file=out)
    print(f"check it with: bioimageio test {r.rdf}", file=out)
    if not a.author:
        print(f"note: author given as {DEFAULT_AUTHOR!r}: set --author NAME", file=out)
    return EXIT_OK

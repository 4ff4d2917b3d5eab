"""Labels in and out of a project: import a CSV (checked, one journal batch), export one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError, ResourceError, SvetlanaError
from svetlana.core.io.fileio import atomic_write_text
from svetlana.core.project.bundle import LABELS_CSV, MANIFEST, Project

log = logging.getLogger(__name__)


# ---- labels ---------------------------------------------------------------------------


def nearest_class(name: str, classes: Sequence[str]) -> str | None:
    """The existing class a mistyped name probably means (same letters in another case, or a
    small typo), or ``None``."""
    import difflib

    lower = {c.lower(): c for c in classes}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.75)
    return lower[close[0]] if close else None


def _unknown_classes_message(unknown: Sequence[str], classes: Sequence[str]) -> str:
    parts = []
    for c in unknown[:8]:
        near = nearest_class(c, classes)
        parts.append(f"{c!r}" + (f" (did you mean {near!r}?)" if near else ""))
    more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
    return (
        f"unknown class{'es' if len(unknown) > 1 else ''} {', '.join(parts)}{more}; "
        f"the project's classes are {', '.join(classes)}. Fix the CSV, or add "
        f"{'them' if len(unknown) > 1 else 'it'} as new classes with --add-classes"
    )


def _refuse_contradictions(rows: Sequence[dict], csv_path: Path) -> None:
    """Rows giving one object two different classes are refused with their line numbers (the
    header is line 1, blank lines not counted); identical repeats are accepted."""
    seen: dict[tuple[str, int], tuple[int, str]] = {}
    clashes = []
    for k, r in enumerate(rows):
        key, line = (r["image"], r["object"]), k + 2
        first = seen.setdefault(key, (line, r["class"]))
        if first[1] != r["class"]:
            clashes.append(
                f"lines {first[0]} and {line}: {r['image']} object {r['object']} is "
                f"{first[1]!r} and {r['class']!r}"
            )
    if clashes:
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        raise InputError(
            "the CSV gives an object two classes: " + "; ".join(clashes[:3]) + more,
            csv_path,
            hint="keep one row per object (nothing was imported)",
        )


def import_labels(project: Project, csv_path: str | Path, *, add_classes: bool = False) -> int:
    """Import image,object,class rows: everything is checked before anything is changed, and
    the file's labels (and new classes) are applied as one transaction, even if killed.

    A class name the project lacks is refused (with the nearest existing name: ``smal`` ->
    ``small``) unless ``add_classes``; a project without any class yet takes the CSV's.
    """
    from svetlana.core.annotations.records import read_label_csv

    csv_path = Path(csv_path)
    rows = read_label_csv(csv_path)
    _refuse_contradictions(rows, csv_path)
    unknown_images = sorted({r["image"] for r in rows} - set(project.image_names))
    if unknown_images:
        raise InputError(
            f"unknown image(s) {', '.join(map(repr, unknown_images[:5]))}; "
            f"images in the project: {', '.join(project.image_names) or 'none'}",
            csv_path,
        )
    by_image: dict[str, list[int]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r["object"])
    for name, ids in by_image.items():
        table = project.load(name).table
        ok = table.contains(np.asarray(ids))
        if not ok.all():
            bad = sorted({int(i) for i, k in zip(ids, ok, strict=True) if not k})
            raise InputError(
                f"image {name!r} has no object with id {', '.join(map(str, bad[:8]))}"
                + (" ..." if len(bad) > 8 else ""),
                csv_path,
            )
    from svetlana.core.annotations.store import validate_class_name

    store = project.annotations
    new_classes = [c for c in dict.fromkeys(r["class"] for r in rows) if c not in store.class_names]
    if new_classes and store.class_names and not add_classes:
        raise InputError(_unknown_classes_message(new_classes, store.class_names), csv_path)
    for cls in new_classes:  # a bad name must stop the import before any class is added
        try:
            validate_class_name(cls)
        except InputError as exc:
            raise InputError(exc.message, csv_path) from None
    by_class: dict[str, list] = {}
    for r in rows:
        by_class.setdefault(r["class"], []).append((r["image"], r["object"], r["class"]))
    point = store.checkpoint()
    with store.transaction():  # one journal record: a kill leaves all of the file or none
        for cls in new_classes:
            store.add_class(cls)
        for changes in by_class.values():
            store.apply_labels(changes, source="import")
    try:
        project.save()
    except SvetlanaError as exc:
        # "Nothing was changed" must be true: the journalled batch is cut off again (a full
        # disk: truncating frees space) and the labels files rewritten as they were.
        # Project.save writes the CSV, then the manifest (atomically), then empties the journal.
        failed_at = exc.path.name if exc.path is not None else ""
        try:
            store.rollback(point)
            if failed_at == MANIFEST:  # the CSV was rewritten already: put it back
                store.write_csv(project.path / LABELS_CSV)
            elif failed_at != LABELS_CSV:
                project.save()
        except (SvetlanaError, OSError) as again:
            raise ResourceError(
                f"{exc.message}; the import could not be undone either ({again}): check the "
                "project's labels with `svetlana info` once space is free",
                exc.path,
            ) from exc
        raise
    return len(rows)


def export_labels(project: Project, csv_path: str | Path) -> int:
    atomic_write_text(csv_path, project.annotations.to_csv_text())
    return len(project.annotations)

"""A project's classes as a use-case: list, rename, merge and remove them (``svetlana classes``).

Models keep the class list they were trained with (their card), so renaming or merging never
breaks them; ``class_mismatch`` says when a model's classes no longer match the project's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from svetlana.core.errors import InputError, SvetlanaError
from svetlana.core.project.bundle import Project

log = logging.getLogger(__name__)

FEW_LABELS = 5  # below this many labels a class gets a warning before training


@dataclass(frozen=True)
class ClassSummary:
    name: str
    key: str
    colour: str
    labels: int
    models: tuple[str, ...]  # models whose card lists this class


def _model_classes(project: Project) -> dict[str, tuple[str, ...]]:
    out = {}
    for mid in project.models.ids():
        try:
            out[mid] = tuple(str(c) for c in project.models.card(mid).get("classes", ()))
        except SvetlanaError as exc:  # a damaged card must not hide the classes
            log.info("cannot read the card of %s: %s", mid, exc)
    return out


def class_summary(project: Project) -> list[ClassSummary]:
    store = project.annotations
    counts = store.counts()
    models = _model_classes(project)
    return [
        ClassSummary(
            c.name,
            c.key,
            c.colour,
            counts.get(c.name, 0),
            tuple(m for m, names in models.items() if c.name in names),
        )
        for c in store.classes
    ]


def rename_class(project: Project, old: str, new: str) -> int:
    """Rename a class (its labels follow); returns how many labels it has."""
    store = project.annotations
    store.class_info(old)
    store.update_class(old, new_name=new)
    project.save()
    return store.counts().get(new.strip(), 0)


def merge_class(project: Project, name: str, into: str) -> int:
    """Give ``name``'s labels to ``into`` and remove ``name``; returns how many labels moved."""
    _, _, moved = project.annotations.merge_class(name, into)
    project.save()
    return len(moved)


def remove_class(project: Project, name: str, *, force: bool = False) -> int:
    """Remove a class; one with labels only with ``force`` (they are removed too)."""
    store = project.annotations
    store.class_info(name)
    n = store.counts().get(name, 0)
    if n and not force:
        raise InputError(
            f"class {name!r} has {n} label{'s' if n != 1 else ''}; removing it removes them too. "
            f"Merge it into another class (--merge {name} OTHER) or confirm with --force"
        )
    store.remove_class(name)
    project.save()
    return n


def class_mismatch(project: Project, model_classes) -> str | None:
    """A one-line note when a model's classes differ from the project's, else ``None``."""
    model_classes = tuple(str(c) for c in model_classes)
    project_classes = project.annotations.class_names
    if set(model_classes) == set(project_classes):
        return None
    gone = [c for c in model_classes if c not in project_classes]
    new = [c for c in project_classes if c not in model_classes]
    parts = []
    if gone:
        parts.append(f"it predicts {', '.join(gone)}, which the project no longer has")
    if new:
        parts.append(f"it never learnt {', '.join(new)}")
    return (
        f"the model's classes ({', '.join(model_classes)}) differ from the project's "
        f"({', '.join(project_classes) or 'none'}): {'; '.join(parts)}. Its predictions keep "
        "its own names; your labels keep theirs. Train a new model to use the current classes"
    )


def rare_classes(counts: dict[str, int], threshold: int = FEW_LABELS) -> dict[str, int]:
    """Classes with fewer than ``threshold`` labels (a warning before training)."""
    return {c: n for c, n in counts.items() if n < threshold}


def rare_classes_warning(counts: dict[str, int], threshold: int = FEW_LABELS) -> str | None:
    rare = rare_classes(counts, threshold)
    if not rare:
        return None
    listed = ", ".join(f"{c} ({n} label{'s' if n != 1 else ''})" for c, n in rare.items())
    return (
        f"few labels for {listed}: the model will hardly learn "
        f"{'these classes' if len(rare) > 1 else 'this class'} (label at least {threshold} "
        "objects of each class, or merge or remove it)"
    )

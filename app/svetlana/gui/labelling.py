"""The one path from a class key to a label: the session's current object(s), and only them.

The Annotate tab, the Review list and the gallery all call ``label_current`` (through the key
map); the session says which objects are current and every view highlights them. Labelling
several objects of which some already carry another class asks first.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from svetlana.core.errors import SvetlanaError
from svetlana.core.wording import plural
from svetlana.gui.errors import show_error


def label_with_key(parent: QWidget, session, key: str) -> str:
    """Label the current object(s) with the class of ``key`` ("1"…"9"); a status text."""
    if session.project is None:
        return ""
    cls = session.project.annotations.class_for_key(key)
    if cls is None:
        return f"no class has the key {key}"
    return label_current(parent, session, cls)


def label_current(parent: QWidget, session, class_name: str | None) -> str:
    """Label (None: clear) the current object(s) in one undoable step; a status text."""
    ids = session.selection
    if session.project is None or session.current_image is None:
        return ""
    if not ids:
        return "no object selected: nothing labelled"
    skip = False
    if class_name is not None and len(ids) > 1:
        labels = session.project.annotations.for_image(session.current_image)
        others = [o for o in ids if o in labels and labels[o].class_name != class_name]
        if others:
            answer = _ask_relabel(parent, len(ids), others, labels, class_name)
            if answer == QMessageBox.StandardButton.Cancel:
                return "nothing labelled"
            skip = answer == QMessageBox.StandardButton.No
    try:
        done = session.label_current(class_name, skip_labelled=skip)
    except SvetlanaError as exc:
        show_error(parent, exc)
        return ""
    if skip:
        left = len(ids) - len(done)
        return (
            f"{plural(len(done), 'object')} labelled {class_name!r}; "
            f"{plural(left, 'object')} already labelled left as they were"
        )
    if len(done) > 1:
        what = "cleared" if class_name is None else f"labelled {class_name!r}"
        return f"{plural(len(done), 'object')} {what} (Ctrl+Z undoes)"
    return ""


def _ask_relabel(parent, n: int, others: list[int], labels, class_name: str):
    counts: dict[str, int] = {}
    for o in others:
        counts[labels[o].class_name] = counts.get(labels[o].class_name, 0) + 1
    which = ", ".join(f"{k} {name!r}" for name, k in sorted(counts.items()))
    return QMessageBox.question(
        parent,
        "Relabel objects?",
        f"{plural(len(others), 'object')} of the {n} selected already "
        f"{'has' if len(others) == 1 else 'have'} another label ({which}).\n\n"
        f"Yes: relabel {'it' if len(others) == 1 else 'them'} {class_name!r} too.\n"
        f"No: label only the others and leave {'it' if len(others) == 1 else 'them'} as "
        f"{'it is' if len(others) == 1 else 'they are'}.",
        QMessageBox.StandardButton.Yes
        | QMessageBox.StandardButton.No
        | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )

"""Undoable label and class commands over the store (the GUI wraps them in QUndoCommands)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from svetlana.core.annotations.store import Annotations, ClassInfo, Key, Label, validate_class_name
from svetlana.core.errors import InputError

log = logging.getLogger(__name__)


def label_source(class_name: str | None, predicted: Iterable[str] = ()) -> str:
    """How a new label is recorded: a "correction" when a shown prediction of any of the labelled
    objects disagrees with it (the number `info` and the Predict tab count), else "manual"."""
    if class_name is not None and set(predicted) - {class_name}:
        return "correction"
    return "manual"


class Command:
    """A user action with do/undo over an ``Annotations`` store."""

    text = ""

    def check(self, store: Annotations) -> None:
        """Raise the ``InputError`` that ``do`` would, changing nothing (a Qt undo stack
        cannot carry an exception out of ``do``, so the GUI checks first)."""

    def do(self, store: Annotations) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def undo(self, store: Annotations) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class LabelObjects(Command):
    """Give one class (or none, to clear) to several objects of one image in one step."""

    def __init__(
        self, image: str, objects: Sequence[int], class_name: str | None, source: str = "manual"
    ):
        self.image = image
        self.objects = [int(o) for o in objects]
        self.class_name = class_name
        self.source = source
        self._previous: dict[Key, Label | None] = {}
        n = len(self.objects)
        what = f"object {self.objects[0]}" if n == 1 else f"{n} objects"
        self.text = f"Clear {what}" if class_name is None else f"Label {what} as {class_name}"

    def do(self, store: Annotations) -> None:
        self._previous = store.apply_labels(
            [(self.image, o, self.class_name) for o in self.objects], source=self.source
        )

    def undo(self, store: Annotations) -> None:
        store.restore(self._previous)


class AddClass(Command):
    def __init__(self, name: str, colour: str | None = None, key: str | None = None):
        self.name, self.colour, self.key = name, colour, key
        self.text = f"Add class {name}"

    def check(self, store: Annotations) -> None:
        validate_class_name(self.name)
        if self.name in store.class_names:
            raise InputError(f"a class named {self.name!r} already exists")

    def do(self, store: Annotations) -> None:
        info = store.add_class(self.name, self.colour, self.key)
        self.colour, self.key = info.colour, info.key

    def undo(self, store: Annotations) -> None:
        store.remove_class(self.name)


class UpdateClass(Command):
    def __init__(
        self,
        name: str,
        *,
        new_name: str | None = None,
        colour: str | None = None,
        key: str | None = None,
    ):
        self.name, self.new_name, self.colour, self.key = name, new_name, colour, key
        self._old: ClassInfo | None = None
        self.text = f"Rename class {name} to {new_name}" if new_name else f"Change class {name}"

    def check(self, store: Annotations) -> None:
        store.class_info(self.name)
        if self.new_name is not None and self.new_name != self.name:
            validate_class_name(self.new_name)
            if self.new_name in store.class_names:
                raise InputError(f"a class named {self.new_name!r} already exists")
        if self.key and self.key in {c.key for c in store.classes if c.name != self.name}:
            raise InputError(f"key {self.key} is already used by another class")

    def do(self, store: Annotations) -> None:
        self._old = store.class_info(self.name)
        store.update_class(self.name, new_name=self.new_name, colour=self.colour, key=self.key)

    def undo(self, store: Annotations) -> None:
        assert self._old is not None
        current = self.new_name or self.name
        store.update_class(
            current, new_name=self._old.name, colour=self._old.colour, key=self._old.key
        )


class RemoveClass(Command):
    def __init__(self, name: str):
        self.name = name
        self.text = f"Remove class {name}"
        self._undo: tuple[ClassInfo, int, dict[Key, Label]] | None = None

    def do(self, store: Annotations) -> None:
        self._undo = store.remove_class(self.name)

    def undo(self, store: Annotations) -> None:
        assert self._undo is not None
        info, index, labels = self._undo
        store._class_op({"op": "add_class", "index": index, **info.to_dict()})
        store.restore(dict(labels))


class MergeClasses(Command):
    """Merge one class into another: its labels take the other class, then it is removed."""

    def __init__(self, name: str, into: str):
        self.name, self.into = name, into
        self.text = f"Merge class {name} into {into}"
        self._undo: tuple[ClassInfo, int, dict[Key, Label]] | None = None

    def do(self, store: Annotations) -> None:
        self._undo = store.merge_class(self.name, self.into)

    def undo(self, store: Annotations) -> None:
        assert self._undo is not None
        info, index, labels = self._undo
        store._class_op({"op": "add_class", "index": index, **info.to_dict()})
        store.restore(dict(labels))


class UndoStack:
    """A minimal undo stack for headless use and tests (the GUI uses QUndoStack)."""

    def __init__(self, store: Annotations):
        self.store = store
        self._done: list[Command] = []
        self._undone: list[Command] = []

    def push(self, cmd: Command) -> None:
        cmd.do(self.store)
        self._done.append(cmd)
        self._undone.clear()

    def undo(self) -> bool:
        if not self._done:
            return False
        cmd = self._done.pop()
        cmd.undo(self.store)
        self._undone.append(cmd)
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        cmd = self._undone.pop()
        cmd.do(self.store)
        self._done.append(cmd)
        return True

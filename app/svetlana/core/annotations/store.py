"""Classes and the object->class store, journalled (record formats: ``records``; undoable
commands: ``commands``).

The store is journalled: every accepted change is appended (and fsynced) to
``annotations.journal`` before it is applied in memory, so a label survives a kill -9.
Several changes made at once (a selection, an import inside ``transaction()``) are one batch
record carrying their count and SHA-256: after a crash, replay applies all of them or none.
Replaying the journal is idempotent, which makes compaction (rewrite the CSV, then
truncate the journal) safe at any point of a crash.

~520 lines: the store and its journal, which must change together (every change is journalled
before it is applied).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from svetlana.core.annotations.records import (
    SOURCES,
    batch_line,
    checked_batch,
    checked_class_record,
    checked_label_record,
    read_label_csv,
)
from svetlana.core.errors import InputError, ProjectError
from svetlana.core.io.csvsafe import to_csv_text
from svetlana.core.io.fileio import append_line_durable, atomic_write_text

log = logging.getLogger(__name__)

PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#469990",
    "#dcbeff",
    "#9a6324",
)


@dataclass(frozen=True)
class ClassInfo:
    """A class the user labels objects with; ``key`` is its keyboard shortcut ("1".."9" or "")."""

    name: str
    colour: str
    key: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "colour": self.colour, "key": self.key}

    @classmethod
    def from_dict(cls, d: dict) -> ClassInfo:
        return cls(
            name=str(d["name"]), colour=str(d.get("colour", "#ffffff")), key=str(d.get("key", ""))
        )


@dataclass(frozen=True)
class Label:
    class_name: str
    source: str = "manual"
    time: str = ""  # when it was given (ISO 8601, UTC); "" for labels older than timestamps


def label_time() -> str:
    """The timestamp a label gets (ISO 8601 UTC, milliseconds: sortable and comparable)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


Key = tuple[str, int]  # (image name, object id)
Change = tuple[str, int, str | None]  # (image, object, class or None to clear)


MAX_CLASS_NAME = 60
MAX_JOURNAL = 4 << 30  # the journal since the last compaction; larger is refused unread
# Control characters (tab, CR, LF...), invisible format characters (e.g. right-to-left
# override) and line/paragraph separators: they break CSV rows and hide what a name says.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def validate_class_name(name: str) -> str:
    """``name`` unchanged if it can be a class name, else an ``InputError`` saying why.

    Formula-looking names (``=1+2``) are allowed: every CSV writer neutralises them.
    """
    import unicodedata

    if not isinstance(name, str) or not name.strip():
        raise InputError("a class name cannot be empty")
    bad = next((c for c in name if unicodedata.category(c) in _BAD_CATEGORIES), None)
    if bad is not None:
        what = {"\t": "a tab", "\r": "a carriage return", "\n": "a line break"}.get(
            bad, f"the invisible character U+{ord(bad):04X}"
        )
        raise InputError(f"class name {name!r} contains {what}; use visible characters only")
    if name != name.strip():
        raise InputError(f"class name {name!r} starts or ends with a space; remove it")
    if len(name) > MAX_CLASS_NAME:
        raise InputError(
            f"class name {name[:20]!r}... is {len(name)} characters long; "
            f"use at most {MAX_CLASS_NAME}"
        )
    if any(c in name for c in ',"'):
        raise InputError(f"class name {name!r} cannot contain commas or double quotes")
    return name


class Annotations:
    """In-memory classes and labels of a project, persisted through a journal.

    ``listeners`` are called with the set of changed keys (labels) or ``None`` (classes)
    after every change; views subscribe to them, the store never knows a view exists.
    """

    def __init__(self, classes: Sequence[ClassInfo] = (), journal: Path | None = None):
        self._classes: list[ClassInfo] = list(classes)
        self._labels: dict[Key, Label] = {}
        self._journal = journal
        self._sync = None  # a DeferredSync when the window asked for it (defer_fsync)
        self.listeners: list[Callable[[set[Key] | None], None]] = []
        self.dirty = False
        self._pending: list[dict] | None = None  # records of an open transaction

    # ---- reading ---------------------------------------------------------------
    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return tuple(self._classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._classes)

    def class_info(self, name: str) -> ClassInfo:
        for c in self._classes:
            if c.name == name:
                return c
        raise InputError(
            f"unknown class {name!r} (classes: {', '.join(self.class_names) or 'none'})"
        )

    def class_index(self, name: str) -> int:
        """0-based position of a class in the project's class order."""
        return self.class_names.index(self.class_info(name).name)

    def class_for_key(self, key: str) -> str | None:
        for c in self._classes:
            if c.key == key:
                return c.name
        return None

    def get(self, image: str, obj: int) -> Label | None:
        return self._labels.get((image, int(obj)))

    def items(self) -> list[tuple[Key, Label]]:
        return sorted(self._labels.items())

    def for_image(self, image: str) -> dict[int, Label]:
        return {o: lab for (im, o), lab in self._labels.items() if im == image}

    def counts(self, image: str | None = None) -> dict[str, int]:
        out = dict.fromkeys(self.class_names, 0)
        for (im, _), lab in self._labels.items():
            if image is None or im == image:
                out[lab.class_name] = out.get(lab.class_name, 0) + 1
        return out

    def __len__(self) -> int:
        return len(self._labels)

    # ---- low-level mutation (journalled) ----------------------------------------
    def _journal_write(self, records: list[dict]) -> None:
        if self._pending is not None:
            self._pending.extend(records)
            return
        if self._journal is None or not records:
            return
        # One fsynced line per change; several records go as one batch line (all or nothing).
        if len(records) == 1:
            line = json.dumps(records[0], separators=(",", ":"))
        else:
            line = batch_line(records)
        append_line_durable(self._journal, line, sync=self._sync is None)
        if self._sync is not None:
            self._sync.request(self._journal)

    def defer_fsync(self) -> None:
        """Journal lines are written at once and fsynced on a background thread (the window:
        a key press never waits for the disk); :meth:`flush` waits for them."""
        from svetlana.core.io.fileio import DeferredSync

        if self._sync is None:
            self._sync = DeferredSync()

    def flush(self) -> None:
        """Every journal line on disk (fsynced), when :meth:`defer_fsync` deferred them."""
        if self._sync is not None:
            self._sync.flush()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Changes made inside are journalled as one batch record when the block ends: after a
        crash, replay applies all of them or none. On an error they are undone in memory."""
        if self._pending is not None:  # nested: part of the outer transaction
            yield
            return
        classes, labels = list(self._classes), dict(self._labels)
        self._pending = []
        try:
            yield
            records, self._pending = self._pending, None
            self._journal_write(records)
        except BaseException:
            self._pending = None
            self._classes, self._labels = classes, labels
            self._notify(None)
            raise

    def checkpoint(self) -> tuple:
        """The state to go back to with :meth:`rollback` (classes, labels, journal size)."""
        import os

        size = 0
        if self._journal is not None:
            with contextlib.suppress(OSError):
                size = os.lstat(self._journal).st_size
        return list(self._classes), dict(self._labels), size, self.dirty

    def rollback(self, point: tuple) -> None:
        """Go back to a :meth:`checkpoint`: the journal cut back to its size then (so that a
        change the caller reports as not made is not replayed at the next open) and the
        classes and labels as they were."""
        import os

        classes, labels, size, dirty = point
        if self._journal is not None and os.path.lexists(self._journal):
            fd = os.open(self._journal, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
        self._classes, self._labels = classes, labels
        self._notify(None)
        self.dirty = dirty

    def _notify(self, keys: set[Key] | None) -> None:
        self.dirty = True
        for fn in list(self.listeners):
            fn(keys)

    def apply_labels(
        self, changes: Iterable[Change], source: str = "manual"
    ) -> dict[Key, Label | None]:
        """Set or clear labels; returns the previous value of every changed key (for undo)."""
        if source not in SOURCES:
            raise InputError(f"unknown label source {source!r}")
        changes = [(str(im), int(o), c) for im, o, c in changes]
        for _, _, c in changes:
            if c is not None:
                self.class_info(c)
        previous: dict[Key, Label | None] = {}
        records = []
        now = label_time()
        for im, o, c in changes:
            key = (im, o)
            previous.setdefault(key, self._labels.get(key))
            records.append(
                {"op": "label", "image": im, "object": o, "class": c, "source": source, "time": now}
            )
        self._journal_write(records)
        self._apply_label_records(records)
        self._notify(set(previous))
        return previous

    def restore(self, previous: dict[Key, Label | None]) -> None:
        """Put labels back as they were (the undo of ``apply_labels``)."""
        records = [
            {
                "op": "label",
                "image": im,
                "object": o,
                "class": None if lab is None else lab.class_name,
                "source": "manual" if lab is None else lab.source,
                "time": "" if lab is None else lab.time,
            }
            for (im, o), lab in previous.items()
        ]
        self._journal_write(records)
        self._apply_label_records(records)
        self._notify(set(previous))

    def _apply_label_records(self, records: list[dict]) -> None:
        for r in records:
            key = (r["image"], int(r["object"]))
            if r["class"] is None:
                self._labels.pop(key, None)
            else:
                self._labels[key] = Label(
                    r["class"], r.get("source", "manual"), str(r.get("time") or "")
                )

    def _class_op(self, record: dict) -> None:
        self._journal_write([record])
        self._apply_class_record(record)
        self._notify(None)

    def _apply_class_record(self, r: dict) -> None:
        op = r["op"]
        names = self.class_names
        if op == "add_class":
            if r["name"] not in names:
                self._classes.insert(
                    min(int(r.get("index", len(names))), len(names)), ClassInfo.from_dict(r)
                )
        elif op == "update_class":
            if r["name"] in names:
                i = names.index(r["name"])
                new = ClassInfo.from_dict({**self._classes[i].to_dict(), **r.get("changes", {})})
                self._classes[i] = new
                if new.name != r["name"]:
                    for k, lab in list(self._labels.items()):
                        if lab.class_name == r["name"]:
                            self._labels[k] = replace(lab, class_name=new.name)
        elif op == "remove_class":
            if r["name"] in names:
                del self._classes[names.index(r["name"])]
                for k, lab in list(self._labels.items()):
                    if lab.class_name == r["name"]:
                        del self._labels[k]
        else:
            log.warning("ignoring unknown journal op %r", op)

    def add_class(
        self, name: str, colour: str | None = None, key: str | None = None, index: int | None = None
    ) -> ClassInfo:
        name = validate_class_name(name)
        if name in self.class_names:
            raise InputError(f"a class named {name!r} already exists")
        n = len(self._classes)
        if colour is None:
            used = {c.colour for c in self._classes}
            colour = next((p for p in PALETTE if p not in used), PALETTE[n % len(PALETTE)])
        if key is None:
            used_keys = {c.key for c in self._classes}
            key = next((str(k) for k in range(1, 10) if str(k) not in used_keys), "")
        info = ClassInfo(name, colour, key)
        self._class_op(
            {"op": "add_class", "index": n if index is None else index, **info.to_dict()}
        )
        return info

    def update_class(
        self,
        name: str,
        *,
        new_name: str | None = None,
        colour: str | None = None,
        key: str | None = None,
    ) -> None:
        self.class_info(name)
        changes: dict[str, str] = {}
        if new_name is not None and new_name != name:
            new_name = validate_class_name(new_name)
            if new_name in self.class_names:
                raise InputError(f"a class named {new_name!r} already exists")
            changes["name"] = new_name
        if colour is not None:
            changes["colour"] = colour
        if key is not None:
            if key and key in {c.key for c in self._classes if c.name != name}:
                raise InputError(f"key {key} is already used by another class")
            changes["key"] = key
        if changes:
            self._class_op({"op": "update_class", "name": name, "changes": changes})

    def remove_class(self, name: str) -> tuple[ClassInfo, int, dict[Key, Label]]:
        """Remove a class and its labels; returns what is needed to undo it."""
        info = self.class_info(name)
        index = self.class_names.index(name)
        removed = {k: lab for k, lab in self._labels.items() if lab.class_name == name}
        self._class_op({"op": "remove_class", "name": name})
        return info, index, removed

    def merge_class(self, name: str, into: str) -> tuple[ClassInfo, int, dict[Key, Label]]:
        """Give every label of ``name`` to ``into`` (source and time kept), then remove ``name``;
        returns what is needed to undo it."""
        info = self.class_info(name)
        self.class_info(into)
        if name == into:
            raise InputError(f"cannot merge class {name!r} into itself")
        index = self.class_names.index(name)
        moved = {k: lab for k, lab in self._labels.items() if lab.class_name == name}
        records = [
            {"op": "label", "image": im, "object": o, "class": into, "source": lab.source,
             "time": lab.time}
            for (im, o), lab in sorted(moved.items())
        ]  # fmt: skip
        with self.transaction():
            self._journal_write(records)
            self._apply_label_records(records)
            self._class_op({"op": "remove_class", "name": name})
        return info, index, moved

    # ---- persistence -------------------------------------------------------------
    def load_csv(self, path: Path) -> None:
        """The project's labels CSV (a regular file, never through a link)."""
        import os

        if not os.path.lexists(path):
            return
        for row in read_label_csv(path, error=ProjectError, follow=False):
            cls = row["class"]
            if cls not in self.class_names:
                try:
                    validate_class_name(cls)
                except InputError as exc:
                    raise ProjectError(exc.message, path) from None
                # A CSV with a class the manifest lacks: keep the label, recreate the class.
                self._apply_class_record(
                    {
                        "op": "add_class",
                        "name": cls,
                        "colour": PALETTE[len(self._classes) % len(PALETTE)],
                        "key": "",
                    }
                )
            self._labels[(row["image"], int(row["object"]))] = Label(
                cls, row.get("source") or "manual", row.get("time", "")
            )

    def replay_journal(self, path: Path | None = None) -> int:
        """Apply the journal's records (idempotent). Returns how many were applied."""
        import os

        from svetlana.core.io.fileio import read_regular_bytes

        journal = path if path is not None else self._journal
        if journal is None or not os.path.lexists(journal):
            return 0
        n = 0
        # A regular file, never through a link; bounded (a FIFO or /dev/zero would never end).
        raw = read_regular_bytes(journal, MAX_JOURNAL, follow=False, error=ProjectError)
        lines = raw.decode("utf-8", errors="replace").splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # Only a torn final line is expected after a crash: that change was never accepted.
                if i != len(lines) - 1:
                    log.warning("skipping unreadable journal line %d", i + 1)
                continue
            try:
                if not isinstance(rec, dict):
                    raise TypeError("not a record")
                batch = checked_batch(rec) if rec.get("op") == "batch" else [rec]
            except (KeyError, TypeError, ValueError) as exc:
                # A batch whose length or checksum does not match was never accepted whole.
                log.warning("skipping damaged journal line %d (%s)", i + 1, exc)
                continue
            for r in batch:
                n += self._replay_record(r, i + 1, journal)
        return n

    def _replay_record(self, rec: Any, line: int, journal: Path | None = None) -> int:
        try:
            if not isinstance(rec, dict):
                raise TypeError("not a record")
            if rec.get("op") == "label":
                rec = checked_label_record(rec)
                if rec.get("class") is not None and rec["class"] not in self.class_names:
                    return 0
                self._apply_label_records([rec])
            else:
                rec = checked_class_record(rec, validate_class_name)
                changes = rec.get("changes", {})
                new = changes.get("name", rec["name"])
                old = rec["name"]
                if rec["op"] == "update_class" and new != old and new in self.class_names:
                    # Replayed twice (an interrupted compaction): the class was renamed
                    # already and re-added since; fold it in rather than make a duplicate.
                    if old in self.class_names:
                        for k, lab in list(self._labels.items()):
                            if lab.class_name == old:
                                self._labels[k] = replace(lab, class_name=new)
                        self._apply_class_record({"op": "remove_class", "name": old})
                    return 1
                self._apply_class_record(rec)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # We only write well-formed records: a malformed or tampered one is damage, not a
            # change, and replaying it could leave a project no command can open.
            log.warning(
                "%s: line %d: refused a damaged record (%s); it was not applied",
                journal or "annotations.journal",
                line,
                exc,
            )
            return 0
        return 1

    def to_csv_text(self) -> str:
        return to_csv_text(
            ["image", "object", "class", "source", "time"],
            ([im, o, lab.class_name, lab.source, lab.time] for (im, o), lab in self.items()),
        )

    def write_csv(self, path: Path) -> None:
        atomic_write_text(path, self.to_csv_text())

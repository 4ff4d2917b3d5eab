"""Output folders and the file names in them: every image keeps its own files; a folder is whole.

``output_stems`` is the one map from image (or class) names to file names: names that would
share a file (``a b`` and ``a_b`` both clean to ``a_b``; ``CELL`` and ``cell`` on a disk that
ignores case) get a stable suffix made from their own name, recorded in ``run.json``.

``output_folder`` writes a folder beside its place and swaps it in whole (``fileio.atomic_folder``,
as the bioimage.io export does): after a crash the folder holds the earlier run or this one,
never files of two runs under one ``run.json``. A folder it would replace must be empty or hold
only what an earlier run of the same kind wrote; anything else is refused, not deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from svetlana.core.errors import InputError
from svetlana.core.io.fileio import atomic_folder, atomic_write_json, safe_file_name

RUN_FILE = "run.json"
FILES_KEY = "files"  # run.json: the entries the run wrote (all of its folder but run.json)
NAMES_KEY = "file_names"  # run.json: image -> file stem, where it is not the plain cleaned name


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]


def output_stems(names: Iterable[str]) -> dict[str, str]:
    """``name -> file stem``: ``safe_file_name(name)``, or ``<stem>-<6 hex of sha256(name)>`` for
    every name whose stem another name shares (compared without case). The suffix depends only
    on the name, so an image keeps its file name from run to run."""
    names = list(dict.fromkeys(names))
    plain = {n: safe_file_name(n) for n in names}
    groups: dict[str, list[str]] = {}
    for n, s in plain.items():
        groups.setdefault(s.lower(), []).append(n)
    out = {}
    for n, s in plain.items():
        out[n] = s if len(groups[s.lower()]) == 1 else f"{s}-{_suffix(n)}"
    taken: dict[str, str] = {}
    for n, s in out.items():
        other = taken.setdefault(s.lower(), n)
        if other != n:  # a suffixed name equal to another's plain name: vanishingly rare
            raise InputError(
                f"the names {other!r} and {n!r} would share the file name {s!r}; rename one"
            )
    return out


def renamed(stems: dict[str, str]) -> dict[str, str]:
    """The stems that differ from the plain cleaned name (what run.json records)."""
    return {n: s for n, s in stems.items() if s != safe_file_name(n)}


def _record(folder: Path) -> dict | None:
    try:
        rec = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


_LEGACY_SUFFIXES = (".tif", ".tiff", ".png", ".csv", ".json", ".npy")


def _legacy_output(path: Path) -> bool:
    """An entry of the kinds an earlier version's output folder held (masks, CSVs, run.json,
    parts/, OME-Zarr class masks)."""
    if path.is_symlink():
        return False
    if path.is_dir():
        return path.name == "parts" or path.name.endswith(".ome.zarr")
    return path.name.lower().endswith(_LEGACY_SUFFIXES)


def check_output_folder(
    folder: str | Path,
    kind: str,
    inputs: Sequence[str | Path] = (),
    arg: str = "--out",
    earlier: Sequence[str] = (),
) -> Path:
    """Refuse an output folder that is a file, lies inside an input folder, or holds anything but
    an earlier output of ``kind`` (it would be replaced whole). ``earlier``: the files an earlier
    version wrote for ``kind`` without a run.json; a folder holding exactly these is its output
    too. Returns the absolute path."""
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{arg} is an existing file; give a folder (new or empty)", folder)
    real = folder.resolve()
    for src in inputs:
        src_real = Path(src).resolve()
        if real == src_real or src_real in real.parents:
            raise InputError(
                f"{arg} is inside the input folder {src}; the input folder is never written to",
                folder,
                hint="choose an output folder outside it",
            )
    if not folder.is_dir() or not any(folder.iterdir()):
        return folder
    rec = _record(folder)
    entries = sorted(p.name for p in folder.iterdir())
    if rec is None and earlier and set(entries) == set(earlier):
        return folder
    listed = rec.get(FILES_KEY) if rec else None
    if isinstance(listed, list):
        only_ours = set(entries) <= {RUN_FILE, *map(str, listed)}
    else:  # written before run.json listed its files: only the kinds of file a run writes
        only_ours = all(_legacy_output(folder / e) for e in entries)
    ours = rec is not None and rec.get("kind") == kind and only_ours
    if not ours:
        what = (
            f"the output of another command ({rec.get('kind')})"
            if rec and rec.get("kind") != kind
            else "files Svetlana did not write"
        )
        raise InputError(
            f"{arg} already holds {what}; it would be replaced whole, so it is left alone",
            folder,
            hint="choose a new or empty folder",
        )
    return folder


@contextlib.contextmanager
def output_folder(
    folder: str | Path,
    kind: str,
    inputs: Sequence[str | Path] = (),
    arg: str = "--out",
    earlier: Sequence[str] = (),
) -> Iterator[Path]:
    """A temp folder beside ``folder`` to write into; swapped in whole when the block ends
    (``folder`` checked first by ``check_output_folder``). ``run.json`` in it, when written,
    gets the list of the folder's entries, so the next run knows what it may replace."""
    final = check_output_folder(folder, kind, inputs, arg, earlier)
    with atomic_folder(final) as tmp:
        yield tmp
        rec = _record(tmp)
        if rec is not None:
            rec[FILES_KEY] = sorted(p.name for p in tmp.iterdir() if p.name != RUN_FILE)
            atomic_write_json(tmp / RUN_FILE, rec)

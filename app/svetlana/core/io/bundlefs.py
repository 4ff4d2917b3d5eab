"""A received bundle is untrusted input (like a zip from the internet): every path the app reads
or writes inside it goes through here, and is checked where it is opened.

A path inside a bundle must stay inside it (relative, no ``..``), every folder on the way must be
a real folder and the entry itself a regular file or folder: a symbolic link, a FIFO, a device or
a socket is refused with one message naming the entry, and a file larger than anything Svetlana
writes there is refused before it is read. Files are opened without following a link
(``O_NOFOLLOW``) and without blocking on a FIFO (``O_NONBLOCK``, then checked with ``fstat``).
Writes, renames and deletes never follow a link either: the folders on the way are checked
(``lstat``) first, a file is replaced by a rename (which replaces a link, never its target) and a
folder is removed by :func:`svetlana.core.io.fileio.remove_tree` (a link is unlinked, never
followed). The bundle's own folder (``root``) is the one the user chose and is trusted.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from svetlana.core.errors import ProjectError
from svetlana.core.io import fileio

# The largest file Svetlana writes at each kind of place in a bundle (a larger one is damage or
# an attack: refused before it is read, so that e.g. a 100 GB "card.json" cannot fill memory).
MAX_JSON = 256 << 20  # project.json of ~500,000 images; a card; run.json
MAX_TEXT = 4 << 30  # annotations.csv, annotations.journal (tens of millions of labels)
MAX_LOCK = 64 << 10
MAX_CACHE = 16 << 30  # objects/*.npz, measurements/*.npz
MAX_MODEL = 8 << 30  # weights.pt (ResNet-50 3D: ~200 MB), forest.npz
MAX_IMAGE = 1 << 50  # images/ masks/: bounded by the memory checks of the readers

_KINDS = {"file": "a regular file", "dir": "a folder", "any": "a regular file or folder"}


def _what(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def refuse_link(path: Path, error: type[Exception] = ProjectError) -> Exception:
    try:
        target = f" to {os.readlink(path)}"
    except OSError:
        target = ""
    return error(
        f"is a symbolic link{target}; a project never holds links, which could reach outside "
        "the project: refused",
        path,
    )


def _mode_ok(mode: int, kind: str) -> bool:
    if kind == "file":
        return stat.S_ISREG(mode)
    if kind == "dir":
        return stat.S_ISDIR(mode)
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _refuse_mode(path: Path, mode: int, kind: str, error: type[Exception]) -> Exception:
    if stat.S_ISLNK(mode):
        return refuse_link(path, error)
    return error(f"is {_what(mode)}, not {_KINDS[kind]}: refused", path)


def relative_parts(
    root: Path, path: str | Path, error: type[Exception] = ProjectError, where: Path | None = None
) -> tuple[str, ...]:
    """The parts of ``path`` (relative to ``root``, or absolute under it) when it stays inside;
    else ``error`` naming ``where`` (default: the bundle)."""
    p = Path(path)
    text = str(path)
    root_parts = Path(root).parts
    if p.parts[: len(root_parts)] == root_parts:  # built from the root (absolute or relative)
        p = Path(*p.parts[len(root_parts) :]) if len(p.parts) > len(root_parts) else Path()
    if p.is_absolute():
        p = Path("..")  # outside the root
    parts = p.parts
    if not parts or any(part in ("..", "") for part in parts):
        raise error(f"refers to a file outside the project ({text}); refused", where or root)
    return parts


def check(
    root: str | Path,
    path: str | Path,
    kind: str = "file",
    *,
    missing_ok: bool = True,
    error: type[Exception] = ProjectError,
) -> Path:
    """``root / path`` when every folder on the way is a real folder and the entry (if it exists,
    or always when not ``missing_ok``) is ``kind`` ("file", "dir" or "any"); else ``error``
    naming the entry. Nothing is followed: links are refused, wherever they point."""
    root = Path(root)
    parts = relative_parts(root, path, error)
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if missing_ok:
                return root.joinpath(*parts)
            raise error("is missing; the project is damaged", current) from None
        except OSError as exc:
            raise error(f"cannot be read ({exc.strerror or exc})", current) from None
        want = kind if i == len(parts) - 1 else "dir"
        if not _mode_ok(st.st_mode, want):
            raise _refuse_mode(current, st.st_mode, want, error)
    return current


def is_file(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` exists in the bundle as a regular file (a link is not one)."""
    try:
        check(root, path, "file", missing_ok=False)
    except ProjectError:
        return False
    return True


def open_read(
    root: str | Path, path: str | Path, limit: int, error: type[Exception] = ProjectError
) -> IO[bytes]:
    """The bundle file ``path`` opened for reading, checked (see :func:`check`) and opened
    without following a link or blocking on a FIFO; refused when larger than ``limit``."""
    full = check(root, path, "file", missing_ok=False, error=error)
    return fileio.open_regular(full, limit, follow=False, error=error)


def read_bytes(
    root: str | Path, path: str | Path, limit: int, error: type[Exception] = ProjectError
) -> bytes:
    with open_read(root, path, limit, error) as f:
        return f.read()


def read_json(
    root: str | Path,
    path: str | Path,
    error: type[Exception] = ProjectError,
    limit: int = MAX_JSON,
) -> Any:
    """A JSON file of the bundle (see :func:`open_read`); malformed JSON raises ``error``."""
    full = check(root, path, "file", missing_ok=False, error=error)
    return fileio.read_json(full, error, follow=False, limit=limit)


def writable(root: str | Path, path: str | Path, kind: str = "file") -> Path:
    """``root / path`` ready to be written: its folders created or checked to be real folders,
    and an entry already there checked to be ``kind`` (a link or FIFO there is refused)."""
    root = Path(root)
    parts = relative_parts(root, path)
    make_dirs(root, root.joinpath(*parts[:-1])) if len(parts) > 1 else None
    return check(root, root.joinpath(*parts), kind)


def make_dirs(root: str | Path, path: str | Path) -> Path:
    """Create the folder ``path`` of the bundle and those on the way; any of them that exists
    must be a real folder (never a link)."""
    root = Path(root)
    current = root
    for part in relative_parts(root, path):
        current = current / part
        try:
            os.mkdir(current)
            continue
        except FileExistsError:
            pass
        except OSError as exc:
            raise fileio.os_error(exc, current) from exc
        check(root, current, "dir", missing_ok=False)
    return current


def write_bytes(root: str | Path, path: str | Path, data: bytes) -> None:
    fileio.atomic_write_bytes(writable(root, path), data)


def write_text(root: str | Path, path: str | Path, text: str) -> None:
    fileio.atomic_write_text(writable(root, path), text)


def write_json(root: str | Path, path: str | Path, obj: Any) -> None:
    fileio.atomic_write_json(writable(root, path), obj)


def write_with(root: str | Path, path: str | Path, writer: Callable[[Path], None]) -> None:
    fileio.atomic_write_with(writable(root, path), writer)


@contextlib.contextmanager
def atomic_open(
    root: str | Path, path: str | Path, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO]:
    with fileio.atomic_open(writable(root, path), mode, encoding) as f:
        yield f


def append_line(root: str | Path, path: str | Path, line: str) -> None:
    """Append one fsynced line to a bundle file (never through a link; see fileio)."""
    fileio.append_line_durable(writable(root, path), line)


def remove(root: str | Path, path: str | Path) -> None:
    """Remove a file or folder of the bundle; a link there is removed itself, never followed."""
    root = Path(root)
    parts = relative_parts(root, path)
    if len(parts) > 1:
        check(root, root.joinpath(*parts[:-1]), "dir")
    fileio.remove_tree(root.joinpath(*parts))


def rename(root: str | Path, src: str | Path, dst: str | Path) -> None:
    """Rename inside the bundle (a rename moves a link itself, never its target)."""
    root = Path(root)
    a, b = relative_parts(root, src), relative_parts(root, dst)
    for parts in (a, b):
        if len(parts) > 1:
            check(root, root.joinpath(*parts[:-1]), "dir", missing_ok=False)
    try:
        os.replace(root.joinpath(*a), root.joinpath(*b))
    except OSError as exc:
        raise fileio.os_error(exc, root.joinpath(*b)) from exc


def check_tree(root: str | Path, path: str | Path, limit_entries: int = 10_000_000) -> Path:
    """A folder of the bundle (an OME-Zarr image) whose every entry is a regular file or a real
    folder (no link, FIFO or device anywhere inside it)."""
    top = check(root, path, "dir", missing_ok=False)
    stack, seen = [top], 0
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise ProjectError(f"cannot be read ({exc.strerror or exc})", folder) from None
        for e in entries:
            seen += 1
            if seen > limit_entries:
                raise ProjectError("holds too many files; refused", top)
            mode = e.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                stack.append(Path(e.path))
            elif not stat.S_ISREG(mode):
                raise _refuse_mode(Path(e.path), mode, "file", ProjectError)
    return top

"""Atomic writes (temp file or folder in the same folder, fsync, os.replace) and checked JSON.

One module of ~400 lines on purpose: every way the app writes or opens a file of the user's or of a
bundle (no-follow opens, atomic files and folders, deferred fsync) sits together so that the
rules are read and reviewed in one place.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from svetlana.core.errors import ProjectError, ResourceError

log = logging.getLogger(__name__)


def safe_file_name(name: str, fallback: str = "_", limit: int | None = None) -> str:
    """A file-name-safe form of an image or class name: letters, digits, ``_.-``; others ``_``.

    The one cleaner for every file Svetlana names after a user's image or class.
    """
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    return cleaned[:limit] if limit else cleaned or fallback


def _fsync_dir(directory: Path) -> None:
    # On POSIX the rename is only durable once the directory entry is flushed.
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # elsewhere the only way to read it is to set it and set it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _mkstemp(path: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A temp file beside ``path`` with the permissions a plain ``open`` would give it.

    mkstemp creates files 0600 whatever the umask: a project or export on a shared server
    would then be unreadable to colleagues (0644 under the usual umask 022).
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~current_umask())
    except OSError:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise
    return fd, Path(name)


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new folder in ``parent`` with the usual permissions (mkdtemp alone makes it 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    tmp.chmod(0o777 & ~current_umask())
    return tmp


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success it replaces ``path`` atomically.

    On any error the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(path, f".{path.name}.", ".tmp")
    except OSError as exc:
        raise _os_error(exc, path) from exc
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def os_error(exc: OSError, path: Path) -> Exception:
    """The SvetlanaError a failed write becomes (full disk, permission, other)."""
    return _os_error(exc, path)


def _os_error(exc: OSError, path: Path) -> Exception:
    if exc.errno == errno.ENOSPC:
        return ResourceError("the disk is full; nothing was changed", path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ProjectError("permission denied; nothing was changed", path)
    return ProjectError(f"cannot write ({exc.strerror or exc}); nothing was changed", path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` write a temp path (for libraries that want a file name), then replace."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(path, f".{path.stem}.", path.suffix)
    except OSError as exc:
        raise _os_error(exc, path) from exc
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """A new temp folder beside ``final`` to fill; when the block ends without error it takes
    ``final``'s place (a folder already there is swapped out, then removed). On any error the
    temp folder is removed and ``final`` is left as it was: never a half-written folder. The
    caller checks that a folder already at ``final`` may be replaced. Leftovers of a crash
    (``.<name>.partial-*``) are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.partial-"
    for leftover in final.parent.glob(prefix + "*"):
        remove_tree(leftover)
    tmp = make_temp_dir(final.parent, prefix)
    old = final.with_name(prefix + "old")
    try:
        yield tmp
        moved = False
        if os.path.lexists(final):
            final.rename(old)
            moved = True
        try:
            tmp.rename(final)
        except BaseException:
            if moved:
                old.rename(final)
            raise
        _fsync_dir(final.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _os_error(exc, final) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_tree(old)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _size_text(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def open_regular(
    path: str | Path,
    limit: int,
    *,
    follow: bool = True,
    error: type[Exception] = ProjectError,
) -> IO[bytes]:
    """``path`` opened for reading when it is a regular file of at most ``limit`` bytes, else
    ``error`` naming it: a FIFO or device (``/dev/zero``) would block or never end. Opening
    never blocks (``O_NONBLOCK``); with ``follow=False`` a link is refused (``O_NOFOLLOW``)."""
    path = Path(path)
    flags = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow:
        if not _NOFOLLOW and os.path.islink(path):  # no O_NOFOLLOW (Windows)
            raise error("is a symbolic link; refused", path)
        flags |= _NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise error("file not found", path) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP or (not follow and os.path.islink(path)):
            raise error(
                "is a symbolic link; a project never holds links, which could reach outside "
                "the project: refused",
                path,
            ) from None
        raise error(f"cannot read ({exc.strerror or exc})", path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = _SPECIAL.get(stat.S_IFMT(st.st_mode), "a special file")
            raise error(f"is {what}, not a regular file: refused", path)
        if st.st_size > limit:
            raise error(
                f"is {_size_text(st.st_size)}, larger than any such file Svetlana writes "
                f"({_size_text(limit)}): refused",
                path,
            )
        if _NONBLOCK:
            os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
        raw.name = str(path)  # libraries (tifffile) name the file by it, as for open(path)
        return io.BufferedReader(raw)
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(
    path: str | Path,
    limit: int,
    *,
    follow: bool = True,
    error: type[Exception] = ProjectError,
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, limit, follow=follow, error=error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while read
        raise error(f"is larger than {_size_text(limit)}: refused", path)
    return data


JSON_LIMIT = 256 << 20


def read_json(
    path: str | Path,
    error: type[Exception] = ProjectError,
    *,
    follow: bool = True,
    limit: int = JSON_LIMIT,
) -> Any:
    """Read JSON; a missing, unreadable, special (FIFO, device), oversized or malformed file
    raises ``error`` naming it."""
    path = Path(path)
    try:
        text = read_regular_bytes(path, limit, follow=follow, error=error).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"cannot read ({exc})", path) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
    except RecursionError:
        raise error("not valid JSON (nested too deeply)", path) from None


def remove_tree(path: str | Path) -> None:
    """Remove a file or a folder without ever following a link: a link is unlinked itself,
    a folder removed entry by entry (``shutil.rmtree`` never follows links inside it). Errors
    are ignored (as a leftover's removal may be retried later)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def append_line_durable(path: str | Path, line: str, sync: bool = True) -> None:
    """Append one line, and fsync it unless ``sync`` is False (the caller then hands the fsync
    to a :class:`DeferredSync`). Once this returns the line survives a kill -9 either way (the
    kernel holds it); the fsync makes it survive a power cut too."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    existed = os.path.lexists(path)
    try:  # never through a link, never blocking on a FIFO
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectError(
                "is a symbolic link; a project never holds links, which could reach outside "
                "the project: refused",
                path,
            ) from None
        raise _os_error(exc, path) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = _SPECIAL.get(stat.S_IFMT(st.st_mode), "a special file")
        raise ProjectError(f"is {what}, not a regular file: refused", path)
    if _NONBLOCK:
        os.set_blocking(fd, True)
    size = st.st_size
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.ENOSPC, "short write")
        if sync:
            os.fsync(fd)
    except OSError as exc:
        # A torn line would swallow the next record appended after it: roll back.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        if not existed and size == 0:
            path.unlink(missing_ok=True)
        raise _os_error(exc, path) from exc
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    try:  # never through a link, never blocking on a FIFO; a file removed meanwhile is fine
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    except OSError as exc:
        log.warning("cannot flush %s to disk: %s", path, exc)
    finally:
        os.close(fd)


class DeferredSync:
    """fsyncs files on one background thread, in order of request. A window labelling at
    keyboard speed writes each journal line at once (it survives a kill -9 from then on) and
    does not wait for a slow disk (a network share: 200 ms an fsync) to make it survive a power
    cut too. :meth:`flush` waits for every requested fsync (called when a project closes)."""

    def __init__(self) -> None:
        self._executor = None

    def request(self, path: str | Path) -> None:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(1, thread_name_prefix="svetlana-fsync")
        self._executor.submit(_fsync_path, Path(path))

    def flush(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

"""One writer at a time: the bundle's ``.lock`` (an OS lock the kernel releases when its holder
dies, plus who holds it; an exclusive-create file where there is no fcntl)."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
from pathlib import Path

try:  # POSIX: an OS lock the kernel releases when the holder dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from svetlana.core.errors import ProjectError, ProjectLockedError, ResourceError
from svetlana.core.io.fileio import read_regular_bytes

log = logging.getLogger(__name__)

LOCK = ".lock"
MAX_LOCK = 64 << 10  # the lock holds one small JSON object; more is damage


def now_iso() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


class BundleLock:
    """The lock of one bundle folder: ``acquire()`` or ProjectLockedError naming the holder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.held = False
        self._fd: int | None = None

    def acquire(self) -> None:
        """One writer at a time: an OS lock (released by the OS if the holder dies) plus pid info."""
        if fcntl is None:
            self._acquire_pid_lock()
            return
        lock = self.folder / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": now_iso()}
        for _ in range(5):
            fd = _open_lock(lock, self.folder)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                info = _fd_info(fd)
                os.close(fd)
                raise ProjectLockedError(
                    f"is open in another Svetlana (process {info.get('pid', '?')} on {info.get('host', '?')}, "
                    f"since {info.get('time', '?')}); close it there first",
                    self.folder,
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.lstat(lock).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the holder removed it between our open and our lock: retry
                os.close(fd)
                continue
            info = _fd_info(fd)
            if info.get("host") not in (None, me["host"]) and _pid_of(info) > 0:
                # An OS lock does not reach across machines on every network share: respect it.
                os.close(fd)
                raise ProjectLockedError(
                    f"is open in Svetlana on another computer ({info.get('host')}, since "
                    f"{info.get('time', '?')}); close it there, or delete {LOCK} if that computer crashed",
                    self.folder,
                )
            if info:
                log.warning("recovering the lock left by process %s", info.get("pid", "?"))
            try:
                os.ftruncate(fd, 0)
                data = json.dumps(me).encode("utf-8")
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno == errno.ENOSPC:
                    raise ResourceError(
                        "the disk is full: the project cannot be opened for changes "
                        "(free some space, or open it read-only)",
                        lock,
                    ) from None
                raise ProjectError(
                    f"cannot lock the project ({exc.strerror or exc})", self.folder
                ) from None
            self._fd = fd
            self.held = True
            return
        raise ProjectLockedError("could not take the project lock; try again", self.folder)

    def _acquire_pid_lock(self) -> None:
        """Fallback without fcntl (Windows): an exclusive-create lock file naming its process."""
        lock = self.folder / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": now_iso()}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                info = _lock_info(lock)
                pid = _pid_of(info)
                same_host = info.get("host") == me["host"]
                # A lock we cannot read names no owner: it is damage, not another Svetlana.
                if same_host and not _pid_alive(pid) or pid <= 0 or "host" not in info:
                    log.warning("removing stale lock of process %s", pid)
                    lock.unlink(missing_ok=True)
                    continue
                raise ProjectLockedError(
                    f"is open in another Svetlana (process {pid} on {info.get('host', '?')}, "
                    f"since {info.get('time', '?')}); close it there first",
                    self.folder,
                ) from None
            except OSError as exc:
                raise ProjectError(
                    f"cannot lock the project ({exc.strerror})", self.folder
                ) from exc
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise ProjectLockedError("could not take the project lock", self.folder)

    def release(self) -> None:
        # Unlink before unlocking: a process that opened the old file sees the inode change and retries.
        (self.folder / LOCK).unlink(missing_ok=True)
        fd = self._fd
        if fd is not None:
            os.close(fd)
            self._fd = None
        self.held = False


def _open_lock(lock: Path, folder: Path) -> int:
    """The lock file opened for writing, never through a link (``.lock`` pointing at a user's
    file would have that file overwritten) and never blocking on a FIFO."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(lock):
            raise ProjectError(
                "is a symbolic link; a project never holds links, which could reach outside "
                f"the project: refused (delete {LOCK}; Svetlana makes a new one)",
                lock,
            ) from None
        if exc.errno == errno.ENOSPC:
            raise ResourceError(
                "the disk is full: the project cannot be opened for changes (free some space, "
                "or open it read-only)",
                lock,
            ) from None
        raise ProjectError(f"cannot lock the project ({exc.strerror})", folder) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ProjectError(
            f"is not a regular file: refused (delete {LOCK}; Svetlana makes a new one)", lock
        )
    os.set_blocking(fd, True)
    return fd


def _parse_info(data: bytes) -> dict:
    try:
        info = json.loads(data.decode("utf-8", errors="replace") or "{}")
    except (ValueError, RecursionError):
        return {}
    return info if isinstance(info, dict) else {}


def _fd_info(fd: int) -> dict:
    """Who holds the lock, read from the open lock file (at most MAX_LOCK bytes)."""
    try:
        return _parse_info(os.pread(fd, MAX_LOCK, 0))
    except OSError:
        return {}


def _lock_info(lock: Path) -> dict:
    try:
        return _parse_info(read_regular_bytes(lock, MAX_LOCK, follow=False))
    except (OSError, ProjectError):
        return {}


def _pid_of(info: dict) -> int:
    try:
        return int(info.get("pid", -1))
    except (TypeError, ValueError, OverflowError):
        return -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True

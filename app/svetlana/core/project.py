"""The project folder bundle: manifest, copied images and masks, labels, models, predictions, lock."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import secrets
import shutil
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # POSIX: an OS lock the kernel releases when the holder dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import numpy as np

from svetlana import __version__
from svetlana.core.annotations import Annotations, ClassInfo, validate_class_name
from svetlana.core.errors import (
    InputError,
    ProjectError,
    ProjectLockedError,
    ProjectVersionError,
    SvetlanaError,
)
from svetlana.core.fileio import atomic_write_json, atomic_write_with, read_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "project.json"
LABELS_CSV = "annotations.csv"
JOURNAL = "annotations.journal"
LOCK = ".lock"
SUFFIX = ".svetlana"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class ImageEntry:
    """One image of the project as recorded in the manifest."""

    name: str
    image_file: str
    mask_file: str
    axes: str
    spacing: tuple[float, ...] | None
    shape: tuple[int, ...]
    channels: int
    n_objects: int
    dtype: str
    source_image: str = ""
    source_mask: str = ""
    was_binary: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "image_file": self.image_file,
            "mask_file": self.mask_file,
            "axes": self.axes,
            "spacing": list(self.spacing) if self.spacing else None,
            "shape": list(self.shape),
            "channels": self.channels,
            "n_objects": self.n_objects,
            "dtype": self.dtype,
            "source_image": self.source_image,
            "source_mask": self.source_mask,
            "was_binary": self.was_binary,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ImageEntry:
        sp = d.get("spacing")
        return cls(
            name=str(d["name"]),
            image_file=str(d["image_file"]),
            mask_file=str(d["mask_file"]),
            axes=str(d.get("axes", "")),
            spacing=tuple(float(v) for v in sp) if sp else None,
            shape=tuple(int(v) for v in d["shape"]),
            channels=int(d["channels"]),
            n_objects=int(d["n_objects"]),
            dtype=str(d.get("dtype", "")),
            source_image=str(d.get("source_image", "")),
            source_mask=str(d.get("source_mask", "")),
            was_binary=bool(d.get("was_binary", False)),
        )


@dataclass(eq=False)
class LoadedImage:
    """An image of the project in memory: channel-first pixels, labels, and its object table."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, ...] | None
    _table: Any = None
    _normalised: np.ndarray | None = None
    _norm: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def table(self):
        if self._table is None:
            from svetlana.core.objects import compute_objects

            self._table = compute_objects(self.labels, self.image)
        return self._table

    @property
    def normalisation(self):
        if self._norm is None:
            from svetlana.core.patches import fit_normalisation

            self._norm = fit_normalisation(self.image)
        return self._norm

    @property
    def normalised(self) -> np.ndarray:
        if self._normalised is None:
            from svetlana.core.patches import apply_normalisation

            self._normalised = apply_normalisation(self.image, self.normalisation)
        return self._normalised


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """An image and mask read, checked and measured, not yet in any project (thread-safe)."""

    name: str
    image_path: Path
    mask_path: Path
    image: Any  # images.ImageData
    mask: Any  # images.MaskData
    table: Any  # objects.ObjectTable


def _default_name(image_path: str | Path) -> str:
    from svetlana.core.images import file_stem

    return file_stem(image_path)


def prepare_image(
    image_path: str | Path,
    mask_path: str | Path,
    name: str | None = None,
    axes: str | None = None,
    spacing: tuple[float, ...] | None = None,
    force_mask: bool = False,
) -> PreparedImage:
    """Read and check an image/mask pair and measure its objects: the slow part of adding an
    image, touching no project, so the GUI can run it off the main thread.

    A mask that looks like an intensity image (swapped arguments) is refused unless
    ``force_mask``; a JPEG mask always."""
    from svetlana.core.images import check_label_mask, read_pair
    from svetlana.core.objects import compute_objects

    image_path, mask_path = Path(image_path), Path(mask_path)
    name = _check_name(name if name is not None else _default_name(image_path))
    img, mask = read_pair(image_path, mask_path, axes=axes, spacing=spacing)
    if not force_mask:
        check_label_mask(mask, image_path)
    table = compute_objects(np.ascontiguousarray(mask.labels), np.ascontiguousarray(img.data))
    return PreparedImage(name, image_path, mask_path, img, mask, table)


def prepare_images(pairs, progress=None, cancel=None) -> list[PreparedImage]:
    """``prepare_image`` for each (image, mask, name[, axes[, force_mask]]) pair, with progress
    and cancel."""
    from svetlana.core.jobs import Progress

    prepared = []
    for k, (image, mask, name, *rest) in enumerate(pairs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(Progress("read", k, len(pairs), f"Reading {Path(image).name}…"))
        axes = rest[0] if rest else None
        force = bool(rest[1]) if len(rest) > 1 else False
        prepared.append(prepare_image(image, mask, name or None, axes, force_mask=force))
    return prepared


def _check_name(name: str) -> str:
    name = name.strip()
    if (
        not name
        or name.startswith(".")
        or any(c in name for c in '/\\:*?"<>|\n\r\t,')
        or len(name) > 100
    ):
        raise InputError(
            f"image name {name!r} is not usable: use up to 100 letters, digits, spaces, '-', '_' or '.'"
        )
    return name


def _lock_info(lock: Path) -> dict:
    try:
        info = json.loads(lock.read_text(encoding="utf-8", errors="replace") or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


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


class Project:
    """An open ``NAME.svetlana`` folder. Use ``Project.create`` / ``Project.open``; close it when done."""

    def __init__(self, path: Path, manifest: dict, readonly: bool):
        self.path = path
        self.readonly = readonly
        self._manifest = manifest
        self._images = [ImageEntry.from_dict(d) for d in manifest.get("images", [])]
        classes = [ClassInfo.from_dict(c) for c in manifest.get("classes", [])]
        self.annotations = Annotations(classes, journal=None if readonly else path / JOURNAL)
        self._cache: OrderedDict[str, LoadedImage] = OrderedDict()
        self._locked = False

    # ---- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, classes: list[str] | tuple[str, ...] = ()) -> Project:
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ProjectError("already exists; choose a new project name", path)
        classes = [validate_class_name(c) for c in classes if c.strip()]  # before any write
        if len(set(classes)) != len(classes):
            raise InputError("class names must be different from each other")
        if path.suffix != SUFFIX:
            log.info("project folder %s does not end in %s", path, SUFFIX)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create the project folder ({exc.strerror})", path) from exc
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "app": "svetlana",
            "app_version": __version__,
            "created": now_iso(),
            "classes": [],
            "images": [],
            "models": [],
            "settings": {"sampling_seed": secrets.randbelow(2**31)},
        }
        project = cls(path, manifest, readonly=False)
        project._acquire_lock()
        for name in classes:
            project.annotations.add_class(name)
        project.save()
        return project

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> Project:
        path = Path(path)
        if path.is_file() and path.name == MANIFEST:
            path = path.parent
        if not (path / MANIFEST).is_file():
            raise ProjectError("not a Svetlana project (no project.json inside)", path)
        manifest = read_json(path / MANIFEST)
        manifest = _check_manifest(manifest, path)
        project = cls(path, manifest, readonly=readonly)
        if not readonly:
            project._acquire_lock()
        try:
            project.annotations.load_csv(path / LABELS_CSV)
            replayed = project.annotations.replay_journal(path / JOURNAL)
            if replayed and not readonly:
                log.info("recovered %d journalled label changes", replayed)
                project.save()
            project.annotations.dirty = False
        except BaseException:
            project.close()
            raise
        return project

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._locked:
            try:
                if not self.readonly and self.annotations.dirty:
                    self.save()
            finally:
                self._release_lock()

    def _acquire_lock(self) -> None:
        """One writer at a time: an OS lock (released by the OS if the holder dies) plus pid info."""
        if fcntl is None:
            self._acquire_pid_lock()
            return
        lock = self.path / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname(), "time": now_iso()}
        for _ in range(5):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ProjectError(f"cannot lock the project ({exc.strerror})", self.path) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                info = _lock_info(lock)
                os.close(fd)
                raise ProjectLockedError(
                    f"is open in another Svetlana (process {info.get('pid', '?')} on {info.get('host', '?')}, "
                    f"since {info.get('time', '?')}); close it there first",
                    self.path,
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the holder removed it between our open and our lock: retry
                os.close(fd)
                continue
            info = _lock_info(lock)
            if info.get("host") not in (None, me["host"]) and _pid_of(info) > 0:
                # An OS lock does not reach across machines on every network share: respect it.
                os.close(fd)
                raise ProjectLockedError(
                    f"is open in Svetlana on another computer ({info.get('host')}, since "
                    f"{info.get('time', '?')}); close it there, or delete {LOCK} if that computer crashed",
                    self.path,
                )
            if info:
                log.warning("recovering the lock left by process %s", info.get("pid", "?"))
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(me).encode("utf-8"))
            os.fsync(fd)
            self._lock_fd = fd
            self._locked = True
            return
        raise ProjectLockedError("could not take the project lock; try again", self.path)

    def _acquire_pid_lock(self) -> None:
        """Fallback without fcntl (Windows): an exclusive-create lock file naming its process."""
        lock = self.path / LOCK
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
                    self.path,
                ) from None
            except OSError as exc:
                raise ProjectError(f"cannot lock the project ({exc.strerror})", self.path) from exc
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._locked = True
            return
        raise ProjectLockedError("could not take the project lock", self.path)

    def _release_lock(self) -> None:
        # Unlink before unlocking: a process that opened the old file sees the inode change and retries.
        (self.path / LOCK).unlink(missing_ok=True)
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)
            self._lock_fd = None
        self._locked = False

    def _require_writable(self) -> None:
        if self.readonly:
            raise ProjectError("the project is open read-only", self.path)

    # ---- manifest --------------------------------------------------------------------
    def save(self) -> None:
        """Compact: rewrite the labels CSV, then the manifest (last), then empty the journal."""
        self._require_writable()
        self.annotations.write_csv(self.path / LABELS_CSV)
        self._manifest["classes"] = [c.to_dict() for c in self.annotations.classes]
        self._manifest["images"] = [e.to_dict() for e in self._images]
        self._manifest["app_version"] = __version__
        atomic_write_json(self.path / MANIFEST, self._manifest)
        journal = self.path / JOURNAL
        if journal.exists():
            journal.unlink()
        self.annotations.dirty = False

    def _write_manifest(self) -> None:
        self._manifest["images"] = [e.to_dict() for e in self._images]
        self._manifest["classes"] = [c.to_dict() for c in self.annotations.classes]
        atomic_write_json(self.path / MANIFEST, self._manifest)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def settings(self) -> dict:
        return self._manifest.setdefault("settings", {})

    @property
    def sampling_seed(self) -> int:
        return int(self.settings.get("sampling_seed", 0))

    # ---- images ------------------------------------------------------------------------
    @property
    def images(self) -> tuple[ImageEntry, ...]:
        return tuple(self._images)

    @property
    def image_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self._images)

    def image(self, name: str) -> ImageEntry:
        for e in self._images:
            if e.name == name:
                return e
        raise InputError(
            f"no image named {name!r} in the project (images: {', '.join(self.image_names) or 'none'})"
        )

    def add_image(
        self,
        image_path: str | Path,
        mask_path: str | Path,
        name: str | None = None,
        axes: str | None = None,
        spacing: tuple[float, ...] | None = None,
        force_mask: bool = False,
    ) -> ImageEntry:
        """Copy an image and its mask into the bundle (converted, channel-first); user files untouched."""
        self._require_writable()
        if name is not None or image_path is not None:
            self._check_new_name(
                name if name is not None else _default_name(image_path), image_path
            )
        from svetlana.core.lazy import is_large_tiled_tiff, is_zarr

        if is_zarr(image_path) or is_zarr(mask_path) or is_large_tiled_tiff(image_path):
            if not force_mask:
                from svetlana.core.images import check_label_array
                from svetlana.core.lazy import open_pair

                mask = open_pair(image_path, mask_path, axes)[1]
                check_label_array(mask.data, mask_path, image_path)
            return self.add_zarr(image_path, mask_path, name, spacing, axes=axes)
        return self.add_prepared(
            prepare_image(image_path, mask_path, name, axes, spacing, force_mask=force_mask)
        )

    def add_zarr(
        self,
        image_path: str | Path,
        mask_path: str | Path,
        name: str | None = None,
        spacing: tuple[float, ...] | None = None,
        progress=None,
        cancel=None,
        axes: str | None = None,
    ) -> ImageEntry:
        """Add an image and label mask too large for memory (OME-Zarr, or a large tiled TIFF,
        see ``lazy.is_large_tiled_tiff``): measured and copied into the bundle one chunk at a
        time as OME-Zarr (``images/<name>.ome.zarr``); loaded lazily later."""
        from svetlana.core.lazy import compute_objects_chunked, copy_ome_zarr, open_pair

        self._require_writable()
        image_path, mask_path = Path(image_path), Path(mask_path)
        name = self._check_new_name(
            name if name is not None else _default_name(image_path), image_path
        )
        img, mask = open_pair(image_path, mask_path, axes)
        sp = tuple(float(v) for v in spacing) if spacing else img.spacing or mask.spacing
        table = compute_objects_chunked(mask.data, img.data, progress=progress, cancel=cancel)
        safe = self._unique_file_stem(name)
        image_file, mask_file = f"images/{safe}.ome.zarr", f"masks/{safe}.ome.zarr"
        entry = ImageEntry(
            name=name,
            image_file=image_file,
            mask_file=mask_file,
            axes=img.axes,
            spacing=sp,
            shape=mask.shape,
            channels=img.shape[0],
            n_objects=len(table),
            dtype=str(img.data.dtype),
            source_image=str(image_path.resolve()),
            source_mask=str(mask_path.resolve()),
        )
        try:
            copy_ome_zarr(img, self.path / image_file, sp, cancel=cancel)
            copy_ome_zarr(mask, self.path / mask_file, sp, cancel=cancel)
            self._images.append(entry)
            self._write_manifest()
        except BaseException:
            if entry in self._images:
                self._images.remove(entry)
            shutil.rmtree(self.path / image_file, ignore_errors=True)
            shutil.rmtree(self.path / mask_file, ignore_errors=True)
            raise
        self._save_table_cache(entry, table)
        return entry

    def _check_new_name(self, name: str, where) -> str:
        name = _check_name(name)
        if name in self.image_names:
            raise InputError(f"the project already has an image named {name!r}; use --name", where)
        return name

    def add_prepared(self, prepared: PreparedImage) -> ImageEntry:
        """Write an image read by ``prepare_image`` (possibly in a worker thread) into the bundle."""
        import tifffile

        self._require_writable()
        name = self._check_new_name(prepared.name, prepared.image_path)
        image_path, mask_path = prepared.image_path, prepared.mask_path
        img, mask, table = prepared.image, prepared.mask, prepared.table
        data = np.ascontiguousarray(img.data)
        labels = np.ascontiguousarray(mask.labels)
        safe = self._unique_file_stem(name)
        image_file, mask_file = f"images/{safe}.tif", f"masks/{safe}.tif"
        spatial = "ZYX" if labels.ndim == 3 else "YX"
        entry = ImageEntry(
            name=name,
            image_file=image_file,
            mask_file=mask_file,
            axes=img.axes,
            spacing=tuple(float(s) for s in img.spacing) if img.spacing else None,
            shape=tuple(int(s) for s in labels.shape),
            channels=int(data.shape[0]),
            n_objects=len(table),
            dtype=str(data.dtype),
            source_image=str(image_path.resolve()),
            source_mask=str(mask_path.resolve()),
            was_binary=bool(mask.was_binary),
        )
        if self._images and self._images[0].channels != entry.channels:
            log.warning(
                "image %s has %d channels, others have %d",
                name,
                entry.channels,
                self._images[0].channels,
            )
        # The stem is new, so on failure removing these files restores the bundle exactly.
        try:
            atomic_write_with(
                self.path / image_file,
                lambda p: tifffile.imwrite(p, data, metadata={"axes": "C" + spatial}),
            )
            atomic_write_with(
                self.path / mask_file,
                lambda p: tifffile.imwrite(p, labels, metadata={"axes": spatial}),
            )
            self._images.append(entry)
            self._write_manifest()
        except BaseException:
            if entry in self._images:
                self._images.remove(entry)
            (self.path / image_file).unlink(missing_ok=True)
            (self.path / mask_file).unlink(missing_ok=True)
            raise
        loaded = LoadedImage(name, data, labels, entry.spacing, _table=table)
        self._save_table_cache(entry, table)
        self._remember(loaded)
        return entry

    def _unique_file_stem(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:80] or "image"
        used = {Path(e.image_file).stem for e in self._images}
        stem, k = base, 1
        while stem in used or (self.path / "images" / f"{stem}.tif").exists():
            k += 1
            stem = f"{base}-{k}"
        return stem

    def load(self, name: str) -> LoadedImage:
        """The image's pixels, labels and object table (cached for the last few images)."""
        import tifffile

        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        entry = self.image(name)
        ipath, mpath = self._inside(entry.image_file), self._inside(entry.mask_file)
        if entry.image_file.endswith(".zarr"):
            return self._load_lazy(entry, ipath, mpath)
        try:
            data = tifffile.imread(ipath)
            labels = tifffile.imread(mpath)
        except FileNotFoundError as exc:
            raise ProjectError("a file of the project is missing", exc.filename) from exc
        except Exception as exc:
            raise ProjectError(f"a file of the project cannot be read ({exc})", ipath) from exc
        if data.ndim == labels.ndim:
            data = data[np.newaxis]
        if data.shape[1:] != labels.shape:
            raise ProjectError("stored image and mask do not match; the project is damaged", ipath)
        loaded = LoadedImage(name, data, labels, entry.spacing)
        from svetlana.core.objects import load_table

        cache = self._table_cache(entry)
        if cache.exists():
            loaded._table = load_table(cache, labels.ndim)
        if loaded._table is None and not self.readonly:
            self._save_table_cache(entry, loaded.table)
        self._remember(loaded)
        return loaded

    def _load_lazy(self, entry: ImageEntry, ipath: Path, mpath: Path) -> LoadedImage:
        """An OME-Zarr image of the project, not read: pixels come chunk by chunk when used."""
        from svetlana.core.lazy import compute_objects_chunked, fit_normalisation_lazy, open_pair
        from svetlana.core.objects import load_table

        try:
            img, mask = open_pair(ipath, mpath)
        except InputError as exc:
            raise ProjectError(
                f"a file of the project cannot be read ({exc.message})", ipath
            ) from None
        cache = self._table_cache(entry)
        table = load_table(cache, mask.data.ndim) if cache.exists() else None
        if table is None:
            table = compute_objects_chunked(mask.data, img.data)
            if not self.readonly:
                self._save_table_cache(entry, table)
        loaded = LoadedImage(
            entry.name,
            img.data,
            mask.data,
            entry.spacing,
            _table=table,
            _norm=fit_normalisation_lazy(img.data),
            extra={"lazy": True},
        )
        self._remember(loaded)
        return loaded

    def _table_cache(self, entry: ImageEntry) -> Path:
        """Derived data (not in the manifest): the object table measured when the image was added."""
        return self.path / "objects" / f"{Path(entry.mask_file).stem}.npz"

    def _save_table_cache(self, entry: ImageEntry, table) -> None:
        from svetlana.core.objects import save_table

        try:
            save_table(self._table_cache(entry), table)
        except SvetlanaError as exc:  # a cache is an optimisation: never fail the user's action
            log.warning("cannot cache the object table of %s: %s", entry.name, exc)

    def _remember(self, loaded: LoadedImage) -> None:
        self._cache[loaded.name] = loaded
        self._cache.move_to_end(loaded.name)
        while len(self._cache) > 3:
            self._cache.popitem(last=False)

    def _inside(self, rel: str) -> Path:
        """Resolve a manifest path, refusing anything outside the bundle."""
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts:
            raise ProjectError(
                f"refers to a file outside the project ({rel}); refused", self.path / MANIFEST
            )
        full = (self.path / p).resolve()
        if not full.is_relative_to(self.path.resolve()):
            raise ProjectError(
                f"refers to a file outside the project ({rel}); refused", self.path / MANIFEST
            )
        return full

    # ---- models ------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    def model_ids(self) -> list[str]:
        """Registered models, oldest first (a folder not in the manifest was never finished)."""
        return [
            m["id"]
            for m in self._manifest.get("models", [])
            if (self.models_dir / m["id"] / "card.json").is_file()
        ]

    def model_card(self, model_id: str) -> dict:
        return read_json(self.model_dir(model_id) / "card.json")

    def model_dir(self, model_id: str) -> Path:
        if not _SAFE_ID.match(model_id):
            raise InputError(
                f"model name {model_id!r} may use only letters, digits, '-', '_' and '.'"
            )
        return self.models_dir / model_id

    def latest_model(self) -> str | None:
        ids = self.model_ids()
        return ids[-1] if ids else None

    def resolve_model(self, model_id: str | None) -> str:
        ids = self.model_ids()
        if model_id is None:
            if not ids:
                raise InputError(
                    "the project has no trained model yet; run `svetlana train` first", self.path
                )
            return ids[-1]
        if model_id not in ids:
            raise InputError(
                f"no model named {model_id!r} (models: {', '.join(ids) or 'none'})", self.path
            )
        return model_id

    def new_model_id(self, name: str | None = None) -> str:
        existing = (
            {p.name for p in self.models_dir.iterdir()} if self.models_dir.exists() else set()
        )
        existing |= set(self.model_ids())
        if name is not None:
            self.model_dir(name)
            if name in existing:
                raise InputError(
                    f"a model named {name!r} already exists; choose another --name", self.path
                )
            return name
        k = 1
        while f"model-{k}" in existing:
            k += 1
        return f"model-{k}"

    def register_model(self, model_id: str, summary: dict | None = None) -> None:
        """Record a model whose folder is complete (card.json written); manifest last."""
        self._require_writable()
        before = self._manifest.setdefault("models", [])
        models = [m for m in before if m["id"] != model_id]
        models.append({"id": model_id, "created": now_iso(), **(summary or {})})
        self._manifest["models"] = models
        try:
            self._write_manifest()
        except BaseException:
            self._manifest["models"] = before
            raise

    def remove_model(self, model_id: str) -> None:
        self._require_writable()
        self._manifest["models"] = [
            m for m in self._manifest.get("models", []) if m["id"] != model_id
        ]
        self._write_manifest()
        shutil.rmtree(self.model_dir(model_id), ignore_errors=True)

    @property
    def predictions_dir(self) -> Path:
        return self.path / "predictions"


def _check_manifest(m: Any, path: Path) -> dict:
    where = path / MANIFEST
    if not isinstance(m, dict):
        raise ProjectError("is not a Svetlana manifest", where)
    if not isinstance(m.get("settings", {}), dict):
        raise ProjectError("'settings' must be an object; the project is damaged", where)
    version = m.get("schema_version")
    if not isinstance(version, int):
        raise ProjectError("has no schema_version; the project is damaged", where)
    if version > SCHEMA_VERSION:
        raise ProjectVersionError(
            f"was written by a newer Svetlana (project format {version}, this version reads up to "
            f"{SCHEMA_VERSION}); update Svetlana to open it",
            where,
        )
    for key in ("images", "classes", "models"):
        if not isinstance(m.setdefault(key, []), list):
            raise ProjectError(f"'{key}' must be a list; the project is damaged", where)
    root = path.resolve()
    for d in m["images"]:
        try:
            if not isinstance(d, dict):
                raise TypeError(f"expected an object, found {type(d).__name__}")
            entry = ImageEntry.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProjectError(
                f"an image entry is malformed ({exc}); the project is damaged", where
            ) from exc
        for rel in (entry.image_file, entry.mask_file):
            p = Path(rel)
            if p.is_absolute() or ".." in p.parts or not (root / p).resolve().is_relative_to(root):
                raise ProjectError(f"refers to a file outside the project ({rel}); refused", where)
    for mdl in m["models"]:
        if not isinstance(mdl, dict) or not _SAFE_ID.match(str(mdl.get("id", ""))):
            raise ProjectError(f"has a malformed model entry ({mdl!r}); refused", where)
    for c in m["classes"]:
        if not isinstance(c, dict) or "name" not in c:
            raise ProjectError("has a malformed class entry; the project is damaged", where)
    return m

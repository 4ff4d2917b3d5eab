"""The project folder bundle: `Project` opens or creates it and composes its parts: the manifest
(here), the lock (`lock.py`), the image store (image files, caches; entries in `images.py`), the
labels (`core/annotations`), the model registry (`registry.py`), prediction folders.

One module of ~650 lines: the Project class keeps the manifest and the image store together
because every image write updates both, atomically, manifest last.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from svetlana import __version__
from svetlana.core.annotations.store import Annotations, ClassInfo, validate_class_name
from svetlana.core.errors import (
    InputError,
    ProjectError,
    ProjectVersionError,
    SvetlanaError,
)
from svetlana.core.io import bundlefs
from svetlana.core.io.fileio import safe_file_name
from svetlana.core.project.images import (
    ImageEntry,
    LargeImage,
    LoadedImage,
    PreparedImage,
    check_image_name,
    default_image_name,
    prepare_image,
)
from svetlana.core.project.lock import BundleLock, now_iso
from svetlana.core.project.registry import SAFE_MODEL_ID, ModelRegistry

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "project.json"
LABELS_CSV = "annotations.csv"
JOURNAL = "annotations.journal"
SUFFIX = ".svetlana"


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
        self._lock = BundleLock(path)
        self.models = ModelRegistry(
            path, lambda: list(self._manifest.get("models", [])), self._save_model_entries
        )

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
        project._lock.acquire()
        for name in classes:
            project.annotations.add_class(name)
        project.save()
        return project

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> Project:
        path = Path(path)
        if path.is_file() and path.name == MANIFEST:
            path = path.parent
        if not os.path.lexists(path / MANIFEST):
            raise ProjectError("not a Svetlana project (no project.json inside)", path)
        manifest = bundlefs.read_json(path, MANIFEST)
        manifest = _check_manifest(manifest, path)
        project = cls(path, manifest, readonly=readonly)
        if not readonly:
            project._lock.acquire()
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
        if self._lock.held:
            try:
                self.annotations.flush()  # deferred fsyncs done before anything else
                if not self.readonly and self.annotations.dirty:
                    self.save()
            finally:
                self._lock.release()

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
        bundlefs.write_json(self.path, MANIFEST, self._manifest)
        bundlefs.remove(self.path, JOURNAL)
        self.annotations.dirty = False

    def _write_manifest(self) -> None:
        self._manifest["images"] = [e.to_dict() for e in self._images]
        self._manifest["classes"] = [c.to_dict() for c in self.annotations.classes]
        bundlefs.write_json(self.path, MANIFEST, self._manifest)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def settings(self) -> dict:
        return self._manifest.setdefault("settings", {})

    @property
    def sampling_seed(self) -> int:
        return int(self.settings.get("sampling_seed", 0))  # checked when opened

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
                name if name is not None else default_image_name(image_path), image_path
            )
        from svetlana.core.objects.lazy import is_large_tiled_tiff, is_zarr

        if is_zarr(image_path) or is_zarr(mask_path) or is_large_tiled_tiff(image_path):
            if not force_mask:
                from svetlana.core.io.mask_checks import check_label_array
                from svetlana.core.objects.lazy import open_pair

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
        from svetlana.core.objects.lazy import copy_pair_with_table, open_pair

        self._require_writable()
        image_path, mask_path = Path(image_path), Path(mask_path)
        name = self._check_new_name(
            name if name is not None else default_image_name(image_path), image_path
        )
        img, mask = open_pair(image_path, mask_path, axes)
        self._check_same_dims(name, len(mask.shape), image_path)
        sp = tuple(float(v) for v in spacing) if spacing else img.spacing or mask.spacing
        safe = self._unique_file_stem(name)
        image_file, mask_file = f"images/{safe}.ome.zarr", f"masks/{safe}.ome.zarr"
        for rel in (image_file, mask_file):
            if os.path.lexists(self.path / rel):
                raise ProjectError("already exists; the project is damaged", self.path / rel)
        entry = None
        try:
            # One pass: each chunk read once, its objects counted and copied into the bundle.
            table = copy_pair_with_table(
                img, mask, bundlefs.writable(self.path, image_file, "dir"),
                bundlefs.writable(self.path, mask_file, "dir"), sp, progress=progress,
                cancel=cancel,
            )  # fmt: skip
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
            self._forget_labels(name)
            self._images.append(entry)
            self._write_manifest()
        except BaseException:
            if entry is not None and entry in self._images:
                self._images.remove(entry)
            bundlefs.remove(self.path, image_file)
            bundlefs.remove(self.path, mask_file)
            raise
        self._save_table_cache(entry, table)
        return entry

    def _check_new_name(self, name: str, where) -> str:
        name = check_image_name(name)
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
        self._check_same_dims(name, entry.ndim, image_path)
        self._forget_labels(name)
        if self._images and self._images[0].channels != entry.channels:
            log.warning(
                "image %s has %d channels, others have %d",
                name,
                entry.channels,
                self._images[0].channels,
            )
        # The stem is new, so on failure removing these files restores the bundle exactly.
        try:
            bundlefs.write_with(
                self.path,
                image_file,
                lambda p: tifffile.imwrite(p, data, metadata={"axes": "C" + spatial}),
            )
            bundlefs.write_with(
                self.path,
                mask_file,
                lambda p: tifffile.imwrite(p, labels, metadata={"axes": spatial}),
            )
            self._images.append(entry)
            self._write_manifest()
        except BaseException:
            if entry in self._images:
                self._images.remove(entry)
            bundlefs.remove(self.path, image_file)
            bundlefs.remove(self.path, mask_file)
            raise
        loaded = LoadedImage(name, data, labels, entry.spacing, _table=table)
        self._save_table_cache(entry, table)
        self._remember(loaded)
        return entry

    def _check_same_dims(self, name: str, ndim: int, where) -> None:
        """One project holds 2D images or 3D images, never both: a model learns one of them."""
        others = [e for e in self._images if e.ndim != ndim]
        if others:
            have = "3D" if others[0].ndim == 3 else "2D"
            new = "3D" if ndim == 3 else "2D"
            raise InputError(
                f"image {name!r} is {new} but the project's images are {have} "
                f"({others[0].name!r}, ...); a model learns either 2D or 3D images: "
                f"put {new} images in a separate project",
                where,
            )

    def _forget_labels(self, name: str) -> None:
        """Labels left under a name no image has (``remove_image`` interrupted after its commit)
        must not attach to a new image of that name."""
        stale = self.annotations.for_image(name)
        if stale:
            log.info("clearing %d labels left from a removed image %s", len(stale), name)
            with self.annotations.transaction():
                self.annotations.apply_labels([(name, o, None) for o in stale])

    def remove_image(self, name: str) -> ImageEntry:
        """Take an image out of the project. The manifest is written first (the commit point),
        then its labels are cleared in one journal batch, then its files and caches deleted; an
        interruption leaves only unreferenced files or labels of a name no image has, cleared
        when an image of that name is added (``_forget_labels``)."""
        self._require_writable()
        entry = self.image(name)
        images = list(self._images)
        self._images.remove(entry)
        try:
            self._write_manifest()
        except BaseException:
            self._images = images
            raise
        self._cache.pop(name, None)
        self._forget_labels(name)
        self.save()
        for rel in (entry.image_file, entry.mask_file):
            bundlefs.remove(self.path, rel)  # a link there is removed itself, never followed
        stem = Path(entry.mask_file).stem
        for cache in (self._table_cache(entry), self.path / "measurements" / f"{stem}.npz"):
            bundlefs.remove(self.path, cache)
        return entry

    def set_spacing(self, name: str, spacing: tuple[float, ...] | None) -> ImageEntry:
        """Record an image's voxel size (Z,Y,X or Y,X); measurements made with the old one are
        recomputed when next needed (their cache is keyed by the spacing)."""
        import math

        self._require_writable()
        entry = self.image(name)
        if spacing is not None:
            spacing = tuple(float(v) for v in spacing)
            if len(spacing) != entry.ndim or not all(math.isfinite(v) and v > 0 for v in spacing):
                axes = "Z,Y,X" if entry.ndim == 3 else "Y,X"
                raise InputError(
                    f"image {name!r} is {entry.ndim}D: its voxel size is {entry.ndim} positive "
                    f"numbers {axes}, not {','.join(f'{v:g}' for v in spacing)}"
                )
        from dataclasses import replace

        new = replace(entry, spacing=spacing)
        i = self._images.index(entry)
        self._images[i] = new
        try:
            self._write_manifest()
        except BaseException:
            self._images[i] = entry
            raise
        self._cache.pop(name, None)
        return new

    def _unique_file_stem(self, name: str) -> str:
        base = safe_file_name(name, limit=80) or "image"
        used = {Path(e.image_file).stem for e in self._images}
        stem, k = base, 1
        while stem in used or os.path.lexists(self.path / "images" / f"{stem}.tif"):
            k += 1
            stem = f"{base}-{k}"
        return stem

    def load(self, name: str) -> LoadedImage:
        """The image's pixels, labels and object table (cached for the last few images)."""
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        entry = self.image(name)
        if entry.image_file.endswith(".zarr"):
            ipath = bundlefs.check_tree(self.path, entry.image_file)
            mpath = bundlefs.check_tree(self.path, entry.mask_file)
            return self._load_lazy(entry, ipath, mpath)
        data = self._read_tiff(entry.image_file)
        labels = self._read_tiff(entry.mask_file)
        ipath = self.path / entry.image_file
        if data.ndim == labels.ndim:
            data = data[np.newaxis]
        if data.shape[1:] != labels.shape:
            raise ProjectError("stored image and mask do not match; the project is damaged", ipath)
        if labels.dtype.kind not in "iu" or labels.ndim not in (2, 3):
            raise ProjectError(
                "the stored mask is not a label image; the project is damaged",
                self.path / entry.mask_file,
            )
        loaded = LoadedImage(name, data, labels, entry.spacing)
        loaded._table = self._cached_table(entry, labels)
        if loaded._table is None and not self.readonly:
            self._save_table_cache(entry, loaded.table)
        self._remember(loaded)
        return loaded

    def _load_lazy(self, entry: ImageEntry, ipath: Path, mpath: Path) -> LoadedImage:
        """An OME-Zarr image of the project, not read: pixels come chunk by chunk when used."""
        from svetlana.core.objects.lazy import (
            compute_objects_chunked,
            open_pair,
        )

        try:
            img, mask = open_pair(ipath, mpath)
        except InputError as exc:
            raise ProjectError(
                f"a file of the project cannot be read ({exc.message})", ipath
            ) from None
        table = self._cached_table(entry, None, mask.data.ndim)
        if table is None:
            table = compute_objects_chunked(mask.data, img.data)
            if not self.readonly:
                self._save_table_cache(entry, table)
        loaded = LargeImage(
            entry.name,
            img.data,
            mask.data,
            entry.spacing,
            _table=table,
            extra={"paths": (ipath, mpath)},
        )
        self._remember(loaded)
        return loaded

    def _read_tiff(self, rel: str) -> np.ndarray:
        """A stored TIFF, opened only when it is a regular file inside the bundle."""
        import tifffile

        path = self.path / rel
        with bundlefs.open_read(self.path, rel, bundlefs.MAX_IMAGE) as f:
            try:
                return tifffile.imread(f)
            except Exception as exc:  # noqa: BLE001 - any damage: one message naming the file
                raise ProjectError(f"a file of the project cannot be read ({exc})", path) from exc

    def _table_cache(self, entry: ImageEntry) -> str:
        """Derived data (not in the manifest): the object table measured when the image was added."""
        return f"objects/{Path(entry.mask_file).stem}.npz"

    def _cached_table(self, entry: ImageEntry, labels: np.ndarray | None, ndim: int = 0):
        """The cached object table when it is sound and lists exactly the mask's objects (a
        table with objects removed would leave them unclassified), else None (recomputed).
        A lazy image (``labels`` None) is checked against the manifest's object count."""
        from svetlana.core.objects.table import load_table, object_ids

        rel = self._table_cache(entry)
        bundlefs.check(self.path, rel)  # a link or FIFO there is refused, naming it
        if not os.path.lexists(self.path / rel):
            return None
        with bundlefs.open_read(self.path, rel, bundlefs.MAX_CACHE) as f:
            table = load_table(f, labels.ndim if labels is not None else ndim)
        if table is None:
            return None
        if labels is not None:
            sound = np.array_equal(table.ids, object_ids(labels))
        else:
            ids = table.ids
            sound = len(ids) == entry.n_objects and bool(np.all(np.diff(ids) > 0))
        if not sound:
            log.warning("the object table cached for %s does not match its mask", entry.name)
            return None
        return table

    def _save_table_cache(self, entry: ImageEntry, table) -> None:
        from svetlana.core.objects.table import save_table

        try:
            save_table(bundlefs.writable(self.path, self._table_cache(entry)), table)
        except SvetlanaError as exc:  # a cache is an optimisation: never fail the user's action
            log.warning("cannot cache the object table of %s: %s", entry.name, exc)

    def _remember(self, loaded: LoadedImage) -> None:
        self._cache[loaded.name] = loaded
        self._cache.move_to_end(loaded.name)
        while len(self._cache) > 3:
            self._cache.popitem(last=False)

    # ---- models (the registry in registry.py; the manifest's "models" list is written here) ---
    def _save_model_entries(self, entries: list[dict]) -> None:
        self._require_writable()
        before = self._manifest.get("models", [])
        self._manifest["models"] = entries
        try:
            self._write_manifest()
        except BaseException:
            self._manifest["models"] = before
            raise

    @property
    def predictions_dir(self) -> Path:
        """``predictions/``, checked to be a real folder of the bundle (never a link)."""
        return bundlefs.check(self.path, "predictions", "dir")

    def prediction_dir(self, model_id: str) -> Path:
        """``predictions/<id>``: the model id checked, each folder on the way a real one."""
        self.models.dir(model_id)  # the id is a safe name
        return bundlefs.check(self.path, f"predictions/{model_id}", "dir")


def _check_manifest(m: Any, path: Path) -> dict:
    """The manifest when every record is sound (types, names, paths inside the bundle), else a
    ProjectError naming project.json and the record: read from a received bundle, so untrusted."""
    where = path / MANIFEST
    if not isinstance(m, dict):
        raise ProjectError("is not a Svetlana manifest", where)
    settings = m.setdefault("settings", {})
    if not isinstance(settings, dict):
        raise ProjectError("'settings' must be an object; the project is damaged", where)
    seed = settings.get("sampling_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ProjectError(
            f"'sampling_seed' must be a whole number from 0 to 2**32-1, not {seed!r}; "
            "the project is damaged",
            where,
        )
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
    names: set[str] = set()
    for d in m["images"]:
        try:
            if not isinstance(d, dict):
                raise TypeError(f"expected an object, found {type(d).__name__}")
            for key in ("name", "image_file", "mask_file"):
                if not isinstance(d.get(key), str):
                    raise TypeError(f"'{key}' must be text")
            entry = ImageEntry.from_dict(d)
            check_entry(entry)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProjectError(
                f"an image entry is malformed ({exc}); the project is damaged", where
            ) from exc
        if entry.name in names:
            raise ProjectError(
                f"two images are named {entry.name!r}; the project is damaged", where
            )
        names.add(entry.name)
        for rel in (entry.image_file, entry.mask_file):
            bundlefs.relative_parts(path, rel, ProjectError, where)
            # Nothing followed: a link or FIFO on the way (or there) is refused, naming it.
            bundlefs.check(path, rel, "dir" if rel.endswith(".zarr") else "file")
    for mdl in m["models"]:
        if not isinstance(mdl, dict) or not SAFE_MODEL_ID.match(str(mdl.get("id", ""))):
            raise ProjectError(f"has a malformed model entry ({mdl!r}); refused", where)
    classes: set[str] = set()
    for c in m["classes"]:
        if not isinstance(c, dict) or "name" not in c:
            raise ProjectError("has a malformed class entry; the project is damaged", where)
        name = c["name"]
        try:
            validate_class_name(name)
        except InputError as exc:
            raise ProjectError(f"{exc.message}; the project is damaged", where) from None
        if name in classes:
            raise ProjectError(f"has two classes named {name!r}; the project is damaged", where)
        classes.add(name)
        for k in ("colour", "key"):
            if not isinstance(c.get(k, ""), str):
                raise ProjectError(f"class {name!r}: malformed {k}; the project is damaged", where)
    return m


def check_entry(entry: ImageEntry) -> None:
    """An image record's values make sense (raises ValueError saying which does not)."""
    try:
        check_image_name(entry.name)
    except InputError as exc:
        raise ValueError(exc.message) from None
    if len(entry.shape) not in (2, 3) or min(entry.shape) < 1:
        raise ValueError(f"shape {list(entry.shape)} is not a 2D or 3D image")
    if entry.channels < 1 or entry.n_objects < 0:
        raise ValueError("channels or object count out of range")
    if entry.spacing is not None and not all(np.isfinite(v) and v > 0 for v in entry.spacing):
        raise ValueError(f"spacing {list(entry.spacing)} is not positive sizes")

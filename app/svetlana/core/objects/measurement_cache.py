"""The bundle's cache of object measurements: ``measurements/<mask>.npz`` (derived data, valid for
the stored files' sizes and times, the spacing and the measurement version; recomputed when
missing, damaged or stale). It holds the columns computed so far (a model may need only some
families): missing columns are measured and added, the cached ones are kept as they are.
``MeasurementCache`` is a snapshot a worker can use without the project."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.jobs import CancelToken, Progress, ProgressFn
from svetlana.core.objects.measurements import VERSION, Measurements, column_names, measure_objects

log = logging.getLogger(__name__)


def _cache_path(project, image_name: str) -> Path:
    """``measurements/<mask>.npz``, checked: a link or FIFO on the way is refused, naming it."""
    from svetlana.core.io import bundlefs

    entry = project.image(image_name)
    return bundlefs.check(project.path, f"measurements/{Path(entry.mask_file).stem}.npz")


def _fingerprint(project, image_name: str) -> np.ndarray:
    """Sizes and modification times of the stored image and mask, and the spacing."""
    entry = project.image(image_name)
    parts: list[float] = []
    for rel in (entry.image_file, entry.mask_file):
        st = os.lstat(project.path / rel)
        parts += [float(st.st_size), float(st.st_mtime_ns)]
    parts += list(entry.spacing or ())
    return np.asarray(parts, np.float64)


def _load_cache(path: Path, fingerprint: np.ndarray, ndim: int, nchan: int, spacing, bundle):
    from svetlana.core.io import bundlefs

    try:
        with (
            bundlefs.open_read(bundle, path, bundlefs.MAX_CACHE) as f,
            np.load(f, allow_pickle=False) as z,
        ):
            version = int(z["version"])
            fp = np.asarray(z["fingerprint"])
            ids = np.asarray(z["ids"])
            names = tuple(str(s) for s in z["names"])
            units = tuple(str(s) for s in z["units"])
            values = np.asarray(z["values"])
    except (OSError, ValueError, KeyError, EOFError, TypeError):
        return None
    # Any columns of this version (an RGB uint8 image also has its stains' columns: the cache
    # does not know the dtype), each once, with its unit.
    known: dict[str, str] = {}
    for stains in (False, True) if ndim == 2 and nchan == 3 else (False,):
        known.update(zip(*column_names(ndim, nchan, spacing is not None, stains), strict=True))
    ok = (
        version == VERSION
        and fp.shape == fingerprint.shape
        and np.array_equal(fp, fingerprint)
        and len(set(names)) == len(names) == len(units)
        and all(known.get(n) == u for n, u in zip(names, units, strict=True))
        and ids.ndim == 1
        and ids.dtype.kind in "iu"
        and values.dtype == np.float32
        and values.shape == (ids.size, len(names))
        and bool(np.isfinite(values).all())
        and bool(np.all(np.diff(ids) > 0))
    )
    return Measurements(ids.astype(np.int64), names, units, values) if ok else None


@dataclass(frozen=True)
class MeasurementCache:
    """Where one image's measurements are cached in a bundle, and what makes the cache valid:
    a snapshot taken on the main thread, so that a worker measures (and writes the derived
    cache file) without touching the project."""

    image_name: str
    path: Path
    fingerprint: np.ndarray = field(compare=False)
    ndim: int
    channels: int
    spacing: tuple[float, ...] | None
    writable: bool
    bundle: Path | None = None  # the bundle the cache is in: nothing inside it is followed

    def _order(self, image) -> dict[str, int]:
        """Every column this image has, and its place in the table."""
        from svetlana.core.objects.stains import is_brightfield_rgb

        img = image if image.ndim == self.ndim + 1 else image[np.newaxis]
        names, _ = column_names(
            self.ndim, self.channels, self.spacing is not None, is_brightfield_rgb(img)
        )
        return {n: i for i, n in enumerate(names)}

    def cached(self, progress: ProgressFn | None = None) -> Measurements | None:
        """The cached measurements when still valid, else None."""
        bundle = self.bundle if self.bundle is not None else self.path.parent
        if not os.path.lexists(self.path):
            return None
        m = _load_cache(self.path, self.fingerprint, self.ndim, self.channels, self.spacing, bundle)
        if m is None:
            log.info("measurement cache of %s is stale or damaged", self.image_name)
            return None
        log.debug("measurements of %s from the cache", self.image_name)
        if progress is not None:
            progress(Progress("measure", 1, 1, f"{self.image_name}: measurements cached"))
        return m

    def measure(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        *,
        ids: np.ndarray | None = None,
        columns: Sequence[str] | None = None,
        mask_ids: np.ndarray | None = None,
        mask_centroids: np.ndarray | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> Measurements:
        """Every object's measurements: the cached columns, and those of ``columns`` (None:
        all) not cached yet measured now (and added to the cache when writable). The result
        may hold more columns than asked for.

        A lazy (OME-Zarr) image is measured band by band; pass its object table's ``ids``.
        ``mask_ids``: the in-memory mask's object ids, when known (its checked object table),
        and ``mask_centroids`` their centroids in pixels (the table's)."""
        m = self.cached(progress)
        if m is not None:
            from svetlana.core.objects.table import object_ids

            want = ids if ids is not None else mask_ids
            want = want if want is not None else object_ids(np.asarray(labels))
            if not np.array_equal(m.ids, want):  # a tampered cache: objects left out or added
                log.warning("measurements cached for %s do not match its mask", self.image_name)
                m = None
        order = self._order(image)
        wanted = list(order) if columns is None else [c for c in columns if c in order]
        if m is not None:
            missing = [c for c in wanted if c not in set(m.names)]
            if not missing:
                return m
            log.debug("measuring %d more columns of %s", len(missing), self.image_name)
            columns = missing
        new = measure_objects(
            image, labels, ids=ids, spacing=self.spacing, columns=columns, mask_ids=mask_ids,
            mask_centroids=mask_centroids, progress=progress, cancel=cancel,
        )  # fmt: skip
        m = new if m is None else _union(m, new, order)
        if self.writable:
            bundle = self.bundle if self.bundle is not None else self.path.parent
            _save_cache(bundle, self.path, m, self.fingerprint)
        return m


def _union(old: Measurements, new: Measurements, order: dict[str, int]) -> Measurements:
    """The columns of both (the cached ones kept as they are), in table order."""
    if not np.array_equal(old.ids, new.ids):
        return new
    have = dict.fromkeys(old.names)
    names = sorted(set(old.names) | set(new.names), key=lambda n: order.get(n, len(order)))
    units = dict(zip(new.names, new.units, strict=True)) | dict(
        zip(old.names, old.units, strict=True)
    )
    cols = [old.values[:, old.names.index(n)] if n in have else new.values[:, new.names.index(n)]
            for n in names]  # fmt: skip
    values = np.stack(cols, axis=1) if cols else np.zeros((len(old.ids), 0), np.float32)
    return Measurements(old.ids, tuple(names), tuple(units[n] for n in names), values)


def measurement_cache(
    project: Any, image_name: str, writable: bool | None = None
) -> MeasurementCache:
    """The cache snapshot of one image of ``project`` (read on the main thread). ``writable``:
    whether measurements made through it are cached (default: unless the project is read-only;
    a worker's read-only view of an open project may still cache this derived data)."""
    entry = project.image(image_name)
    try:
        fingerprint = _fingerprint(project, image_name)
    except OSError:
        fingerprint = np.zeros(0)
    return MeasurementCache(
        image_name,
        _cache_path(project, image_name),
        fingerprint,
        entry.ndim,
        entry.channels,
        entry.spacing,
        not getattr(project, "readonly", False) if writable is None else writable,
        Path(project.path),
    )


def project_measurements(
    project: Any,
    image_name: str,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Measurements:
    """The measurements of every object of one image of the project, cached in the bundle
    (``measurements/<mask>.npz``, derived data: recomputed when missing, damaged, made from
    other files or by another version of the measurements)."""
    cache = measurement_cache(project, image_name)
    loaded = project.load(image_name)  # the cache must list exactly the mask's objects
    return cache.measure(
        loaded.image, loaded.labels, ids=loaded.measured_ids, progress=progress, cancel=cancel
    )


def _save_cache(bundle: Path, path: Path, m: Measurements, fingerprint: np.ndarray) -> None:
    from svetlana.core.errors import SvetlanaError
    from svetlana.core.io import bundlefs

    arrays = {
        "version": np.asarray(VERSION),
        "fingerprint": fingerprint,
        "ids": m.ids,
        "names": np.asarray(m.names, dtype=str),
        "units": np.asarray(m.units, dtype=str),
        "values": m.values,
    }
    try:
        bundlefs.write_with(bundle, path, lambda p: np.savez(p, **arrays))
    except SvetlanaError as exc:  # a cache is an optimisation: never fail the user's action
        log.warning("cannot cache the measurements in %s: %s", path, exc)

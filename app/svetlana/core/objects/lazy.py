"""Images larger than memory: OME-Zarr and large tiled TIFF read lazily, objects measured and
patches cut chunk by chunk, class masks written chunk by chunk.

OME-Zarr (NGFF 0.4 on zarr format 2, and 0.5 on zarr format 3) is read through zarr-python 3 and
dask.array; only the full-resolution level is used. A tiled TIFF of more than ``LAZY_TIFF_BYTES``
is read the same way through tifffile's zarr store. Written files (the bundle's copy of either
kind, class masks) are NGFF 0.4 (zarr format 2), which napari, QuPath and Fiji's readers open.

~890 lines: the larger-than-memory path (reading OME-Zarr and tiled TIFF, chunk-wise object
table, patches read around objects, class masks written chunk by chunk), which mirrors the
in-memory modules on the same lazy arrays (with the thread-safe tile cache the CNN's batch
threads share).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import InputError, ShapeMismatchError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token, no_progress
from svetlana.core.objects.table import ObjectTable

log = logging.getLogger(__name__)

NGFF_VERSION = "0.4"


@dataclass(frozen=True, eq=False)
class LazyImage:
    """A channel-first image (``labels=False``) or a label mask, not read yet (a dask array)."""

    data: Any  # dask.array.Array: (C, [Z,] Y, X) for an image, ([Z,] Y, X) for labels
    axes: str
    spacing: tuple[float, ...] | None
    path: Path

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)


def is_zarr(path: str | Path) -> bool:
    """A folder that is a zarr group (``.zattrs``/``.zgroup`` or ``zarr.json``) or named ``*.zarr``."""
    p = Path(path)
    return p.is_dir() and (
        p.suffix.lower() == ".zarr" or (p / ".zgroup").is_file() or (p / "zarr.json").is_file()
    )


def _multiscale(path: Path):
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr raises several kinds for a folder that is not a group
        raise InputError(f"not a readable OME-Zarr folder ({exc})", path) from None
    attrs = dict(group.attrs)
    ms = attrs.get("ome", attrs).get("multiscales") if isinstance(attrs, dict) else None
    if not ms or not isinstance(ms, list) or not isinstance(ms[0], dict):
        raise InputError("has no OME-Zarr 'multiscales' metadata", path)
    return group, ms[0]


def open_ome_zarr(path: str | Path, *, labels: bool = False, level: int = 0) -> LazyImage:
    """A level of an OME-Zarr image or label image (0: full resolution), lazily."""
    import dask.array as da

    path = Path(path)
    group, m = _multiscale(path)
    try:
        ds = m["datasets"][level]
        arr = group[str(ds["path"])]
    except (KeyError, IndexError, TypeError) as exc:
        raise InputError(f"OME-Zarr level {level} not found ({exc})", path) from None
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in m.get("axes", [])]
    if not axes:  # NGFF 0.1/0.2: always TCZYX
        axes = list("tczyx")[-arr.ndim :]
    if len(axes) != arr.ndim:
        raise InputError(f"{len(axes)} axes named for a {arr.ndim}D array", path)
    scale = None
    for t in ds.get("coordinateTransformations", []) or []:
        if isinstance(t, dict) and t.get("type") == "scale":
            scale = [float(v) for v in t.get("scale", [])]
    return _arrange(da.from_zarr(arr), [a.lower() for a in axes], scale, path, labels)


def _arrange(d, names: list[str], scale: list[float] | None, path: Path, labels: bool) -> LazyImage:
    """A lazy array with named axes (t, c, z, y, x) as a channel-first image or a label mask."""
    import dask.array as da

    names = list(names)
    if "t" in names:
        i = names.index("t")
        if d.shape[i] != 1:
            raise InputError(f"time series are not supported ({d.shape[i]} time points)", path)
        d = d[(slice(None),) * i + (0,)]
        names.pop(i)
        if scale:
            scale.pop(i)
    spatial = [a for a in names if a in "zyx"]
    if len(spatial) not in (2, 3) or spatial != sorted(spatial, reverse=True):
        raise InputError(f"expected YX or ZYX spatial axes, found {''.join(names)}", path)
    sp = None
    if scale and len(scale) == len(names):
        sp = tuple(scale[names.index(a)] for a in spatial)
    if labels:
        if "c" in names:
            i = names.index("c")
            if d.shape[i] != 1:
                raise InputError(f"a label mask has one channel, found {d.shape[i]}", path)
            d = d[(slice(None),) * i + (0,)]
        if d.dtype.kind not in "iu":
            raise InputError(f"mask must contain integer labels, found {d.dtype}", path)
        return LazyImage(d, "".join(spatial).upper(), sp, path)
    if "c" in names:
        if names.index("c") != 0:
            d = da.moveaxis(d, names.index("c"), 0)
    else:
        d = d[np.newaxis]
    return LazyImage(d, "C" + "".join(spatial).upper(), sp, path)


# A tiled TIFF whose pixels take more than this is read lazily, like an OME-Zarr folder (read
# whole, an image costs about 9 times its size: the file's array, a float copy, the normalised
# copy). 256 MiB: e.g. 11,600 x 11,600 16-bit pixels.
LAZY_TIFF_BYTES = 1 << 28
# Chunks of at least this many pixels per axis (z, y, x) are read at once from a tiled TIFF:
# a few tiles together, never a part of one.
_TIFF_CHUNK = {"z": 32, "y": 1024, "x": 1024}


def _is_tiff(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".tif", ".tiff", ".btf")


def is_large_tiled_tiff(path: str | Path) -> bool:
    """A tiled (Big)TIFF file of more than ``LAZY_TIFF_BYTES`` of pixels (read lazily)."""
    import tifffile

    path = Path(path)
    if not _is_tiff(path):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            nbytes = int(np.prod(series.shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize
            return bool(tif.pages[0].is_tiled) and nbytes > LAZY_TIFF_BYTES
    except Exception:  # noqa: BLE001 - not a readable TIFF: the usual reader names the problem
        return False


def open_tiff(path: str | Path, *, labels: bool = False, axes: str | None = None) -> LazyImage:
    """A TIFF image or label mask (first series, full resolution) read lazily through
    tifffile's zarr store, in chunks of whole tiles (``_TIFF_CHUNK``); ``axes`` names the
    file's axes (e.g. ``CYX``) when its metadata does not."""
    import dask.array as da
    import tifffile
    import zarr

    from svetlana.core.io.images import (
        _imagej_sizes,
        _lossy_mask,
        _ome_sizes,
        _spatial_spacing,
        lossy_tiff_compression,
    )

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            letters = series.axes.upper()
            lossy = lossy_tiff_compression(tif) if labels else None
            if lossy:
                raise _lossy_mask(path, lossy)
            sizes: dict[str, float] = {}
            try:
                if tif.is_ome and tif.ome_metadata:
                    sizes = _ome_sizes(tif.ome_metadata)
                elif tif.is_imagej:
                    sizes = _imagej_sizes(tif)
            except Exception as exc:  # noqa: BLE001 - spacing metadata is optional
                log.warning("%s: ignoring unreadable spacing metadata (%s)", path, exc)
        store = tifffile.imread(path, aszarr=True, series=0, level=0)
        arr = zarr.open_array(store, mode="r")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for a bad file
        raise InputError(f"not a readable TIFF ({exc})", path) from None
    if axes:
        letters = axes.upper()
        if len(letters) != arr.ndim:
            raise InputError(
                f"axes {axes!r} name {len(letters)} axes; the file has {arr.ndim}", path
            )
    names = [{"S": "c"}.get(a, a.lower()) for a in letters]
    if any(a not in "tczyx" for a in names) or len(set(names)) != len(names):
        raise InputError(
            f"the axes of this large TIFF are not known ({series.axes}, shape {arr.shape})",
            path,
            hint="give them with --axes (e.g. CYX), or save the image as OME-Zarr",
        )
    d = da.from_zarr(arr)
    target = tuple(
        max(c[0], -(-_TIFF_CHUNK[a] // c[0]) * c[0]) if a in _TIFF_CHUNK else c[0]
        for a, c in zip(names, d.chunks, strict=True)
    )
    if target != tuple(c[0] for c in d.chunks):
        d = d.rechunk(target)
    nsp = sum(a in "zyx" for a in names)
    spacing = _spatial_spacing(sizes, nsp)
    scale = None
    if spacing is not None:
        scale = [1.0] * len(names)
        for a, v in zip([a for a in names if a in "zyx"], spacing, strict=True):
            scale[names.index(a)] = float(v)
    return _arrange(d, names, scale, path, labels)


def open_lazy(path: str | Path, *, labels: bool = False, axes: str | None = None) -> LazyImage:
    """An OME-Zarr folder or a TIFF file, lazily."""
    if is_zarr(path):
        return open_ome_zarr(path, labels=labels)
    if _is_tiff(Path(path)):
        return open_tiff(path, labels=labels, axes=None if labels else axes)
    raise InputError(
        "a large image's mask must be a TIFF file or an OME-Zarr folder", path,
        hint="save the mask as TIFF or OME-Zarr",
    )  # fmt: skip


def open_pair(
    image_path: str | Path, mask_path: str | Path, axes: str | None = None
) -> tuple[LazyImage, LazyImage]:
    """An image and its label mask (each OME-Zarr or TIFF), lazily, checked to have the same
    spatial shape; the mask is read in the image's chunks."""
    image = open_lazy(image_path, axes=axes)
    mask = open_lazy(mask_path, labels=True)
    if image.shape[1:] != mask.shape:
        raise ShapeMismatchError(
            f"image shape {image.shape[1:]} does not match mask shape {mask.shape}: "
            f"image {Path(image_path).name} and mask {Path(mask_path).name} differ",
            image_path,
        )
    if mask.data.chunks != image.data.chunks[1:]:
        mask = LazyImage(
            mask.data.rechunk(image.data.chunks[1:]), mask.axes, mask.spacing, mask.path
        )
    return image, mask


def _read(array, index) -> np.ndarray:
    """``array[index]`` as numpy; a dask array is computed in this thread (no pool per read),
    or read straight from its zarr array when it is only that."""
    z = _zarr_of(array)
    if z is not None:
        return np.asarray(z[index])
    part = array[index]
    if hasattr(part, "compute"):
        return np.asarray(part.compute(scheduler="synchronous"))
    return np.asarray(part)


def _zarr_of(data):
    """The zarr array a dask array reads, when it is exactly one (``da.from_zarr``, nothing
    on top): read directly, without a task graph per read or a copy to join its chunks."""
    layers = getattr(getattr(data, "dask", None), "layers", None)
    if layers is None or len(layers) != 2:
        return None
    for layer in layers.values():
        if len(layer) != 1:
            continue
        value = next(iter(layer.values()))
        if (
            type(value).__module__.startswith("zarr")
            and tuple(getattr(value, "shape", ())) == tuple(data.shape)
            and getattr(value, "dtype", None) == data.dtype
            and any(str(k).startswith("from-zarr") for k in layers)
        ):
            return value
    return None


def _blocks(chunks: tuple[tuple[int, ...], ...]) -> Iterator[tuple[slice, ...]]:
    """Every chunk of a dask array as slices, in C order."""
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in chunks]
    for idx in np.ndindex(*(len(c) for c in chunks)):
        yield tuple(
            slice(int(starts[a][i]), int(starts[a][i] + chunks[a][i])) for a, i in enumerate(idx)
        )


def _table_piece(lab: np.ndarray, pix: np.ndarray | None, sl: tuple[slice, ...]) -> tuple:
    """One chunk's part of the object table: ids, counts, coordinate minima and maxima (ends
    exclusive), coordinate sums and intensity sums, background left out.

    Only the object pixels are visited after one pass to find them (a whole-slide mask is
    mostly background: 16% objects in the benchmark's), each object's pixels in raster order,
    so the sums are the same, bit for bit, as over every pixel."""
    if lab.size and lab.min() < 0:
        raise InputError("mask contains negative values")
    nd = lab.ndim
    flat = lab.reshape(-1)
    where = np.flatnonzero(flat)
    values = flat[where]
    lo = int(values.min()) if values.size else 0
    hi = int(values.max()) if values.size else 0
    if hi - lo <= 4 * flat.size:  # ids of a compact range: counted, no sort
        shifted = values.astype(np.intp) - lo
        counts_all = np.bincount(shifted, minlength=hi - lo + 1)
        present = np.flatnonzero(counts_all)
        lut = np.zeros(hi - lo + 1, np.intp)
        lut[present] = np.arange(present.size)
        inv = lut[shifted]
        ids, counts = present + lo, counts_all[present]
    else:
        ids, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
        inv = inv.reshape(-1).astype(np.intp)
    n = len(ids)
    mins = np.full((n, nd), np.iinfo(np.int64).max, np.int64)
    maxs = np.full((n, nd), -1, np.int64)
    sums = np.empty((n, nd), np.float64)
    coords = np.unravel_index(where, lab.shape)
    for axis in range(nd):
        c = coords[axis].astype(np.int64, copy=False)
        np.minimum.at(mins[:, axis], inv, c)
        np.maximum.at(maxs[:, axis], inv, c)
        sums[:, axis] = np.bincount(inv, weights=c + float(sl[axis].start), minlength=n)
    start = np.array([s.start for s in sl], np.int64)
    mins += start
    maxs += start + 1
    nchan = 0 if pix is None else int(pix.shape[0])
    isums = np.empty((n, nchan), np.float64)
    for c in range(nchan):
        w = pix[c].reshape(-1)[where].astype(np.float64, copy=False)
        isums[:, c] = np.bincount(inv, weights=w, minlength=n)
    return (ids.astype(np.int64), counts.astype(np.int64), mins, maxs, sums, isums)


def _table_of(pieces: list[tuple], nd: int, nchan: int) -> ObjectTable:
    """The object table from the chunks' pieces: an object crossing chunk borders is the sum,
    min and max over its pieces (sums of integer coordinates are exact in float64)."""
    ids_all = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
    uniq, grp = np.unique(ids_all, return_inverse=True)
    n = len(uniq)

    def cat(i: int, width: int) -> np.ndarray:
        return np.concatenate([p[i].reshape(-1, width) for p in pieces]) if pieces else None

    area = np.zeros(n, np.int64)
    np.add.at(area, grp, np.concatenate([p[1] for p in pieces]) if pieces else 0)
    lo = np.full((n, nd), np.iinfo(np.int64).max, np.int64)
    hi = np.zeros((n, nd), np.int64)
    csum = np.zeros((n, nd), np.float64)
    isum = np.zeros((n, nchan), np.float64)
    if n:
        np.minimum.at(lo, grp, cat(2, nd))
        np.maximum.at(hi, grp, cat(3, nd))
        np.add.at(csum, grp, cat(4, nd))
        if nchan:
            np.add.at(isum, grp, cat(5, nchan))
    return ObjectTable(
        uniq.astype(np.int64),
        np.concatenate([lo, hi], axis=1),
        csum / np.maximum(area, 1)[:, None],
        area,
        isum / np.maximum(area, 1)[:, None],
    )


def _check_mask_array(labels) -> None:
    if labels.ndim not in (2, 3):
        raise InputError(f"mask must be 2D or 3D, found shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise InputError(f"mask must contain integer labels, found {labels.dtype}")


def compute_objects_chunked(
    labels,
    image=None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ObjectTable:
    """``objects.compute_objects`` one chunk of the mask at a time (memory: one chunk).

    Each chunk gives per-object counts, coordinate and intensity sums, and coordinate minima and
    maxima; an object crossing chunk borders is the sum, min and max over its pieces, so the table
    equals the in-memory one (sums of integer coordinates are exact in float64).
    """
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    _check_mask_array(labels)
    nchan = 0 if image is None else int(image.shape[0])
    blocks = list(_blocks(labels.chunks))
    pieces = []
    for k, sl in enumerate(blocks):
        cancel.raise_if_cancelled()
        pix = _read(image, (slice(None), *sl)) if nchan else None
        pieces.append(_table_piece(_read(labels, sl), pix, sl))
        progress(Progress("objects", k + 1, len(blocks), f"chunk {k + 1}/{len(blocks)}"))
    return _table_of(pieces, labels.ndim, nchan)


# Chunks read, measured and written at once by ``copy_pair_with_table`` (2 threads: zarr's
# reads and writes and numpy's larger loops release the GIL).
_COPY_THREADS = 2


def copy_pair_with_table(
    image: LazyImage,
    mask: LazyImage,
    image_path: str | Path,
    mask_path: str | Path,
    spacing: tuple[float, ...] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ObjectTable:
    """``copy_ome_zarr`` of both the image and its mask and ``compute_objects_chunked``, in one
    pass: each chunk of the pair is read once, its part of the object table computed and the
    chunk written to both copies, on two threads (chunks in order, a few at a time). Each copy
    is atomic (``write_ome_zarr``); the table equals ``compute_objects_chunked``'s."""
    progress = progress or no_progress
    cancel = ensure_token(cancel)
    labels, data = mask.data, image.data
    _check_mask_array(labels)
    if tuple(data.chunks[1:]) != tuple(labels.chunks):
        raise InputError("the image and mask must be read in the same chunks", image.path)
    blocks = list(_blocks(labels.chunks))
    regular = all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in data.chunks)
    workers = _COPY_THREADS if regular else 1  # irregular chunks: writes could share a chunk
    pieces: list = [None] * len(blocks)

    def with_mask(put_image):
        def run(put_mask) -> None:
            def one(k: int, sl: tuple[slice, ...]) -> None:
                cancel.raise_if_cancelled()
                lab = _read(labels, sl)
                pix = _read(data, (slice(None), *sl))
                pieces[k] = _table_piece(lab, pix, sl)
                put_mask(sl, lab)
                put_image((slice(None), *sl), pix)

            def report(done: int) -> None:
                progress(Progress("objects", done, len(blocks), f"chunk {done}/{len(blocks)}"))

            if workers == 1:
                for k, sl in enumerate(blocks):
                    one(k, sl)
                    report(k + 1)
                return
            _in_threads(list(enumerate(blocks)), lambda item: one(*item), report)
            report(len(blocks))

        _write_like(mask, mask_path, spacing, run)

    _write_like(image, image_path, spacing, with_mask)
    return _table_of(pieces, labels.ndim, int(data.shape[0]))


def _in_threads(items: list, fn, progress=None) -> None:
    """``fn(item)`` for every item on ``_COPY_THREADS`` threads, a few items in flight (in
    order); an error is raised here. ``progress(done)`` after each finished item."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(_COPY_THREADS, thread_name_prefix="chunks") as pool:
        window = 4 * _COPY_THREADS  # memory stays a few chunks
        futures: list = []
        for k, item in enumerate(items):
            futures.append(pool.submit(fn, item))
            if len(futures) >= window:
                futures.pop(0).result()
                if progress is not None:
                    progress(k + 1 - len(futures))
        for f in futures:
            f.result()


def _write_like(source: LazyImage, path, spacing, writer) -> Path:
    data = source.data
    return write_ome_zarr(
        path,
        None,
        shape=tuple(int(s) for s in data.shape),
        chunks=tuple(c[0] for c in data.chunks),
        dtype=data.dtype,
        axes=source.axes,
        spacing=spacing,
        preview=preview_factor(data.shape),
        writer=writer,
    )


def fit_normalisation_lazy(image, sample: int = 2_000_000):
    """``patches.fit_normalisation`` on a regular subsample of the lazy image's pixels."""
    from svetlana.core.objects.patches import fit_normalisation

    spatial = image.shape[1:]
    total = int(np.prod(spatial))
    step = max(1, int(np.ceil((total / sample) ** (1 / len(spatial)))))
    sub = _read(image, (slice(None),) + (slice(None, None, step),) * len(spatial))
    return fit_normalisation(sub)


class LazyPatchSource:
    """``patches.PatchSource`` over lazy arrays: the same patches, read one tile at a time.

    Objects are served in ``order`` (tile by tile, so each tile of the image is read once);
    ``PatchSource``'s semantics otherwise: patch centred on the rounded centroid, zero outside
    the image, last channel 1 on the object's own pixels. Thread-safe: the batch threads of
    inference read neighbouring slices at once, so the last few tiles are kept, each read once.
    """

    _KEEP = 4  # tiles kept (two batch threads, each at most at a tile boundary)

    def __init__(self, image, labels, table: ObjectTable, size: int, norm, spacing=None):
        from svetlana.core.objects.patches import patch_shape

        self.image, self.labels, self.norm = image, labels, norm
        nd = labels.ndim
        self.patch = patch_shape(size, nd, spacing)
        self.before = np.array([p // 2 for p in self.patch])
        shape = np.asarray(labels.shape)
        centre = np.floor(table.centroid + 0.5).astype(np.int64)
        starts = np.clip(centre, 0, shape - 1)  # in PatchSource's padded coordinates
        self.tile = np.array([c[0] for c in labels.chunks], np.int64)
        tiles = starts // self.tile
        key = np.ravel_multi_index(tuple(tiles.T), tuple(-(-shape // self.tile)))
        self.order = np.argsort(key, kind="stable")
        self.ids = table.ids[self.order]
        self._starts = starts[self.order]
        self._tiles = tiles[self.order]
        self._keys = key[self.order]
        self.shape = (int(image.shape[0]) + 1, *self.patch)
        self._cache: dict[int, tuple] = {}
        self._loading: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self.ids.size)

    def _region(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised image and labels of row ``r``'s tile plus a patch margin, zero-padded
        like PatchSource, and the tile's origin."""
        key = int(self._keys[r])
        mine = threading.Event()
        while True:
            with self._lock:
                got = self._cache.get(key)
                wait = self._loading.get(key) if got is None else None
                if got is None and wait is None:
                    self._loading[key] = mine
            if got is not None:
                return got
            if wait is None:
                break
            wait.wait()  # another thread reads this tile
        try:
            got = self._read_region(self._tiles[r])
        finally:
            with self._lock:
                self._loading.pop(key)
                if got is not None:
                    self._cache[key] = got
                    while len(self._cache) > self._KEEP:
                        self._cache.pop(next(iter(self._cache)))
            mine.set()
        return got

    def _read_region(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from svetlana.core.objects.patches import apply_normalisation

        shape = np.asarray(self.labels.shape)
        origin = tile * self.tile  # padded coordinates of the first start in this tile
        lo = origin - self.before  # image coordinates of the region's corner
        hi = np.minimum(origin + self.tile, shape) - 1 - self.before + np.asarray(self.patch)
        a, b = np.maximum(lo, 0), np.minimum(hi, shape)
        size = hi - lo
        img = np.zeros((self.shape[0] - 1, *size), np.float32)
        lab = np.zeros(tuple(size), self.labels.dtype)
        src = tuple(slice(int(x), int(y)) for x, y in zip(a, b, strict=True))
        dst = tuple(slice(int(x - l0), int(y - l0)) for x, y, l0 in zip(a, b, lo, strict=True))
        img[(slice(None), *dst)] = apply_normalisation(
            _read(self.image, (slice(None), *src)), self.norm
        )
        lab[dst] = _read(self.labels, src)
        return img, lab, origin

    def __getitem__(self, index: slice | int) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            i = range(len(self))[index]
            index = slice(i, i + 1)
        rows = range(len(self))[index]
        out = np.empty((len(rows), *self.shape), np.float32)
        if not len(rows):
            return out
        if rows.step != 1:
            raise TypeError("LazyPatchSource supports integer or contiguous slice indexing")
        keys = self._keys[rows.start : rows.stop]
        cuts = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(rows)]
        nd = len(self.patch)
        win = np.lib.stride_tricks.sliding_window_view
        for j0, j1 in zip(cuts[:-1], cuts[1:], strict=True):  # the rows of one tile at a time
            r0 = rows.start + j0
            img, lab, origin = self._region(r0)
            s = self._starts[r0 : rows.start + j1] - origin
            idx = tuple(s[:, a] for a in range(nd))
            windows = win(img, self.patch, axis=tuple(range(1, nd + 1)))
            out[j0:j1, :-1] = np.moveaxis(windows[(slice(None), *idx)], 0, 1)
            ids = self.ids[r0 : rows.start + j1].reshape((-1,) + (1,) * nd)
            out[j0:j1, -1] = win(lab, self.patch)[idx] == ids
        return out


def extract_patches_lazy(
    image, labels, table: ObjectTable, ids, size: int, norm, spacing=None
) -> np.ndarray:
    """``patches.extract_patches`` on lazy arrays: the patches of ``ids`` (in that order), read
    from the tiles around those objects only (training on a larger-than-memory image)."""
    rows = table.rows(ids)
    sub = ObjectTable(
        table.ids[rows], table.bbox[rows], table.centroid[rows], table.area[rows],
        table.mean_intensity[rows],
    )  # fmt: skip
    source = LazyPatchSource(image, labels, sub, size, norm, spacing)
    out = np.empty((len(sub), *source.shape), np.float32)
    if len(sub):
        out[source.order] = source[:]
    return out


def write_ome_zarr(
    path: str | Path,
    blocks: Iterator[tuple[tuple[slice, ...], np.ndarray]] | None,
    *,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype,
    axes: str,
    spacing: tuple[float, ...] | None = None,
    name: str = "",
    fill=None,
    preview: int = 1,
    writer=None,
) -> Path:
    """Write an NGFF 0.4 image chunk by chunk, atomically (a temporary folder renamed at the
    end); ``blocks`` yields ``(slices, values)``, or ``fill(array)`` writes the array, or
    ``writer(put)`` calls ``put(slices, values)`` (from any thread; each call whole chunks).
    With ``preview`` k > 1 the blocks (and puts) also fill a second level, every k-th pixel
    along Y and X."""
    import zarr

    from svetlana.core.io.fileio import make_temp_dir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, f".{path.name}.")
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        arr = root.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
        small = None
        if preview > 1:
            pshape = (*shape[:-2], -(-shape[-2] // preview), -(-shape[-1] // preview))
            pchunks = (
                *chunks[:-2],
                *(min(c, s) for c, s in zip(chunks[-2:], pshape[-2:], strict=True)),
            )
            small = root.create_array("1", shape=pshape, chunks=pchunks, dtype=dtype, fill_value=0)
        if fill is not None:
            fill(arr)
        lock = threading.Lock()  # preview chunks hold several blocks: written one at a time

        def put(sl, values) -> None:
            arr[sl] = values
            if small is not None:
                with lock:
                    _write_preview(small, sl, values, preview)

        if writer is not None:
            writer(put)
        for sl, values in blocks or ():
            put(sl, values)
        kinds = {"c": "channel", "z": "space", "y": "space", "x": "space"}
        ax = [
            {"name": a.lower(), "type": kinds[a.lower()]}
            | ({"unit": "micrometer"} if a.lower() in "zyx" and spacing else {})
            for a in axes
        ]
        scale = [1.0] * len(axes)
        if spacing:
            spatial = [i for i, a in enumerate(axes.lower()) if a in "zyx"]
            for i, s in zip(spatial, spacing, strict=True):
                scale[i] = float(s)
        root.attrs["multiscales"] = [
            {
                "version": NGFF_VERSION,
                "name": name or path.stem,
                "axes": ax,
                "datasets": [
                    {
                        "path": str(level),
                        "coordinateTransformations": [{"type": "scale", "scale": sc}],
                    }
                    for level, sc in enumerate(
                        [scale, [*scale[:-2], scale[-2] * preview, scale[-1] * preview]]
                    )
                    if level == 0 or small is not None
                ],
            }
        ]
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# The app shows a larger-than-memory image as a preview of at most this many pixels a side
# (every k-th pixel), written as the second level of the project's OME-Zarr copy.
PREVIEW_SIDE = 4096
_PREVIEW_MAX_BYTES = 1 << 30  # a 3D preview keeps every Z plane: refused above this


def preview_factor(shape: tuple[int, ...]) -> int:
    """k such that every k-th pixel along Y and X fits ``PREVIEW_SIDE`` (1: no preview needed)."""
    return max(1, -(-max(int(shape[-2]), int(shape[-1])) // PREVIEW_SIDE))


def _write_preview(small, sl: tuple[slice, ...], values: np.ndarray, k: int) -> None:
    """Every k-th pixel (along Y and X, from 0) of a block, into the preview level."""
    src, dst = [], []
    for a in (-2, -1):
        start = sl[a].start
        off = (-start) % k
        n = len(range(off, values.shape[a], k))
        src.append(slice(off, None, k))
        dst.append(slice((start + off) // k, (start + off) // k + n))
    part = values[(..., *src)]
    if part.size:
        small[(*sl[:-2], *dst)] = part


def preview_pair(loaded) -> tuple[int, np.ndarray, np.ndarray]:
    """(k, image, labels): every k-th pixel along Y and X of a lazy project image, as numpy --
    the project's stored preview level when there is one (instant), else read now."""
    image, labels = loaded.image, loaded.labels
    k = preview_factor(labels.shape)
    plane = -(-labels.shape[-2] // k) * -(-labels.shape[-1] // k)
    values = plane * int(np.prod(labels.shape[:-2], dtype=np.int64))  # all Z planes in 3D
    need = values * (image.shape[0] * image.dtype.itemsize + labels.dtype.itemsize)
    if need > _PREVIEW_MAX_BYTES:
        raise InputError(
            f"this image is too large to show, even every {k}-th pixel ({need / 1e9:.1f} GB)",
            loaded.extra.get("paths", (None,))[0],
            hint="use it from the command line (svetlana predict, measure, export-table)",
        )
    if k == 1:
        return 1, _read(image, ...), _read(labels, ...)
    paths = loaded.extra.get("paths")
    if paths:
        try:
            img = open_ome_zarr(paths[0], level=1)
            lab = open_ome_zarr(paths[1], labels=True, level=1)
            want = (-(-labels.shape[-2] // k), -(-labels.shape[-1] // k))
            if img.shape[1:] == lab.shape and lab.shape[-2:] == want:
                return k, _read(img.data, ...), _read(lab.data, ...)
        except InputError:
            pass  # a project made before previews were stored
    log.info("no stored preview of %s: reading every %d-th pixel", loaded.name, k)
    step = (..., slice(None, None, k), slice(None, None, k))
    return k, _read(image, step), _read(labels, step)


def write_class_mask_zarr(
    path: str | Path,
    labels,
    ids: np.ndarray,
    class_index: np.ndarray,
    *,
    spacing: tuple[float, ...] | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """The class mask of a lazy label mask, one chunk at a time, as OME-Zarr."""
    from svetlana.core.io.masks import class_mask

    cancel = ensure_token(cancel)
    top = int(np.max(class_index)) if len(class_index) else 0
    dtype = np.uint8 if top < 255 else np.uint16

    blocks = list(_blocks(labels.chunks))
    regular = all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in labels.chunks)

    def one(put, sl) -> None:
        cancel.raise_if_cancelled()
        put(sl, class_mask(_read(labels, sl), ids, class_index).astype(dtype))

    def writer(put) -> None:  # chunks on two threads (reading and writing release the GIL)
        if not regular:
            for sl in blocks:
                one(put, sl)
            return
        _in_threads(blocks, lambda sl: one(put, sl))

    return write_ome_zarr(
        path,
        None,
        writer=writer,
        shape=tuple(labels.shape),
        chunks=tuple(c[0] for c in labels.chunks),
        dtype=dtype,
        axes="ZYX"[-labels.ndim :],
        spacing=spacing,
    )


def write_class_mask_tiff(
    path: str | Path, labels, ids: np.ndarray, class_index: np.ndarray, tile: int = 1024
) -> None:
    """The class mask of a lazy label mask as a tiled BigTIFF (zlib), one tile at a time (a
    3D mask page by page); ``path`` is written directly (wrap in ``atomic_write_with``)."""
    import tifffile

    from svetlana.core.io.masks import class_mask

    top = int(np.max(class_index)) if len(class_index) else 0
    dtype = np.uint8 if top < 255 else np.uint16
    shape = tuple(int(s) for s in labels.shape)
    h, w = shape[-2:]

    def tiles():
        for z in np.ndindex(*shape[:-2]):
            for y0 in range(0, h, tile):
                for x0 in range(0, w, tile):
                    lab = _read(labels, (*z, slice(y0, y0 + tile), slice(x0, x0 + tile)))
                    out = np.zeros((tile, tile), dtype)
                    out[: lab.shape[0], : lab.shape[1]] = class_mask(lab, ids, class_index)
                    yield out

    tifffile.imwrite(
        path, tiles(), shape=shape, dtype=dtype, tile=(tile, tile), bigtiff=True,
        compression="zlib",
    )  # fmt: skip


def copy_ome_zarr(
    image: LazyImage,
    path: str | Path,
    spacing: tuple[float, ...] | None = None,
    *,
    cancel: CancelToken | None = None,
) -> Path:
    """A chunk-by-chunk copy of a lazy image or mask as an NGFF 0.4 OME-Zarr (the bundle's copy),
    with a preview level for the app (``preview_factor``)."""
    cancel = ensure_token(cancel)
    data = image.data

    def blocks():
        for sl in _blocks(data.chunks):
            cancel.raise_if_cancelled()
            yield sl, _read(data, sl)

    return write_ome_zarr(
        path,
        blocks(),
        shape=tuple(int(s) for s in data.shape),
        chunks=tuple(c[0] for c in data.chunks),
        dtype=data.dtype,
        axes=image.axes,
        spacing=spacing,
        preview=preview_factor(data.shape),
    )

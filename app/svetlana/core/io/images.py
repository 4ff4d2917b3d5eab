"""Read images and label masks (TIFF, OME-TIFF, PNG/JPEG, NPY, Cellpose files) and resolve their axes.

~630 lines: one reader for every supported format, its memory checks and the axes logic,
which all work on the same raw arrays and messages (the mask sanity checks: ``mask_checks``).
"""

from __future__ import annotations

import logging
import os
import pickle  # noqa: TID251 - a restricted unpickler for Cellpose _seg.npy (numpy arrays only)
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import (
    InputError,
    ResourceError,
    ShapeMismatchError,
    SvetlanaError,
    UnsafeFileError,
)

log = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
NPY_SUFFIXES = (".npy",)
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES + NPY_SUFFIXES
AXIS_LETTERS = "TZCYX"


@dataclass(frozen=True)
class ImageData:
    """An image, always channel-first ``(C, Y, X)`` or ``(C, Z, Y, X)`` in its original dtype."""

    data: np.ndarray
    axes: str  # how the source axes were read, usable again as an ``axes`` override
    spacing: tuple[float, ...] | None  # (Z, Y, X) or (Y, X) voxel size when known
    path: Path


@dataclass(frozen=True)
class MaskData:
    """A label mask ``(Y, X)`` or ``(Z, Y, X)``; 0 is background, ids kept as in the file."""

    labels: np.ndarray
    was_binary: bool  # the file held one foreground value and was split into components
    path: Path


@dataclass(frozen=True)
class _Raw:
    array: np.ndarray
    axes_hint: str | None  # tifffile's axes (S mapped to C, unknown letters as "?")
    sizes: dict[str, float]  # physical pixel sizes known from metadata, keys "Z", "Y", "X"


# ---------------------------------------------------------------- restricted unpickling

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
}


class _RefusedGlobal(Exception):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _refuse(path: Path, what: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"the file needs running code from the file to be read ({what}); refused for safety",
        path,
        hint="save the mask as a TIFF or PNG, or as a plain integer .npy array",
    )


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read the file: not a valid .npy file ({exc})", path) from None
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        if not path.name.endswith("_seg.npy"):
            raise _refuse(path, "a pickled object array")
        try:
            obj = _RestrictedUnpickler(f).load()
        except _RefusedGlobal as exc:
            raise _refuse(path, f"it refers to {exc}") from None
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.ndim == 0:
        obj = obj.item()
    if not isinstance(obj, dict) or "masks" not in obj:
        raise InputError("cannot read the file: a _seg.npy file must hold a 'masks' entry", path)
    masks = obj["masks"]
    if not isinstance(masks, np.ndarray):
        raise InputError("cannot read the file: its 'masks' entry is not an array", path)
    return masks


# ---------------------------------------------------------------- low-level reading


def _ome_sizes(xml: str) -> dict[str, float]:
    root = ET.fromstring(xml)
    for elem in root.iter():
        if elem.tag.rsplit("}", 1)[-1] == "Pixels":
            sizes = {}
            for ax in "ZYX":
                value = elem.get(f"PhysicalSize{ax}")
                if value is not None and float(value) > 0:
                    sizes[ax] = float(value)
            return sizes
    return {}


def _imagej_sizes(tif: Any) -> dict[str, float]:
    sizes: dict[str, float] = {}
    md = tif.imagej_metadata or {}
    if md.get("spacing"):
        sizes["Z"] = float(md["spacing"])
    tags = tif.pages[0].tags
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in tags:
            num, den = tags[tag].value
            if num > 0 and (num, den) != (1, 1):
                sizes[ax] = den / num
    if "X" in sizes and "Y" not in sizes:
        sizes["Y"] = sizes["X"]
    return sizes


def _load_tiff(path: Path, for_mask: bool = False) -> _Raw:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        lossy = lossy_tiff_compression(tif) if for_mask else None
        if lossy:
            raise _lossy_mask(path, lossy)
        series = tif.series[0]
        array = series.asarray()
        axes = "".join(a if a in AXIS_LETTERS else ("C" if a == "S" else "?") for a in series.axes)
        sizes: dict[str, float] = {}
        try:
            if tif.is_ome and tif.ome_metadata:
                sizes = _ome_sizes(tif.ome_metadata)
            elif tif.is_imagej:
                sizes = _imagej_sizes(tif)
        except Exception as exc:  # noqa: BLE001 - metadata is optional; a bad one must not block reading
            log.warning("%s: ignoring unreadable spacing metadata (%s)", path, exc)
    if len(axes) != array.ndim or axes.count("C") > 1:
        axes = None
    return _Raw(array, axes, sizes)


def _lossy_mask(path: Path, kind: str = "JPEG") -> InputError:
    return InputError(
        f"a mask compressed as {kind} is refused: {kind} is a lossy image compression (it "
        "changes pixel values), so object ids would be altered and objects split or merge",
        path,
        hint="save the mask as PNG or TIFF (uncompressed, LZW, Deflate or Zstd)",
    )


# TIFF compressions that are lossy (or whose lossless mode cannot be told from the header):
# refused for masks, whose every pixel value is an object id.
_LOSSY_TIFF = {
    6: "JPEG",
    7: "JPEG",
    33003: "JPEG 2000",
    33004: "JPEG 2000",
    33005: "JPEG 2000",
    34712: "JPEG 2000",
    50002: "JPEG XL",
    52546: "JPEG XL",
    22610: "JPEG XR",
    34934: "JPEG XR",
}
_WEBP = 50001


def lossy_tiff_compression(tif: Any) -> str | None:
    """The name of a TIFF's lossy compression (``None`` when lossless): WebP is lossy unless its
    first tile is a lossless (VP8L) stream."""
    page = tif.pages[0]
    code = int(page.compression)
    if code in _LOSSY_TIFF:
        return _LOSSY_TIFF[code]
    if code == _WEBP:
        try:
            fh = tif.filehandle
            fh.seek(page.dataoffsets[0])
            head = fh.read(64)
        except (OSError, IndexError, ValueError):
            return "WebP"
        # RIFF....WEBP then the stream's chunk: VP8L lossless, VP8 lossy (VP8X: extended)
        return None if b"VP8L" in head and b"VP8 " not in head else "lossy WebP"
    return None


def _load_pil(path: Path, for_mask: bool) -> _Raw:
    from PIL import Image

    with Image.open(path) as im:
        if for_mask and im.format in ("JPEG", "MPO", "JPEG2000"):
            raise _lossy_mask(path, "JPEG 2000" if im.format == "JPEG2000" else "JPEG")
        if im.mode == "P" and not for_mask:
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        array = np.asarray(im).copy()
    if array.ndim == 3:
        return _Raw(array, "YXC", {})
    return _Raw(array, None, {})


MAX_BYTES_ENV = "SVETLANA_MAX_IMAGE_BYTES"
# Reading keeps the file's array, an integer or float32 copy and the normalised float32 copy.
_COPY_BYTES_PER_VALUE = 8


def available_memory() -> int | None:
    """Bytes an image may use: ``SVETLANA_MAX_IMAGE_BYTES``, else MemAvailable, else None."""
    override = os.environ.get(MAX_BYTES_ENV, "").strip()
    if override:
        try:
            return int(float(override))
        except ValueError:
            log.warning("ignoring %s=%r (not a number)", MAX_BYTES_ENV, override)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_fits_in_memory(path: Path) -> None:
    """Refuse, from the header alone, an image whose loading would exhaust memory."""
    try:
        values, itemsize = _header_size(path)
    except SvetlanaError:
        return  # unreadable header: the reader gives the precise error
    if values is None:
        return
    need = values * (itemsize + _COPY_BYTES_PER_VALUE)
    have = available_memory()
    if have is not None and need > have:
        raise ResourceError(
            f"this image needs about {_gb(need)} of memory to load ({_gb(have)} available)",
            path,
            hint="crop it or split it into smaller images",
        )


def _load(path: str | Path, for_mask: bool = False) -> _Raw:
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if not path.is_file():
        raise InputError("not a file", path)
    suffix = path.suffix.lower()
    check_fits_in_memory(path)
    try:
        if suffix in TIFF_SUFFIXES:
            return _load_tiff(path, for_mask)
        if suffix in PIL_SUFFIXES:
            return _load_pil(path, for_mask)
        if suffix in NPY_SUFFIXES:
            return _Raw(_load_npy(path), None, {})
    except SvetlanaError:
        raise
    except MemoryError:
        raise InputError("cannot read the file: not enough memory to load it", path) from None
    except Exception as exc:  # noqa: BLE001 - reported as one clear message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the file: {reason}", path) from None
    raise InputError(
        f"cannot read the file: unsupported file type '{suffix or path.name}'",
        path,
        hint="use TIFF, PNG, JPEG or NPY",
    )


# ---------------------------------------------------------------- masks


def _mask_from_array(array: np.ndarray, path: Path) -> MaskData:
    if array.ndim == 3 and array.shape[-1] in (3, 4) and path.suffix.lower() in PIL_SUFFIXES:
        # A colour PNG mask: accept only if it is really grey (all colour channels equal).
        if not all(np.array_equal(array[..., 0], array[..., i]) for i in (1, 2)):
            raise InputError("mask is a colour image; it must contain integer labels", path)
        array = array[..., 0]
    array = np.squeeze(array)
    if array.ndim not in (2, 3):
        raise InputError(
            f"mask must be 2D (Y, X) or 3D (Z, Y, X), found shape {tuple(array.shape)}", path
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        # Cellpose and some tools save labels as float; accept them when every value is whole.
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError("mask must contain integer labels, found float values", path)
        if array.size and float(array.max()) >= 2**63:
            raise InputError("mask labels are too large", path)
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise InputError(f"mask must contain integer labels, found {array.dtype} values", path)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise InputError(
            "mask contains negative values; labels must be 0 (background) or positive", path
        )
    top = int(array.max()) if array.size else 0
    if top == 0:
        raise InputError("the mask contains no objects", path)
    low = int(np.where(array > 0, array, top).min())
    was_binary = low == top
    if was_binary:
        from skimage.measure import label

        # Face connectivity: blobs touching only at a corner are counted as separate objects.
        labels = label(array > 0, connectivity=1)
        top = int(labels.max())
    else:
        labels = array
    dtype = np.int32 if top < 2**31 else np.int64
    if top >= 2**63:
        raise InputError("mask labels are too large", path)
    return MaskData(np.ascontiguousarray(labels.astype(dtype, copy=False)), was_binary, path)


def read_mask(path: str | Path) -> MaskData:
    """Read a label mask; a binary mask is split into connected components."""
    path = Path(path)
    raw = _load(path, for_mask=True)
    return _mask_from_array(raw.array, path)


# ---------------------------------------------------------------- images and axes


def _check_axes_string(axes: str, ndim: int, path: Path) -> str:
    axes = axes.strip().upper()
    if not axes or any(a not in AXIS_LETTERS for a in axes):
        raise InputError(f"axes '{axes}' may only use the letters {AXIS_LETTERS}", path)
    if len(set(axes)) != len(axes):
        raise InputError(f"axes '{axes}' repeats a letter", path)
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes '{axes}' must contain Y and X", path)
    if len(axes) != ndim:
        raise InputError(
            f"axes '{axes}' has {len(axes)} letters but the image has {ndim} dimensions", path
        )
    return axes


def _name_singletons(labels: list[str | None], hint: str | None) -> str:
    """Give dropped singleton dimensions letters so the axes string can be passed back in."""
    used = {a for a in labels if a}
    out = []
    for i, a in enumerate(labels):
        if a is None:
            options = ([hint[i]] if hint and hint[i] in "TZC" else []) + list("TCZ")
            a = next((o for o in options if o not in used), None)
            if a is None:
                raise InputError("unsupported image dimensionality: too many dimensions")
            used.add(a)
        out.append(a)
    return "".join(out)


def _guess_axes(
    shape: tuple[int, ...], hint: str | None, mask_shape: tuple[int, ...] | None
) -> list[str] | None:
    """Axis letters for the non-singleton ``shape``, or None when it cannot match."""
    nd = len(shape)
    if mask_shape is not None:
        spatial = "ZYX"[-len(mask_shape) :]
        if shape == mask_shape:
            return list(spatial)
        if nd != len(mask_shape) + 1:
            return None
        candidates = [p for p in range(nd) if shape[:p] + shape[p + 1 :] == mask_shape]
        if not candidates:
            return None
        if hint and "C" in hint and hint.index("C") in candidates:
            p = hint.index("C")
        elif nd - 1 in candidates and shape[-1] <= 4:
            p = nd - 1  # RGB(A) last
        else:
            p = candidates[0]
        letters = list(spatial)
        letters.insert(p, "C")
        return letters
    if hint and "?" not in hint and set(hint) <= set("ZCYX") and hint.endswith(("YX", "YXC")):
        return list(hint)
    if nd == 2:
        return list("YX")
    if nd == 3:
        if shape[-1] in (3, 4):
            return list("YXC")
        if shape[0] <= 4:
            return list("CYX")
        return list("ZYX")
    if nd == 4:
        if shape[-1] in (3, 4):
            return list("ZYXC")
        return list("ZCYX") if shape[1] < shape[0] else list("CZYX")
    return None


def _spatial_spacing(sizes: dict[str, float], nspatial: int) -> tuple[float, ...] | None:
    if nspatial == 3:
        if "Z" not in sizes:
            return None
        return (sizes["Z"], sizes.get("Y", 1.0), sizes.get("X", 1.0))
    if "Y" in sizes and "X" in sizes:
        return (sizes["Y"], sizes["X"])
    return None


def _to_channel_first(array: np.ndarray, letters: str) -> np.ndarray:
    spatial = [a for a in "ZYX" if a in letters]
    if "C" not in letters:
        array = array[np.newaxis]
        letters = "C" + letters
    order = [letters.index(a) for a in ["C", *spatial]]
    return np.ascontiguousarray(np.transpose(array, order))


def _image_from_raw(
    raw: _Raw, path: Path, mask_shape: tuple[int, ...] | None, axes: str | None
) -> ImageData:
    array = raw.array
    if array.dtype.kind not in "biuf":
        raise InputError(f"cannot read the file: unsupported pixel type {array.dtype}", path)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if axes is not None:
        letters = _check_axes_string(axes, array.ndim, path)
        keep = []
        for i, a in enumerate(letters):
            if a == "T":
                if array.shape[i] != 1:
                    raise InputError(
                        f"the image has {array.shape[i]} time points; only single time points are supported",
                        path,
                    )
                continue
            if a == "Z" and array.shape[i] == 1:
                continue
            keep.append(i)
        drop = tuple(i for i in range(array.ndim) if i not in keep)
        data = array.squeeze(axis=drop) if drop else array
        used = "".join(letters[i] for i in keep)
        data = _to_channel_first(data, used)
        source_axes = letters
    else:
        keep = [i for i, n in enumerate(array.shape) if n != 1]
        squeezed = array.reshape([array.shape[i] for i in keep])
        hint = raw.axes_hint
        sub_hint = "".join(hint[i] for i in keep) if hint else None
        if mask_shape is not None:
            mask_shape = tuple(int(n) for n in mask_shape if n != 1)
        if squeezed.ndim < 2 or (mask_shape is None and squeezed.ndim > 4):
            raise InputError(f"unsupported image dimensionality: shape {tuple(array.shape)}", path)
        guessed = _guess_axes(tuple(squeezed.shape), sub_hint, mask_shape)
        if guessed is None:
            if mask_shape is not None and squeezed.ndim <= 5:
                raise ShapeMismatchError(
                    f"image shape {tuple(array.shape)} does not match mask shape {mask_shape}",
                    path,
                    hint="pass an axes string such as ZCYX if the channels are not recognised",
                )
            raise InputError(f"unsupported image dimensionality: shape {tuple(array.shape)}", path)
        labels: list[str | None] = [None] * array.ndim
        for i, a in zip(keep, guessed, strict=True):
            labels[i] = a
        source_axes = _name_singletons(labels, hint)
        data = _to_channel_first(squeezed, "".join(guessed))
    if data.ndim not in (3, 4):
        raise InputError(
            f"unsupported image dimensionality: axes '{source_axes}' give shape {tuple(data.shape)}",
            path,
        )
    if mask_shape is not None and tuple(data.shape[1:]) != tuple(mask_shape):
        raise ShapeMismatchError(
            f"image spatial shape {tuple(data.shape[1:])} (axes '{source_axes}') does not match "
            f"mask shape {tuple(mask_shape)}",
            path,
        )
    spacing = _spatial_spacing(raw.sizes, data.ndim - 1)
    return ImageData(data, source_axes, spacing, path)


def read_image(
    path: str | Path, mask_shape: tuple[int, ...] | None = None, axes: str | None = None
) -> ImageData:
    """Read an image as channel-first data.

    Axes are decided, in order, by ``axes`` (letters from TZCYX, one per dimension of the file),
    by matching the mask's spatial shape (one extra dimension = channels; RGB last-axis included),
    by the file's own axes metadata (ImageJ/OME), or by a default (a last axis of 3-4 = colour,
    a first axis of at most 4 = channels, otherwise Z). Singleton dimensions are dropped.
    """
    path = Path(path)
    raw = _load(path)
    return _image_from_raw(raw, path, mask_shape, axes)


def read_pair(
    image_path: str | Path,
    mask_path: str | Path,
    axes: str | None = None,
    spacing: tuple[float, ...] | None = None,
) -> tuple[ImageData, MaskData]:
    """Read an image and its mask, check their spatial shapes match; ``spacing`` overrides metadata."""
    image_path, mask_path = Path(image_path), Path(mask_path)
    mask = read_mask(mask_path)
    try:
        image = read_image(image_path, mask_shape=mask.labels.shape, axes=axes)
    except ShapeMismatchError as exc:
        raise ShapeMismatchError(
            f"{exc.message}: image {image_path.name} and mask {mask_path.name} differ",
            image_path,
            hint=exc.hint,
        ) from None
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        nsp = mask.labels.ndim
        if len(spacing) != nsp or any(not np.isfinite(s) or s <= 0 for s in spacing):
            raise InputError(
                f"spacing {spacing} must give {nsp} positive values ({'ZYX'[-nsp:]})", image_path
            )
        image = ImageData(image.data, image.axes, spacing, image.path)
    return image, mask


# ---------------------------------------------------------------- sizes


def estimate_bytes(path: str | Path) -> int:
    """Decoded size in bytes, from the file's header only (the file size for unknown types)."""
    path = Path(path)
    values, itemsize = _header_size(path)
    if values is None:
        return path.stat().st_size
    return values * itemsize


def _header_size(path: Path) -> tuple[int | None, int]:
    """(number of values, bytes per value) from the header; (None, 1) when unknown."""
    if not path.is_file():
        raise InputError("file not found", path)
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return int(np.prod(series.shape, dtype=np.float64)), np.dtype(series.dtype).itemsize
        if suffix in NPY_SUFFIXES:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject:
                return None, 1
            return int(np.prod(shape, dtype=np.float64)), dtype.itemsize
        if suffix in PIL_SUFFIXES:
            from PIL import Image

            with Image.open(path) as im:
                width, height = im.size
                bands = len(im.getbands())
                per_band = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}.get(im.mode, 1)
            return width * height * bands, per_band
    except Exception as exc:  # noqa: BLE001 - reported as one clear message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the file: {reason}", path) from None
    return None, 1

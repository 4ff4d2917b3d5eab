"""Folders of images and masks: which file is whose mask (x.tif -> x_cp_masks.png, x_masks.tif,
x_mask.*, x_seg.npy, masks/x.*), and the default name of an image.

Names are matched exactly (case-sensitive): ``CELL.tif`` is paired with ``CELL_masks.tif``, never
with ``cell_masks.tif``. Two images with one stem (``x.tif`` and ``x.png``; ``CELL.tif`` and
``cell.tif`` on a disk that ignores case) are refused with the list: which mask is whose would
be a guess.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from svetlana.core.errors import InputError
from svetlana.core.io.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

_MASK_RE = re.compile(r"^(?P<stem>.+?)(?:_cp_masks|_masks|_mask)$", re.IGNORECASE)
_MASK_EXTS = ("tif", "tiff", "png", "npy")


def file_stem(path: str | Path) -> str:
    """A file's name without its image suffix (``x.ome.tif`` -> ``x``): the default image name."""
    path = Path(path)
    name = path.name
    lower = name.lower()
    for suffix in (".ome.tiff", ".ome.tif", *IMAGE_SUFFIXES):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_mask_name(path: Path) -> bool:
    return path.name.lower().endswith("_seg.npy") or bool(_MASK_RE.match(file_stem(path)))


def _listing(d: Path) -> dict[str, Path]:
    """Image files of ``d`` by exact name (hidden files skipped)."""
    if not d.is_dir():
        return {}
    return {
        p.name: p
        for p in d.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)
    }


def _case_insensitive(folder: Path) -> bool:
    """True when the file system of ``folder`` ignores the case of names (macOS, Windows)."""
    probe = next((p for p in folder.iterdir() if p.name.lower() != p.name.upper()), None)
    if probe is None:
        return False
    other = probe.with_name(probe.name.swapcase())
    try:
        return other.exists() and other.samefile(probe)
    except OSError:
        return False


def _mask_candidates(stem: str) -> list[str]:
    # Cellpose writes x_cp_masks.png by default and x_cp_masks.tif with --save_tif
    names = [f"{stem}_cp_masks.png"]
    names += [f"{stem}{tag}.{e}" for tag in ("_cp_masks", "_masks", "_mask") for e in _MASK_EXTS]
    return [*names, f"{stem}_seg.npy"]


def _by_name(files: dict[str, Path]) -> dict[str, Path]:
    """Files by name with the extension in lower case (``x_masks.TIF`` found as ``x_masks.tif``);
    the rest of the name stays exact."""
    out: dict[str, Path] = {}
    for name, p in sorted(files.items()):
        base, _, ext = name.rpartition(".")
        out.setdefault(f"{base}.{ext.lower()}", p)
    return out


def find_pairs(folder: str | Path, missing: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """Image/mask pairs in ``folder``, matched by exact name, sorted by image name.

    A mask for ``x.tif`` is the first of ``x_cp_masks.png``, ``x_cp_masks.*``, ``x_masks.*``,
    ``x_mask.*``, ``x_seg.npy``, ``masks/x.*``. Images without a mask are skipped (logged, and
    appended to ``missing`` when given). Images sharing a stem are refused (``InputError``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", folder)
    here = _listing(folder)
    masks_dir = _by_name(_listing(folder / "masks"))
    images = sorted((p for p in here.values() if not _is_mask_name(p)), key=lambda p: p.name)
    fold = _case_insensitive(folder)
    by_stem: dict[str, list[Path]] = {}
    for p in images:
        stem = file_stem(p)
        by_stem.setdefault(stem.lower() if fold else stem, []).append(p)
    clashes = [ps for ps in by_stem.values() if len(ps) > 1]
    if clashes:
        listed = "; ".join(", ".join(p.name for p in ps) for ps in clashes)
        raise InputError(
            f"several images share a name, so which mask is whose cannot be told: {listed}",
            folder,
            hint="rename or move all but one of each (the image name is the file name without "
            "its extension)",
        )
    named = _by_name(here)
    pairs = []
    for path in images:
        stem = file_stem(path)
        found = next((named[c] for c in _mask_candidates(stem) if c in named), None)
        if found is None:
            found = next(
                (masks_dir[f"{stem}.{e}"] for e in _MASK_EXTS if f"{stem}.{e}" in masks_dir), None
            )
        if found is None:
            log.info("%s: no mask found beside it; skipped", path)
            if missing is not None:
                missing.append(path)
            continue
        pairs.append((path, found))
    return pairs

"""Folders of images and masks: which file is whose mask (x.tif -> x_cp_masks.png, x_masks.tif,
x_mask.*, x_seg.npy, masks/x.*), and the default name of an image."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from svetlana.core.errors import InputError
from svetlana.core.io.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

_MASK_RE = re.compile(r"^(?P<stem>.+?)(?:_cp_masks|_masks|_mask)$", re.IGNORECASE)


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


def find_pairs(folder: str | Path, missing: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """Image/mask pairs in ``folder``, matched by name, sorted by image name.

    A mask for ``x.tif`` is the first of ``x_cp_masks.png``, ``x_cp_masks.*``, ``x_masks.*``, ``x_mask.*``,
    ``x_seg.npy``, ``masks/x.*``. Images without a mask are skipped (logged, and appended to
    ``missing`` when given).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", folder)

    def listing(d: Path) -> dict[str, Path]:
        if not d.is_dir():
            return {}
        return {
            p.name.lower(): p
            for p in d.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.name.lower().endswith(IMAGE_SUFFIXES)
        }

    here = listing(folder)
    masks_dir = listing(folder / "masks")
    exts = [s.lstrip(".") for s in (".tif", ".tiff", ".png", ".npy")]
    pairs = []
    for _, path in sorted(here.items()):
        if _is_mask_name(path):
            continue
        stem = file_stem(path).lower()
        # Cellpose writes x_cp_masks.png by default and x_cp_masks.tif with --save_tif
        candidates = [f"{stem}_cp_masks.png"]
        candidates += [f"{stem}{tag}.{e}" for tag in ("_cp_masks", "_masks", "_mask") for e in exts]
        candidates += [f"{stem}_seg.npy"]
        found = next((here[c] for c in candidates if c in here), None)
        if found is None:
            found = next(
                (masks_dir[f"{stem}.{e}"] for e in exts if f"{stem}.{e}" in masks_dir), None
            )
        if found is None:
            log.info("%s: no mask found beside it; skipped", path)
            if missing is not None:
                missing.append(path)
            continue
        pairs.append((path, found))
    return sorted(pairs, key=lambda p: p[0].name)

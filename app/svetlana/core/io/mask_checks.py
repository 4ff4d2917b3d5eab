"""Is a "mask" really a label mask? An intensity image read as one (the image and its mask
swapped) is refused with the numbers that show it, before anything is added or predicted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana.core.errors import InputError

if TYPE_CHECKING:
    from svetlana.core.io.images import MaskData

# An intensity image read as a mask: every grey level becomes an "object" scattered over the
# whole image. Measured on the StarDist images and masks and on the generated scenes (2D, 3D,
# two channels): real masks have <= 1 % of ids in several pieces and >= 60 % background; their
# intensity images have 68-98 % of ids in several pieces, 0 % background and 100-1000 pieces
# per id. The thresholds sit far from both.
MAX_FRAGMENTED = 0.5  # share of ids made of several separate pieces
MIN_PIECES_PER_ID = 3.0  # ... with this many pieces per id on average
LOW_BACKGROUND = 0.02  # ... or almost no background
_CHECK_PIXELS = 4_000_000  # the check looks at a central crop of at most this many pixels


@dataclass(frozen=True)
class MaskStats:
    """What ``mask_stats`` measured on a label mask (or a central crop of a big one)."""

    ids: int
    fragmented: float  # share of ids made of several separate pieces (face connectivity)
    pieces_per_id: float
    background: float  # share of pixels that are 0
    tiny: float  # share of ids of at most 2 pixels

    @property
    def looks_like_intensities(self) -> bool:
        return (
            self.ids >= 2
            and self.fragmented > MAX_FRAGMENTED
            and (self.pieces_per_id >= MIN_PIECES_PER_ID or self.background < LOW_BACKGROUND)
        )


def _central_crop(labels: np.ndarray, max_pixels: int) -> np.ndarray:
    if labels.size <= max_pixels:
        return labels
    scale = (max_pixels / labels.size) ** (1 / labels.ndim)
    sl = []
    for n in labels.shape:
        m = max(1, int(n * scale))
        sl.append(slice((n - m) // 2, (n - m) // 2 + m))
    return labels[tuple(sl)]


def mask_stats(labels: np.ndarray) -> MaskStats:
    """How label-like ``labels`` is: fragmentation of ids, background, tiny ids."""
    from skimage.measure import label

    a = _central_crop(np.asarray(labels), _CHECK_PIXELS)
    fg = a > 0
    background = 1.0 - float(fg.mean()) if a.size else 1.0
    ids, areas = np.unique(a[fg], return_counts=True)
    if len(ids) == 0:
        return MaskStats(0, 0.0, 0.0, background, 0.0)
    pieces = label(a, background=0, connectivity=1)  # constant-value connected pieces
    n_pieces = int(pieces.max())
    if n_pieces == len(ids):  # the usual case: one piece per id
        return MaskStats(len(ids), 0.0, 1.0, background, float((areas <= 2).mean()))
    id_of_piece = np.zeros(n_pieces + 1, dtype=a.dtype)
    id_of_piece[pieces.ravel()] = a.ravel()
    _, per_id = np.unique(id_of_piece[1:], return_counts=True)
    return MaskStats(
        len(ids),
        float((per_id > 1).mean()),
        n_pieces / len(ids),
        background,
        float((areas <= 2).mean()),
    )


def check_label_mask(mask: MaskData, image_path: str | Path | None = None) -> None:
    """Refuse a "mask" that is an intensity image (e.g. the image and mask swapped)."""
    if mask.was_binary:
        return  # one foreground value, split into objects: a different, checked path
    check_label_array(mask.labels, mask.path, image_path)


def check_label_array(
    labels: Any, mask_path: str | Path, image_path: str | Path | None = None
) -> None:
    """``check_label_mask`` for a label array (numpy, or lazy: only a central crop is read)."""
    crop = np.asarray(_central_crop(labels, _CHECK_PIXELS))
    st = mask_stats(crop)
    if not st.looks_like_intensities:
        return
    swap = (
        f" Were the image and the mask swapped? The image comes first, then its mask "
        f"(here {Path(image_path).name} was given as the image)."
        if image_path is not None
        else ""
    )
    raise InputError(
        f"this does not look like a label mask: {st.fragmented:.0%} of its {st.ids} values are "
        f"scattered in several separate pieces ({st.pieces_per_id:.0f} pieces per value on "
        f"average) and {st.background:.0%} of the pixels are background, as in an intensity "
        f"image.{swap}",
        mask_path,
        hint="if it really is your label mask, add --force-mask; in the app, tick "
        "'Use the masks as they are'",
    )

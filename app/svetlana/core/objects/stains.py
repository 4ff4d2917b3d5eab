"""Colour deconvolution of brightfield RGB (H&E, IHC) into stains, measured like channels.

An RGB uint8 2D image (3 channels) is taken for brightfield: scikit-image's ``rgb2hed``
(Ruifrok & Johnston's haematoxylin/eosin/DAB optical densities) gives the haematoxylin and
eosin amounts per pixel, measured as two more channels (columns ``hema_...``, ``eosin_...``).
The DAB channel is left out: it is empty on H&E and a third of the cost.
"""

from __future__ import annotations

import numpy as np

STAINS = ("hematoxylin", "eosin")
PREFIXES = ("hema_", "eosin_")


def is_brightfield_rgb(image) -> bool:
    """Whether a channel-first image (numpy, or a lazy array) is 2D RGB uint8: then its stains
    are measured."""
    shape = tuple(getattr(image, "shape", ()))
    return len(shape) == 3 and shape[0] == 3 and np.dtype(image.dtype) == np.uint8


def stain_channels(image: np.ndarray) -> list[np.ndarray]:
    """Haematoxylin and eosin optical densities (float32, Y x X) of a ``(3, Y, X)`` RGB image."""
    from skimage.color import rgb2hed

    hed = rgb2hed(np.moveaxis(image, 0, -1))
    return [np.ascontiguousarray(hed[..., k], dtype=np.float32) for k in range(len(STAINS))]

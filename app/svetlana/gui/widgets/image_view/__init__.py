"""The image view, split by concept: view.py composes layers.py (channels, contrast, Z),
colours.py + tiles.py (the object overlay) and objects.py (picking, hover, sizes, focus)."""

from svetlana.gui.widgets.image_view.graphics import (
    CHANNEL_COLOURS,
    auto_levels,
    boundary_mask,
    channel_colours,
    hex_rgb,
    ramp,
)
from svetlana.gui.widgets.image_view.tiles import (
    LABEL_FILL_ALPHA,
    OUTLINE_RGBA,
    PRED_FILL_ALPHA,
    SELECTED_RGBA,
    TILE,
)
from svetlana.gui.widgets.image_view.view import ImageView

__all__ = [
    "CHANNEL_COLOURS", "LABEL_FILL_ALPHA", "OUTLINE_RGBA", "PRED_FILL_ALPHA", "SELECTED_RGBA",
    "TILE", "ImageView", "auto_levels", "boundary_mask", "channel_colours", "hex_rgb", "ramp",
]  # fmt: skip

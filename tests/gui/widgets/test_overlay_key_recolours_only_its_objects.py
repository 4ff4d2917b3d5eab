"""A class key recolours only the boxes of the objects it changed (the labelled one, the next
one highlighted), in place in their tiles; what is drawn is then exactly what a whole redraw of
every tile would draw."""

from __future__ import annotations

import numpy as np

from svetlana.gui.widgets.image_view import TILE


def _whole_redraw(overlay) -> dict:
    out = {}
    for ty, tx in overlay.items:
        lab = overlay.labels[ty : ty + TILE, tx : tx + TILE]
        edge = overlay.edge[ty : ty + TILE, tx : tx + TILE]
        out[(ty, tx)] = overlay._colours(lab, edge, _dash(lab.shape))
    return out


def _dash(shape):
    from svetlana.gui.widgets.image_view.tiles import _DASH

    return _DASH[: shape[0], : shape[1]]


def test_keys_redraw_only_the_changed_boxes_and_the_overlay_is_exact(project_window, qtbot):
    win, view, session = project_window, project_window.view, project_window.session
    overlay = view.overlay
    view.flush()
    redrawn: list[int] = []  # pixels recomputed per key
    real_rects, real_whole = overlay.refresh_rects, overlay.refresh

    def rects(r):
        redrawn.append(sum((y1 - y0) * (x1 - x0) for _tile, (y0, y1, x0, x1) in r))
        real_rects(r)

    def whole(keys=None):
        redrawn.append(TILE * TILE * len(overlay.items if keys is None else keys))
        real_whole(keys)

    overlay.refresh_rects, overlay.refresh = rects, whole
    labelled = []
    for k in range(6):
        labelled.append(session.selection[0])
        qtbot.keyClick(win, "1" if k % 2 == 0 else "2")
        view.flush()
    overlay.refresh_rects, overlay.refresh = real_rects, real_whole
    assert all(session.project.annotations.get("cells", o) for o in labelled)
    h, w = overlay.labels.shape
    assert redrawn and max(redrawn) < h * w // 4  # boxes, not the whole overlay
    expected = _whole_redraw(overlay)
    for key, item in overlay.items.items():
        assert np.array_equal(item.image, expected[key]), f"tile {key} differs"

"""In the overlay a person's label and a model's prediction look different (solid outline and
stronger fill vs dashed outline and lighter fill), with a legend while predictions show."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from svetlana.gui.widgets.image_view import boundary_mask


def _predict_all(win, cls_index: int = 0) -> None:
    from svetlana.core.usecases.predict import ImagePrediction

    loaded = win.session.loaded()
    n = len(loaded.table)
    probs = np.zeros((n, 2), np.float32)
    probs[:, cls_index] = 0.9
    probs[:, 1 - cls_index] = 0.1
    pred = ImagePrediction("cells", loaded.table, probs, ("class 1", "class 2"), 1 - probs.max(1))
    win.session.set_predictions("m", {"cells": pred})


def _edge_drawn(win, obj) -> float:
    """The share of an object's outline pixels drawn in its outline colour (1: solid)."""
    view = win.view
    view.flush()
    labels = view.overlay.labels
    edge = boundary_mask(labels) & (labels == obj)
    rgba = np.zeros(labels.shape + (4,), np.uint8)
    for (ty, tx), item in view.overlay.items.items():
        tile = item.image
        rgba[ty : ty + tile.shape[0], tx : tx + tile.shape[1]] = tile
    line = view.overlay.line[view._index_of([obj])[0]]
    return float((rgba[edge] == line).all(axis=1).mean())


def test_labels_are_solid_predictions_dashed_and_lighter(project_window, qtbot):
    win = project_window
    qtbot.mouseClick(win.annotation_tab.chooser.mode_buttons["click"], Qt.MouseButton.LeftButton)
    assert not win.view.legend.isVisibleTo(win)  # nothing predicted: no legend
    ids = [int(i) for i in win.session.loaded().table.ids]
    mine, predicted = ids[0], ids[1]
    win.session.label([mine], "class 1")
    _predict_all(win, 0)  # both end as class 1: one labelled, one predicted
    assert win.view.legend.isVisibleTo(win)
    assert "your label" in win.view.legend.text() and "predicted" in win.view.legend.text()
    assert _edge_drawn(win, mine) == 1.0
    assert 0.2 < _edge_drawn(win, predicted) < 0.8
    fill = win.view.overlay.fill
    row_mine, row_pred = win.view._index_of([mine, predicted])
    assert tuple(fill[row_mine, :3]) == tuple(fill[row_pred, :3])  # the same class colour
    assert fill[row_pred, 3] < fill[row_mine, 3]  # lighter
    # the View menu's Predictions switch hides them, and the legend with them
    win.predictions_action.trigger()
    assert not win.view.legend.isVisibleTo(win)


def test_the_legend_explains_live_predictions_and_the_blue_outline(project_window, qtbot):
    """While live predictions tint the objects, the legend says what the light fill and the
    blue outline of the objects without a label mean."""
    from svetlana.gui.widgets.image_view import OUTLINE_RGBA

    win = project_window
    assert not win.view.legend.isVisibleTo(win)
    for key in "111222":  # label six objects as a user does, one key each (Random mode)
        qtbot.keyClick(win, key)

    def live_drawn():
        r = win.annotation_tab.live.result
        assert r is not None and r.fast is not None and not win.annotation_tab.live.running
        assert win.view.legend.isVisibleTo(win)

    qtbot.waitUntil(live_drawn, timeout=120_000)
    text = win.view.legend.text()
    assert "your label" in text and "live prediction" in text and "not labelled" in text
    assert "rgb({},{},{})".format(*OUTLINE_RGBA[:3]) in text  # the colour named is the one drawn
    labelled = win.session.project.annotations.for_image("cells")
    shown = set(win.session.selection)  # the current object is outlined in yellow
    other = next(
        int(i) for i in win.session.loaded().table.ids if int(i) not in set(labelled) | shown
    )
    win.view.flush()
    row = win.view._index_of([other])[0]
    assert tuple(win.view.overlay.line[row]) == OUTLINE_RGBA
    assert "blue" in win.view.legend.toolTip()

"""The image view's overlays: outlines, class colours, predictions, selection, large ids, channels."""

from __future__ import annotations

import numpy as np

from svetlana.gui.widgets.image_view import (
    TILE,
    auto_levels,
    boundary_mask,
    channel_colours,
    hex_rgb,
)


def _overlay_pixel(view, y, x):
    view.flush()
    tile = view.overlay.items[((y // TILE) * TILE, (x // TILE) * TILE)]
    return tuple(int(v) for v in tile.image[y % TILE, x % TILE])


def _inner_pixel(loaded, obj):
    ys, xs = np.nonzero(loaded.labels == obj)
    c = loaded.table.centroid[loaded.table.rows(obj)[0]]
    k = np.argmin((ys - c[0]) ** 2 + (xs - c[1]) ** 2)
    return int(ys[k]), int(xs[k])


def test_boundary_mask_marks_object_edges_only():
    lab = np.zeros((6, 6), np.int32)
    lab[1:5, 1:5] = 3
    edge = boundary_mask(lab)
    assert edge[1, 1] and edge[4, 2] and not edge[2, 2] and not edge[0, 0]


def test_helpers():
    assert channel_colours(1) == ["#ffffff"]
    assert len(set(channel_colours(3))) == 3
    assert hex_rgb("#ff0080") == (255, 0, 128)
    lo, hi = auto_levels(np.arange(1000))
    assert 0 <= lo < 10 and 990 < hi <= 999


def test_label_fills_object_with_class_colour_and_toggle(project_window):
    win = project_window
    view, s = win.view, win.session
    loaded = s.loaded()
    obj = int(loaded.table.ids[3])
    y, x = _inner_pixel(loaded, obj)
    assert _overlay_pixel(view, y, x)[3] == 0
    s.select(())
    s.label([obj], "class 2")
    colour = hex_rgb(s.project.annotations.class_info("class 2").colour)
    assert _overlay_pixel(view, y, x)[:3] == colour
    s.set_view_option("labels", False)
    assert _overlay_pixel(view, y, x)[3] == 0
    s.set_view_option("labels", True)
    s.set_view_option("outlines", False)
    edge_y, edge_x = np.argwhere(boundary_mask(loaded.labels) & (loaded.labels != obj))[0]
    assert _overlay_pixel(view, int(edge_y), int(edge_x))[3] == 0


def test_predictions_honour_max_confidence_and_hidden_ids(project_window):
    from svetlana.core.usecases.predict import ImagePrediction

    win = project_window
    view, s = win.view, win.session
    s.select(())
    loaded = s.loaded()
    n = len(loaded.table)
    probs = np.zeros((n, 2), np.float32)
    probs[:, 0] = np.where(np.arange(n) % 2 == 0, 0.95, 0.3)
    probs[:, 1] = 1 - probs[:, 0]
    s.set_predictions(
        "m", {"cells": ImagePrediction("cells", loaded.table, probs, ("class 1", "class 2"))}
    )
    sure, unsure = int(loaded.table.ids[0]), int(loaded.table.ids[1])
    ps, pu = _inner_pixel(loaded, sure), _inner_pixel(loaded, unsure)
    c1 = hex_rgb(s.project.annotations.class_info("class 1").colour)
    c2 = hex_rgb(s.project.annotations.class_info("class 2").colour)
    assert _overlay_pixel(view, *ps)[:3] == c1
    assert _overlay_pixel(view, *pu)[:3] == c2
    s.set_view_option("max_confidence", 0.9)
    assert _overlay_pixel(view, *ps)[3] == 0 and _overlay_pixel(view, *pu)[:3] == c2
    s.set_view_option("hidden_ids", frozenset({unsure}))
    # a removed object (keep-classes preview) is darkened, its class colour gone
    assert _overlay_pixel(view, *pu)[:3] == (0, 0, 0) and _overlay_pixel(view, *pu)[3] > 0
    assert "predicted: class 2 (0.70) by m" in view.describe(unsure)


def test_selection_is_highlighted(project_window):
    win = project_window
    view, s = win.view, win.session
    loaded = s.loaded()
    obj = int(loaded.table.ids[7])
    ey, ex = np.argwhere(boundary_mask(loaded.labels) & (loaded.labels == obj))[0]
    s.select((obj,))
    assert _overlay_pixel(view, int(ey), int(ex)) == (255, 230, 0, 255)
    s.select(())
    assert _overlay_pixel(view, int(ey), int(ex)) != (255, 230, 0, 255)


def test_focus_object_zooms_on_it(project_window):
    win = project_window
    loaded = win.session.loaded()
    obj = int(loaded.table.ids[2])
    win.view.focus_object(obj)
    (x0, x1), (y0, y1) = win.view.viewbox.viewRange()
    cy, cx = loaded.table.centroid[loaded.table.rows(obj)[0]]
    assert x0 < cx < x1 and y0 < cy < y1
    assert x1 - x0 < loaded.labels.shape[1] / 2


def test_huge_sparse_ids_are_remapped(window, tmp_path):
    import tifffile

    from svetlana.core.usecases.setup import create_project

    lab = np.zeros((64, 64), np.uint32)
    lab[5:20, 5:20] = 4_000_000_000
    lab[30:50, 30:50] = 7
    img = (lab > 0).astype(np.uint16) * 1000
    tifffile.imwrite(tmp_path / "i.tif", img)
    tifffile.imwrite(tmp_path / "m.tif", lab)
    window.set_project(
        create_project(
            tmp_path / "big", [(tmp_path / "i.tif", tmp_path / "m.tif", "i")], ["a", "b"]
        )
    )
    view = window.view
    assert view.object_at(10, 10) == 4_000_000_000
    window.session.label([4_000_000_000], "b")
    colour = hex_rgb(window.session.project.annotations.class_info("b").colour)
    assert _overlay_pixel(view, 12, 12)[:3] == colour


def test_multichannel_images_get_one_coloured_item_per_channel(window, tmp_path):
    import tifffile

    from svetlana.core.usecases.setup import create_project

    lab = np.zeros((48, 48), np.uint16)
    lab[10:20, 10:20] = 1
    img = np.random.default_rng(0).integers(0, 1000, (2, 48, 48)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "i.tif", img, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "m.tif", lab)
    window.set_project(
        create_project(tmp_path / "mc", [(tmp_path / "i.tif", tmp_path / "m.tif", "i")], ["a", "b"])
    )
    view = window.view
    assert len(view.channel_items) == 2
    view.set_channel_visible(1, False)
    assert not view.channel_items[1].isVisible()
    view.set_levels(0, 10, 500)
    assert tuple(view.channel_items[0].levels) == (10, 500)


def test_a_larger_than_memory_image_is_shown_as_its_stored_preview(window, tmp_path, monkeypatch):
    """An OME-Zarr image is shown as every k-th pixel (the preview level written when it was
    added), in full-resolution coordinates: objects are found, labelled and coloured."""
    from tests.conftest import blobs

    from svetlana.core.objects import lazy
    from svetlana.core.objects.lazy import write_ome_zarr
    from svetlana.core.project.bundle import Project

    monkeypatch.setattr(lazy, "PREVIEW_SIDE", 100)  # k = 3 for this 300x260 image
    image, labels = blobs(shape=(300, 260), n=20, seed=4, radius=9)
    for name, data, axes in (("i", image[np.newaxis], "CYX"), ("m", labels, "YX")):
        write_ome_zarr(
            tmp_path / f"{name}.ome.zarr", [(tuple(slice(0, s) for s in data.shape), data)],
            shape=data.shape, chunks=(1, 64, 64)[-data.ndim :], dtype=data.dtype, axes=axes,
        )  # fmt: skip
    project = Project.create(tmp_path / "big.svetlana", ["a", "b"])
    project.add_image(tmp_path / "i.ome.zarr", tmp_path / "m.ome.zarr", name="big")
    assert (tmp_path / "big.svetlana" / "images" / "big.ome.zarr" / "1").is_dir()
    window.set_project(project)
    view = window.view
    assert view.channel_items[0].image.shape == (100, 87)  # the preview, not 300x260
    view.fit()
    (x0, x1), (y0, y1) = view.viewbox.viewRange()
    assert x1 >= 260 and y1 >= 300  # the whole image, in its own pixels
    table = window.session.loaded().table
    obj = int(table.ids[5])
    cy, cx = table.centroid[table.rows(obj)[0]]
    assert view.object_at(cx, cy) == obj
    window.session.label([obj], "b")
    colour = hex_rgb(window.session.project.annotations.class_info("b").colour)
    assert _overlay_pixel(view, int(cy) // 3, int(cx) // 3)[:3] == colour

"""The object patch and the gallery show the image's contrast: a dim object looks dim (its
brightness can be judged); stretching each object's contrast is an option."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from tests.conftest import blobs, write_pair

LEFT = Qt.MouseButton.LeftButton


def _grey(pixmap) -> np.ndarray:
    img = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_Grayscale8)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8).reshape(h, bpl)[:, :w].astype(float)


def _centre(pixmap) -> float:
    g = _grey(pixmap)
    h, w = g.shape
    return float(g[h // 2 - 3 : h // 2 + 3, w // 2 - 3 : w // 2 + 3].mean())


@pytest.fixture
def bright_and_dim(window, tmp_path, qtbot):
    """A project of discs alternately bright (+400) and dim (+60) on a background of 100."""
    from svetlana.core.usecases.setup import create_project

    image, labels = blobs(shape=(128, 128), n=12, radius=6)
    ip, mp = write_pair(tmp_path / "in", "discs", image, labels)
    window.set_project(create_project(tmp_path / "d.svetlana", [(ip, mp, "discs")], ["a", "b"]))
    ids = sorted(int(i) for i in np.unique(labels) if i)
    return window, ids[0], ids[1]  # k = 0 bright, k = 1 dim (tests/conftest.py: blobs)


def _preview_of(win, qtbot, obj) -> float:
    tab = win.annotation_tab
    tab.go_to(obj)
    qtbot.waitUntil(
        lambda: (
            tab.current_panel.preview.pixmap() is not None
            and not tab.current_panel.preview.pixmap().isNull()
        )
    )
    tab.current_panel.timer.stop()
    tab.current_panel.update_preview()
    return _centre(tab.current_panel.preview.pixmap())


def test_a_dim_object_looks_dimmer_than_a_bright_one_unless_stretched(bright_and_dim, qtbot):
    win, bright, dim = bright_and_dim
    tab = win.annotation_tab
    assert not tab.current_panel.stretch.isChecked()  # the image's contrast by default
    b, d = _preview_of(win, qtbot, bright), _preview_of(win, qtbot, dim)
    assert b > d + 60, (b, d)
    qtbot.mouseClick(tab.current_panel.stretch, LEFT)
    assert tab.current_panel.stretch.isChecked()
    b2, d2 = _preview_of(win, qtbot, bright), _preview_of(win, qtbot, dim)
    assert abs(b2 - d2) < 40 and d2 > d + 60, (b2, d2, d)  # each fills its own range


def test_gallery_thumbnails_follow_the_same_contrast(bright_and_dim, qtbot):
    from svetlana.gui.dialogs.gallery import RANDOM

    win, bright, dim = bright_and_dim
    tab = win.annotation_tab
    qtbot.mouseClick(tab.gallery_button, LEFT)
    gallery = tab.gallery
    qtbot.waitExposed(gallery)
    gallery.set_source(RANDOM)

    def tile(obj) -> float:
        return _centre(gallery.tiles[gallery._page_ids().index(obj)].pixmap())

    assert tile(bright) > tile(dim) + 60
    qtbot.mouseClick(tab.current_panel.stretch, LEFT)
    assert abs(tile(bright) - tile(dim)) < 40
    gallery.close()

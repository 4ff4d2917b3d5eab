"""On a big image the live preview tints the objects in view (plus the labelled ones and a
counting sample) and says its counts are estimated; a zoom moves it with the view."""

from __future__ import annotations

import pytest
from tests.gui.tabs.annotate.test_hitl import press_labels, truth_of, wait_live

import svetlana.core.usecases.live_preview as lp

pytestmark = pytest.mark.gui


@pytest.fixture
def small_is_big(monkeypatch):
    """The 30-object image counts as big (set before the window opens it)."""
    monkeypatch.setattr(lp, "FULL_MAX_OBJECTS", 10)
    monkeypatch.setattr(lp, "SAMPLE_TILES", 1)
    monkeypatch.setattr(lp, "SAMPLE_TILE", 40)


def test_a_big_images_preview_covers_the_view_not_the_slide(small_is_big, project_window, qtbot):
    win, tab = project_window, project_window.annotation_tab
    truth = truth_of()
    labelled = press_labels(qtbot, win, 8, truth)
    if len({truth[o] for o in labelled}) < 2:
        pytest.skip("the random order gave one class in 8 labels")
    wait_live(qtbot, tab, 8)
    assert "estimated from a sample" in tab.live_box.summary.text()

    table = win.session.project.load(win.session.current_image).table
    sample = lp.sample_ids(table, win.session.project.sampling_seed)
    win.view.viewbox.setRange(xRange=(0, 80), yRange=(0, 80), padding=0)  # zoom on a corner
    region = tab._visible_region()
    view = lp.in_view(table, region)
    allowed = set(view.tolist()) | set(labelled) | set(sample.tolist())
    assert len(allowed) < len(table.ids)

    def follows():
        preview = win.session.view_options["live"]
        assert preview is not None and not tab.live.running
        shown = set(preview.ids.tolist())
        assert shown <= allowed and set(view.tolist()) <= shown

    qtbot.waitUntil(follows, timeout=120_000)
    assert len(win.session.view_options["live"].ids) < len(table.ids)

"""The Results panel: counts/fractions per class per image and a measurement per class, from the
final classes, computed in a worker, saved as PNG/SVG + CSV."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import Qt
from tests.gui.projects import N_OBJECTS, predict_clicked

from svetlana.core.io.csvsafe import read_dicts
from svetlana.core.objects.measurements import measure_objects

pytestmark = pytest.mark.usefixtures("shown_errors")


def refreshed(qtbot, panel):
    with qtbot.waitSignal(panel.updated, timeout=60000):
        job = panel.refresh()
        assert job is not None and job.running  # the work is in a worker, not in this call
    return panel


def test_counts_follow_the_final_classes_and_a_correction(qtbot, prediction_tab, trained_session):
    predict_clicked(qtbot, prediction_tab)
    panel = refreshed(qtbot, prediction_tab.results_panel)
    final = prediction_tab.result.final_classes()["cells"]
    c = panel.counts
    assert c.images == ("cells",) and c.class_names == final.class_names
    assert c.counts.tolist() == [[final.counts()[n] for n in c.class_names]]
    assert c.counts.sum() == N_OBJECTS
    np.testing.assert_allclose(c.fractions.sum(axis=1), 1.0)
    # The bars drawn are these numbers (one bar item per class).
    bars = [
        i for i in panel.counts_plot.plotItem.items if hasattr(i, "opts") and "height" in i.opts
    ]
    assert sorted(float(b.opts["height"][0]) for b in bars) == sorted(c.counts[0].tolist())

    # A correction moves one object to the user's class, in the panel too.
    pred = trained_session.predictions["cells"]
    row = int(np.flatnonzero(final.source == "model")[0])
    obj = int(pred.ids[row])
    model_class = final.class_names[int(final.index[row]) - 1]
    other = next(n for n in final.class_names if n != model_class)
    before = dict(zip(c.class_names, c.counts[0].tolist(), strict=True))
    trained_session.label([obj], other)
    panel = refreshed(qtbot, prediction_tab.results_panel)
    after = dict(zip(panel.counts.class_names, panel.counts.counts[0].tolist(), strict=True))
    assert after[other] == before[other] + 1 and after[model_class] == before[model_class] - 1


def test_measurement_per_class_is_each_objects_value(qtbot, prediction_tab, trained_session):
    predict_clicked(qtbot, prediction_tab)
    panel = refreshed(qtbot, prediction_tab.results_panel)
    assert panel.measurement.currentText() == "area"
    loaded = trained_session.project.load("cells")
    m = measure_objects(loaded.image, loaded.labels)
    area = dict(zip(m.ids.tolist(), m.values[:, m.names.index("area")].tolist(), strict=True))
    v = panel.values
    final = prediction_tab.result.final_classes()["cells"]
    names = final.names()
    assert len(v.values) == N_OBJECTS
    for obj, cls, value in zip(v.ids, v.classes, v.values, strict=True):
        assert value == pytest.approx(area[int(obj)])
        assert v.class_names[cls] == names[int(np.flatnonzero(final.ids == obj)[0])]
    assert sum(int(v.histogram(k).sum()) for k in range(len(v.class_names))) == N_OBJECTS
    # Another measurement redraws from the same objects, without a new job.
    panel.measurement.setCurrentText("ch0_mean")
    assert panel.values.measurement == "ch0_mean" and len(panel.values.values) == N_OBJECTS


def test_charts_save_as_png_and_svg_with_their_data(
    qtbot, prediction_tab, trained_session, tmp_path
):
    predict_clicked(qtbot, prediction_tab)
    panel = refreshed(qtbot, prediction_tab.results_panel)
    panel.resize(400, 500)
    png, csv_path = panel.save_counts(tmp_path / "counts.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with csv_path.open(newline="") as f:
        rows = list(read_dicts(f))
    c = panel.counts
    assert [(r["class"], int(r["count"])) for r in rows] == list(
        zip(c.class_names, c.counts[0].tolist(), strict=True)
    )
    assert sum(float(r["fraction"]) for r in rows) == pytest.approx(1.0, abs=1e-5)
    svg, values_csv, bins_csv = panel.save_values(tmp_path / "area.svg")
    assert "<svg" in svg.read_text()[:500]
    with values_csv.open(newline="") as f:
        values = list(read_dicts(f))
    assert len(values) == N_OBJECTS and list(values[0])[3].startswith("area")
    assert {float(r[list(r)[3]]) for r in values} == set(panel.values.values.tolist())
    with bins_csv.open(newline="") as f:
        assert sum(int(r["objects"]) for r in read_dicts(f)) == N_OBJECTS


def test_updates_by_itself_when_shown_and_predictions_change(
    qtbot, prediction_tab, trained_session
):
    panel = prediction_tab.results_panel
    prediction_tab.show()
    qtbot.mouseClick(prediction_tab.results_button, Qt.MouseButton.LeftButton)
    assert (
        prediction_tab.results_window.isVisible() and prediction_tab.results_window.width() >= 900
    )
    assert panel.counts is None
    with qtbot.waitSignal(panel.updated, timeout=60000):
        predict_clicked(qtbot, prediction_tab)
    assert panel.counts is not None and panel.counts.counts.sum() == N_OBJECTS
    trained_session.set_predictions(None, {})
    qtbot.waitUntil(lambda: panel.counts is None, timeout=5000)
    assert not panel.save_counts_button.isEnabled()
    prediction_tab.shutdown()

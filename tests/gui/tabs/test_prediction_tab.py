"""The Prediction tab: predicts in the background, counts, filters, corrections, explain, export."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import Qt
from tests.gui.projects import N_OBJECTS, predict_clicked

from svetlana.core.ml.training import TrainingConfig
from svetlana.core.usecases import predict as predicting
from svetlana.core.usecases.train import train_project
from svetlana.gui.tabs.predict import PredictionTab

pytestmark = pytest.mark.usefixtures("shown_errors")  # a dialog would block; conftest records it


@pytest.fixture
def session(trained_session):
    return trained_session


@pytest.fixture
def tab(prediction_tab):
    return prediction_tab


def test_predict_this_image_shows_counts(qtbot, tab, session):
    assert tab.selected_model() == "model-1"
    changed = []
    session.predictionsChanged.connect(lambda: changed.append(1))
    assert predict_clicked(qtbot, tab) == "model-1"
    assert changed and session.prediction_model == "model-1"
    pred = session.predictions["cells"]
    assert len(pred.ids) == N_OBJECTS
    counts = tab.counts.counts(1)
    # The counts are the classes an export writes: the label where there is one.
    labels = session.project.annotations.for_image("cells")
    expected = dict.fromkeys(pred.class_names, 0)
    for i, k in zip(pred.ids, pred.class_index, strict=True):
        lab = labels.get(int(i))
        expected[lab.class_name if lab else pred.class_names[k - 1]] += 1
    assert counts == expected and sum(counts.values()) == N_OBJECTS
    assert "model-1" in tab.shown_model.text() and "Stale" not in tab.shown_model.text()
    assert not session.busy
    # "This image" predictions are saved, and shown again when the project is reopened
    saved = session.project.predictions_dir / "model-1"
    assert (saved / "cells_classes.tif").is_file() and (saved / "predictions.csv").is_file()
    path = session.project.path
    session.close_project()
    session.open_project(path)
    session.set_current_image("cells")
    again = session.predictions["cells"]
    assert session.prediction_model == "model-1"
    np.testing.assert_allclose(again.probs, pred.probs, atol=1e-5)


def test_predict_all_images_saves_in_the_bundle(qtbot, tab, session):
    predict_clicked(qtbot, tab, "all")
    out = session.project.predictions_dir / "model-1"
    assert (out / "predictions.csv").is_file() and (out / "cells_classes.tif").is_file()
    classes = tifffile.imread(out / "cells_classes.tif")
    assert classes.shape == (256, 256) and set(np.unique(classes)) <= {0, 1, 2}


def test_images_are_read_in_the_worker_from_a_read_only_view(qtbot, tab, session, monkeypatch):
    """Predicting never reads images on the GUI thread nor the live project (the user keeps
    labelling meanwhile)."""
    import threading

    seen = []
    real = predicting.plan_prediction

    def spy(project, *a, **k):
        seen.append((threading.current_thread() is threading.main_thread(), project))
        return real(project, *a, **k)

    monkeypatch.setattr(predicting, "plan_prediction", spy)
    predict_clicked(qtbot, tab, "all")
    [(on_main, project)] = seen
    assert not on_main and project is not session.project and project.readonly
    assert (session.project.predictions_dir / "model-1" / "predictions.csv").is_file()
    assert session.predictions  # shown in the window


def test_cancel_changes_nothing(qtbot, tab, session, shown_errors):
    tab.set_scope("all")
    job = tab.run_prediction()
    job.cancel()
    with qtbot.waitSignal(tab.predictionFinished, timeout=30000) as blocker:
        pass
    assert blocker.args == [""]
    assert session.predictions == {}
    assert not (session.project.predictions_dir / "model-1").exists()
    assert "Cancelled" in tab.status.text()
    assert shown_errors == []


def test_confidence_filter_sets_the_view_option(qtbot, tab, session):
    predict_clicked(qtbot, tab)
    tab.confidence.setValue(60)
    assert session.view_options["max_confidence"] == pytest.approx(0.6)
    pred = session.predictions["cells"]
    assert f"{int((pred.confidence <= 0.6).sum())} of {N_OBJECTS}" in tab.confidence_label.text()


def test_a_correction_offers_retrain(qtbot, tab, session):
    predict_clicked(qtbot, tab)
    assert tab.retrain_button.isHidden()
    pred = session.predictions["cells"]
    obj = int(pred.ids[0])
    wrong = pred.class_names[2 - int(pred.class_index[0])]  # the other class
    session.label([obj], wrong)
    assert not tab.retrain_button.isHidden()
    assert tab.corrections_label.text().startswith("1 correction")
    with qtbot.waitSignal(tab.retrainRequested, timeout=1000):
        qtbot.mouseClick(tab.retrain_button, Qt.MouseButton.LeftButton)


def test_export_writes_masks_and_csv(qtbot, tab, session, tmp_path):
    predict_clicked(qtbot, tab)
    files = tab.exports.export_to(tmp_path / "export")
    assert {f.name for f in files} == {"cells_classes.tif", "predictions.csv", "run.json"}
    with open(tmp_path / "export" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_OBJECTS and {r["class"] for r in rows} <= set(session.scene.class_names)


def test_explain_shows_a_heatmap(qtbot, tab, session):
    predict_clicked(qtbot, tab)
    obj = int(session.predictions["cells"].ids[3])
    session.select([obj])
    assert tab.explain_button.isEnabled()
    with qtbot.waitSignal(tab.explainFinished, timeout=30000):
        qtbot.mouseClick(tab.explain_button, Qt.MouseButton.LeftButton)
    heat = tab.explain_view.heatmap
    patch = session.project.models.card("model-1")["patch_shape"]
    assert heat is not None and list(heat.shape) == patch
    assert heat.min() >= 0 and heat.max() <= 1
    assert f"Object {obj}" in tab.explain_view.caption.text()


def test_folder_outside_the_project(qtbot, tab, session, tmp_path):
    before = sorted(p.name for p in session.src.iterdir())
    tab.folder.setText(str(session.src))
    tab.out_dir.setText(str(tmp_path / "out"))
    predict_clicked(qtbot, tab, "folder")
    assert sorted(p.name for p in session.src.iterdir()) == before
    assert (tmp_path / "out" / "predictions.csv").is_file()
    assert sum(tab.counts.counts(1).values()) == N_OBJECTS
    assert session.predictions == {}


@pytest.mark.slow
def test_folder_on_two_workers_gives_the_same_results(qtbot, tab, session, tmp_path):
    tab.folder.setText(str(session.src))
    tab.out_dir.setText(str(tmp_path / "one"))
    predict_clicked(qtbot, tab, "folder")
    one = (tmp_path / "one" / "predictions.csv").read_text()
    tab.workers.setValue(2)
    tab.out_dir.setText(str(tmp_path / "two"))
    with qtbot.waitSignal(tab.predictionFinished, timeout=300000):  # starts 2 processes
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "two" / "predictions.csv").read_text() == one
    assert sum(tab.counts.counts(1).values()) == N_OBJECTS


def test_no_model_is_a_plain_message(qtbot, labelled_session, shown_errors):
    w = PredictionTab(labelled_session)
    qtbot.addWidget(w)
    assert not w.run_button.isEnabled()
    assert w.run_prediction() is None
    assert "no trained model" in shown_errors[0]


def test_keep_these_classes_previews_and_exports_a_filtered_mask(qtbot, tab, session, tmp_path):
    """The dialog darkens what would be removed, counts kept/removed, and writes the mask."""
    predict_clicked(qtbot, tab)
    qtbot.mouseClick(tab.keep_button, Qt.MouseButton.LeftButton)
    dialog = tab.exports.keep_dialog
    assert dialog is not None and dialog.isVisible()
    pred = session.predictions["cells"]
    first = pred.class_names[0]
    labels = session.project.annotations.for_image("cells")

    def final(i, k):  # the user's label wins over the prediction
        return labels[i].class_name if i in labels else pred.class_names[k - 1]

    expected_removed = {
        int(i) for i, k in zip(pred.ids, pred.class_index, strict=True) if final(int(i), k) != first
    }
    assert dialog.keep() == [first]
    assert set(session.view_options["hidden_ids"]) == expected_removed
    assert dialog.preview()["cells"] == (N_OBJECTS - len(expected_removed), len(expected_removed))
    dialog.checks[pred.class_names[1]].setChecked(True)  # keep everything
    assert session.view_options["hidden_ids"] == frozenset()
    dialog.checks[pred.class_names[1]].setChecked(False)
    with qtbot.waitSignal(dialog.exported, timeout=60000) as written:  # in a worker
        dialog.export_to(tmp_path / "clean")
    summary = written.args[0]
    out = tifffile.imread(tmp_path / "clean" / "cells_filtered.tif")
    labels = session.project.load("cells").labels
    kept = set(np.unique(out)) - {0}
    assert kept == {int(i) for i in pred.ids} - expected_removed  # original ids, nothing else
    assert out.dtype == tifffile.imread(session.src / "cells_masks.tif").dtype
    assert np.array_equal(out[out > 0], labels[out > 0])
    assert summary.removed == len(expected_removed)
    dialog.close()
    assert session.view_options["hidden_ids"] == frozenset()  # the view is restored


def _correct_first_object(session) -> tuple[int, str]:
    pred = session.predictions["cells"]
    obj = int(pred.ids[0])
    wrong = pred.class_names[2 - int(pred.class_index[0])]  # not what the model said
    session.label([obj], wrong)
    return obj, wrong


def test_the_overlay_and_the_export_show_the_corrected_class(qtbot, tab, session, tmp_path):
    """Issue 16: a corrected object is drawn, counted and exported with the user's class."""
    from svetlana.gui.widgets.image_view import ImageView

    view = ImageView(session)
    qtbot.addWidget(view)
    view.reload()
    predict_clicked(qtbot, tab)
    obj, wrong = _correct_first_object(session)
    session.set_view_option("labels", False)  # the prediction layer alone already shows it
    fill, _ = view._colour_tables()
    row = int(view._index_of([obj])[0])
    colour = session.project.annotations.class_info(wrong).colour
    assert tuple(fill[row, :3]) == tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    tab.exports.export_to(tmp_path / "e")
    with open(tmp_path / "e" / "predictions.csv", newline="") as f:
        row_of = {int(r["object"]): r for r in csv.DictReader(f)}
    assert (row_of[obj]["class"], row_of[obj]["source"]) == (wrong, "correction")
    assert row_of[obj]["predicted"] != wrong and row_of[obj]["model"] == "model-1"
    cm = tifffile.imread(tmp_path / "e" / "cells_classes.tif")
    mask = session.project.load("cells").labels
    assert set(np.unique(cm[mask == obj])) == {
        session.predictions["cells"].class_names.index(wrong) + 1
    }
    assert tab.counts.counts(1)[wrong] == sum(r["class"] == wrong for r in row_of.values())


def test_a_retrain_marks_the_shown_predictions_stale_and_clears_the_corrections(
    qtbot, tab, session
):
    predict_clicked(qtbot, tab)
    _correct_first_object(session)
    assert tab.corrections_label.text() == "1 correction since model-1"
    train_project(session.project, TrainingConfig(epochs=1))
    session.modelsChanged.emit()
    assert tab.selected_model() == "model-2" and session.prediction_model == "model-1"
    assert tab.result.predictions_stale()
    text = tab.shown_model.text()
    assert "Stale" in text and "model-1" in text and "model-2" in text
    assert "model-1" in tab.export_button.text()  # the export names what it writes
    assert tab.retrain_button.isHidden()  # the correction is in model-2 already
    predict_clicked(qtbot, tab)
    assert not tab.result.predictions_stale() and "Stale" not in tab.shown_model.text()
    assert session.prediction_model == "model-2"
    # Choosing the older model again marks model-2's predictions stale.
    tab.model.setCurrentIndex(tab.model.findData("model-1"))
    assert tab.result.predictions_stale()


def test_corrections_since_a_model_survive_reopening(qtbot, tab, session):
    predict_clicked(qtbot, tab)
    _correct_first_object(session)
    path = session.project.path
    session.close_project()  # the journal and CSV keep the label's time
    session.open_project(path)
    assert session.corrections_since("model-1") == 1
    tab.refresh_models(select_newest=True)
    assert tab.corrections_label.text() == "1 correction since model-1"


def test_reopening_shows_the_saved_predictions_of_the_model_chosen(qtbot, tab, session):
    predict_clicked(qtbot, tab, "all")  # model-1's predictions saved in the bundle
    train_project(session.project, TrainingConfig(epochs=1))  # model-2: newest, none saved
    path = session.project.path
    session.close_project()
    session.open_project(path)
    session.set_current_image("cells")
    tab.refresh_models(select_newest=True)
    assert tab.selected_model() == "model-2" and not session.predictions
    tab.model.setFocus()
    qtbot.keyClick(tab.model, Qt.Key.Key_Down)  # the Model box lists the newest first
    assert tab.selected_model() == "model-1"
    assert session.prediction_model == "model-1"
    assert len(session.predictions["cells"].ids) == N_OBJECTS
    assert "model-1" in tab.shown_model.text() and "Stale" not in tab.shown_model.text()

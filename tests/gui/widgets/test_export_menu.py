"""The Predict tab's Export menu: each entry writes what a user expects, off the GUI thread,
and a failure is a dialog naming the problem."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
import json
import threading

import pytest
from tests.gui.projects import N_OBJECTS, predict_clicked

from svetlana.core.usecases import export as core_export
from svetlana.core.usecases.train import train_project
from svetlana.gui.tabs.predict import PredictionTab
from svetlana.gui.tabs.predict import export as prediction_tab  # the exports of the Predict tab
from svetlana.gui.widgets.export_menu import BIOIMAGEIO, MASKS, OBJECTS, TABLE

pytestmark = pytest.mark.usefixtures("shown_errors")


@pytest.fixture
def session(trained_session):
    return trained_session


@pytest.fixture
def tab(qtbot, prediction_tab):
    predict_clicked(qtbot, prediction_tab)  # shown predictions only: nothing saved in the bundle
    return prediction_tab


def export_through_menu(qtbot, tab, monkeypatch, kind, folder):
    """What a user does: Export ▸ entry, pick a folder; returns the ExportDone (None if failed)."""
    picked = []

    def pick_folder(parent, title, start=""):
        picked.append(title)
        return str(folder)

    monkeypatch.setattr(prediction_tab, "choose_folder", pick_folder)
    tab.exports.refresh_menu()
    action = tab.export_menu.actions_by_kind[kind]
    assert action.isEnabled()
    with qtbot.waitSignal(tab.exportFinished, timeout=120000) as blocker:
        action.trigger()
    assert picked
    qtbot.waitUntil(lambda: not tab.session.busy)
    return blocker.args[0]


def final_class_of(tab) -> dict[int, str]:
    f = tab.result.final_classes()["cells"]
    return dict(zip(f.ids.tolist(), f.names(), strict=True))


def test_the_export_button_offers_the_four_exports(tab):
    assert tab.export_button.menu() is tab.export_menu and tab.export_button.isEnabled()
    tab.exports.refresh_menu()
    texts = [a.text() for a in tab.export_menu.actions()]
    assert texts[0].startswith("Class masks") and "model-1" in texts[3]
    assert any("GeoJSON" in t for t in texts) and any("CSV" in t for t in texts)
    assert all(a.isEnabled() for a in tab.export_menu.actions())


def test_class_masks_entry_writes_the_shown_classes(qtbot, tab, monkeypatch, tmp_path):
    import numpy as np
    import tifffile

    done = export_through_menu(qtbot, tab, monkeypatch, MASKS, tmp_path / "masks")
    assert {f.name for f in done.files} == {"cells_classes.tif", "predictions.csv", "run.json"}
    classes = tifffile.imread(tmp_path / "masks" / "cells_classes.tif")
    labels = tab.session.project.load("cells").labels
    final = tab.result.final_classes()["cells"]
    for obj, k in zip(final.ids.tolist(), final.index.tolist(), strict=True):
        assert set(np.unique(classes[labels == obj])) == {k}
    assert set(np.unique(classes[labels == 0])) == {0}


def test_measurement_table_has_every_object_with_its_shown_class(qtbot, tab, monkeypatch, tmp_path):
    # The label a person gave wins over the model, as in the counts and the overlay.
    labelled = dict(tab.session.project.annotations.for_image("cells"))
    done = export_through_menu(qtbot, tab, monkeypatch, TABLE, tmp_path / "table")
    assert done is not None and done.folder == tmp_path / "table"
    with open(tmp_path / "table" / "objects.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = final_class_of(tab)
    assert len(rows) == N_OBJECTS == len(expected)
    assert {int(r["object"]): r["class"] for r in rows} == expected
    some = next(iter(labelled))
    assert expected[some] == labelled[some].class_name
    assert all(r["p_" + r["predicted"]] for r in rows)  # the model's probabilities are there
    with open(tmp_path / "table" / "summary.csv", newline="") as f:
        summary = {r["class"]: int(r["count"]) for r in csv.DictReader(f)}
    assert summary == tab.counts.counts(1)
    assert "objects.csv" in done.message and str(tmp_path / "table") in tab.status.text()
    assert (
        tab.exports.last_export_box.isVisible()
        and "objects.csv" in tab.exports.last_export_box.text()
    )


def test_geojson_has_one_detection_per_object_with_its_class(qtbot, tab, monkeypatch, tmp_path):
    ran_on = []
    real = core_export.run_export

    def spy(plan, *args):
        ran_on.append(threading.current_thread() is threading.main_thread())
        return real(plan, *args)

    monkeypatch.setattr(core_export, "run_export", spy)  # what run_export_whole calls
    done = export_through_menu(qtbot, tab, monkeypatch, OBJECTS, tmp_path / "qupath")
    assert ran_on == [False]  # written in the worker, not on the GUI thread
    path = tmp_path / "qupath" / "cells.geojson"
    assert done.files == (path,)
    features = json.loads(path.read_text())["features"]
    expected = final_class_of(tab)
    got = {
        int(f["properties"]["name"]): f["properties"]["classification"]["name"] for f in features
    }
    assert got == expected
    assert {f["properties"]["objectType"] for f in features} == {"detection"}
    assert "Import objects" in done.message


def test_bioimageio_package_with_the_typed_author(qtbot, tab, monkeypatch, tmp_path):
    import yaml

    from svetlana.core.usecases.export_bioimageio import PackageInfo

    monkeypatch.setattr(
        prediction_tab, "ask_package_info", lambda _p: PackageInfo(authors=("Ada Lovelace",))
    )
    done = export_through_menu(qtbot, tab, monkeypatch, BIOIMAGEIO, tmp_path / "zoo")
    folder, zip_path = done.files
    assert zip_path.is_file() and zip_path.parent == tmp_path / "zoo"
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    assert rdf["authors"] == [{"name": "Ada Lovelace"}] and rdf["license"] == "CC-BY-4.0"
    assert (folder / rdf["weights"]["onnx"]["source"]).is_file()
    assert "bioimageio test" in done.message


def test_an_unusable_folder_is_a_dialog_and_nothing_is_written(
    qtbot, tab, monkeypatch, tmp_path, shown_errors
):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    assert export_through_menu(qtbot, tab, monkeypatch, TABLE, a_file) is None
    assert shown_errors and "folder" in shown_errors[-1] and a_file.read_text() == "mine"
    # Found only in the worker: a folder below a file. The dialog names the path.
    shown_errors.clear()
    assert export_through_menu(qtbot, tab, monkeypatch, OBJECTS, a_file / "sub") is None
    assert shown_errors and "results.txt" in shown_errors[-1]
    assert "Export failed" in tab.status.text() and tab.run_button.isEnabled()


def test_a_forest_model_has_no_package_entry_and_says_why(qtbot, session, shown_errors, tmp_path):
    train_project(session.project, kind="forest")
    session.modelsChanged.emit()
    tab = PredictionTab(session)
    qtbot.addWidget(tab)
    assert tab.selected_model() == "model-2"
    tab.exports.refresh_menu()
    entry = tab.export_menu.actions_by_kind[BIOIMAGEIO]
    assert not entry.isEnabled() and "forest" in entry.text()
    assert tab.export_menu.actions_by_kind[MASKS].isEnabled() is False  # nothing predicted yet
    assert tab.exports.start_export(BIOIMAGEIO, tmp_path / "zoo") is None
    assert shown_errors and "forest" in shown_errors[-1] and "export-table" in shown_errors[-1]
    assert not (tmp_path / "zoo").exists()


def test_the_package_dialog_gives_the_typed_authors_and_licence(qtbot):
    from svetlana.gui.widgets.export_menu import PackageInfoDialog

    dialog = PackageInfoDialog()
    qtbot.addWidget(dialog)
    assert dialog.license.text() == "CC-BY-4.0"  # the CLI's default, prefilled
    assert dialog.info().authors == ("Svetlana user",)
    dialog.authors.setText(" Ada Lovelace,  Pierre Weiss , ")
    dialog.license.setText("MIT")
    info = dialog.info()
    assert info.authors == ("Ada Lovelace", "Pierre Weiss") and info.license == "MIT"

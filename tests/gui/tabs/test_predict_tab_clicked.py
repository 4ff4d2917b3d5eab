"""The Predict tab clicked as a user does: the scope radios, Run, Cancel, the folder pickers,
the Export button's menu and the Results window's Save buttons. Each test checks what the user
relies on: files written and openable, the counts shown, a cancel that leaves nothing
half-written, a prediction of *This image* shown again after reopening."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import zipfile

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from tests.gui.modal import when_menu_opens

from svetlana.core.ml.training import TrainingConfig
from svetlana.core.project.bundle import Project
from svetlana.core.synthetic.easy import texture_scene
from svetlana.core.usecases import predict as predicting
from svetlana.core.usecases.train import train_project
from svetlana.gui.widgets import common as widgets

LEFT = Qt.MouseButton.LeftButton
N = 24  # objects per image
IMAGES = ("cells", "more")


def _scene_files(folder, name, seed):
    scene = texture_scene(n_objects=N, shape=(192, 192), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / f"{name}.tif", scene.image[0])
    tifffile.imwrite(folder / f"{name}_masks.tif", scene.labels)
    return scene


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-image project with labels and one small CNN (trained once per module)."""
    tmp = tmp_path_factory.mktemp("trained")
    src = tmp / "src"
    scenes = {name: _scene_files(src, name, seed) for seed, name in enumerate(IMAGES)}
    first = scenes["cells"]
    with Project.create(tmp / "p.svetlana", classes=list(first.class_names)) as project:
        for name in IMAGES:
            project.add_image(src / f"{name}.tif", src / f"{name}_masks.tif", name=name)
        changes = [
            ("cells", i, first.class_names[c]) for i, c in sorted(first.classes.items())[:16]
        ]
        project.annotations.apply_labels(changes, source="import")
        train_project(project, TrainingConfig(epochs=2))
    return tmp


@pytest.fixture
def win(window, trained, tmp_path, qtbot):
    shutil.copytree(trained / "p.svetlana", tmp_path / "p.svetlana")
    assert window.open_project(tmp_path / "p.svetlana")
    window.tabs.setCurrentWidget(window.prediction_tab)
    window.session.set_current_image("cells")
    window.src = trained / "src"
    return window


def run_clicked(qtbot, tab, timeout=60000):
    with qtbot.waitSignal(tab.predictionFinished, timeout=timeout) as done:
        qtbot.mouseClick(tab.run_button, LEFT)
    qtbot.waitUntil(lambda: not tab.session.busy)
    return done.args[0]


def shown_total(tab, column=1) -> int:
    return sum(tab.counts.counts(column).values())


def folder_answer(monkeypatch, *paths):
    """The folder picker answered as a user does: the folder's path typed, then Choose."""
    typed = iter(str(p) for p in paths)
    asked = []

    def user_types(dialog):
        asked.append(dialog.windowTitle())
        dialog.findChild(QLineEdit, "fileNameEdit").setText(next(typed))
        dialog.accept()
        return 1

    monkeypatch.setattr(widgets.FolderDialog, "exec", user_types)
    return asked


def export_clicked(qtbot, tab, entry: str, timeout=120000):
    """Export ▸ entry, clicked in the button's menu; returns the ExportDone (None: failed)."""
    qtbot.waitUntil(lambda: tab.export_button.isEnabled())
    seen = when_menu_opens(entry)
    with qtbot.waitSignal(tab.exportFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(tab.export_button, LEFT)
    assert seen.texts, f"no entry {entry!r} in the Export menu"
    qtbot.waitUntil(lambda: not tab.session.busy)
    return blocker.args[0]


def tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_this_image_is_saved_and_shown_again_after_reopening(win, qtbot):
    tab = win.prediction_tab
    qtbot.mouseClick(tab.scope_buttons["all"], LEFT)
    qtbot.mouseClick(tab.scope_buttons["image"], LEFT)
    assert tab.scope() == "image"
    assert run_clicked(qtbot, tab) == "model-1"
    assert set(win.session.predictions) == {"cells"}  # this image only
    assert shown_total(tab) == N
    before = tab.counts.counts(1)
    saved = win.session.project.predictions_dir / "model-1"
    mask = tifffile.imread(saved / "cells_classes.tif")
    assert mask.shape == (192, 192) and set(np.unique(mask)) <= {0, 1, 2}
    with open(saved / "predictions.csv", newline="") as f:
        assert len([r for r in csv.DictReader(f) if r["image"] == "cells"]) == N
    path = win.session.project.path
    win.session.close_project()
    assert win.open_project(path)
    win.tabs.setCurrentWidget(tab)
    win.session.set_current_image("cells")
    qtbot.waitUntil(lambda: "cells" in win.session.predictions)
    assert win.session.prediction_model == "model-1"
    assert tab.counts.counts(1) == before  # the same counts as before closing
    assert "model-1" in tab.shown_model.text()


def test_cancel_midway_keeps_the_previous_predictions_whole(win, qtbot, monkeypatch):
    tab = win.prediction_tab
    qtbot.mouseClick(tab.scope_buttons["all"], LEFT)
    run_clicked(qtbot, tab)
    saved = win.session.project.predictions_dir / "model-1"
    earlier = tree(saved)
    assert {"cells_classes.tif", "more_classes.tif", "predictions.csv"} <= set(earlier)
    first_done, go = threading.Event(), threading.Event()
    real = predicting.predict_loaded

    def one_then_wait(*a, **k):
        out = real(*a, **k)
        first_done.set()
        go.wait(20)
        return out

    monkeypatch.setattr(predicting, "predict_loaded", one_then_wait)
    with qtbot.waitSignal(tab.predictionFinished, timeout=60000) as finished:
        qtbot.mouseClick(tab.run_button, LEFT)
        qtbot.waitUntil(first_done.is_set, timeout=30000)  # one image of two predicted
        assert tab.cancel_button.isEnabled()
        qtbot.mouseClick(tab.cancel_button, LEFT)
        go.set()
    assert finished.args == [""]  # nothing predicted
    assert "Cancelled" in tab.status.text()
    assert tree(saved) == earlier  # the earlier run's files, byte for byte
    assert not list(saved.parent.glob(".*partial*"))  # no half-written folder left beside
    assert tab.run_button.isEnabled() and not tab.cancel_button.isEnabled()


def test_a_folder_picked_with_browse_is_predicted_beside_it(win, qtbot, monkeypatch, tmp_path):
    tab = win.prediction_tab
    src = tmp_path / "images"
    shutil.copytree(win.src, src)
    before = tree(src)
    qtbot.mouseClick(tab.scope_buttons["folder"], LEFT)
    assert tab.folder_browse.isEnabled()
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(src))
    qtbot.mouseClick(tab.folder_browse, LEFT)
    assert tab.folder.text() == str(src)
    out = tmp_path / "images-svetlana-model-1"
    assert tab.out_dir.text() == str(out)  # proposed beside the input folder
    folder_answer(monkeypatch, tmp_path / "results")
    qtbot.mouseClick(tab.out_browse, LEFT)  # the user prefers another folder
    assert tab.out_dir.text() == str(tmp_path / "results")
    run_clicked(qtbot, tab)
    out = tmp_path / "results"
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * N and {r["image"] for r in rows} == set(IMAGES)
    for name in IMAGES:
        assert tifffile.imread(out / f"{name}_classes.tif").shape == (192, 192)
    assert shown_total(tab) == 2 * N  # the counts shown are the folder's
    assert tree(src) == before  # the user's folder only read
    assert win.session.predictions == {}  # the project's view is not changed


def test_every_export_entry_writes_openable_files(win, qtbot, monkeypatch, tmp_path):
    tab = win.prediction_tab
    run_clicked(qtbot, tab)
    shown = tab.counts.counts(1)
    folder_answer(monkeypatch, *(tmp_path / n for n in ("masks", "table", "qupath", "zoo")))

    done = export_clicked(qtbot, tab, "Class masks")
    masks = tifffile.imread(tmp_path / "masks" / "cells_classes.tif")
    names = win.session.predictions["cells"].class_names
    labels = win.session.project.load("cells").labels
    counted = {n: len(np.unique(labels[masks == k + 1])) for k, n in enumerate(names)}
    assert counted == shown and done.folder == tmp_path / "masks"

    export_clicked(qtbot, tab, "Measurement table")
    with open(tmp_path / "table" / "summary.csv", newline="") as f:
        assert {r["class"]: int(r["count"]) for r in csv.DictReader(f)} == shown
    with open(tmp_path / "table" / "objects.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == N

    export_clicked(qtbot, tab, "Objects for QuPath")
    features = json.loads((tmp_path / "qupath" / "cells.geojson").read_text())["features"]
    got = [f["properties"]["classification"]["name"] for f in features]
    assert {n: got.count(n) for n in shown} == shown

    from svetlana.core.usecases.export_bioimageio import PackageInfo
    from svetlana.gui.widgets import export_menu

    monkeypatch.setattr(
        export_menu.PackageInfoDialog, "exec", lambda self: self.authors.setText("Ada") or 1
    )
    monkeypatch.setattr(export_menu.PackageInfoDialog, "info", lambda self: PackageInfo(("Ada",)))
    done = export_clicked(qtbot, tab, "bioimage.io")
    folder, zip_path = done.files
    with zipfile.ZipFile(zip_path) as z:
        assert "rdf.yaml" in z.namelist() and z.testzip() is None
    assert "Ada" in (folder / "rdf.yaml").read_text()
    assert str(tmp_path / "zoo") in tab.status.text()


def test_a_cancelled_export_leaves_the_earlier_export_whole(win, qtbot, monkeypatch, tmp_path):
    """Export ▸ Class masks into a folder that holds an earlier export, cancelled after the
    first class mask: the folder keeps the earlier export, nothing half-written beside it."""
    from svetlana.core.usecases import results

    tab = win.prediction_tab
    qtbot.mouseClick(tab.scope_buttons["all"], LEFT)
    run_clicked(qtbot, tab)
    out = tmp_path / "masks"
    folder_answer(monkeypatch, out, out)
    export_clicked(qtbot, tab, "Class masks")
    earlier = tree(out)
    assert {"cells_classes.tif", "more_classes.tif", "predictions.csv"} <= set(earlier)
    first_done, go = threading.Event(), threading.Event()
    real = results.write_class_mask

    def one_then_wait(*a, **k):
        path = real(*a, **k)
        first_done.set()
        go.wait(20)
        return path

    monkeypatch.setattr(results, "write_class_mask", one_then_wait)
    seen = when_menu_opens("Class masks")
    with qtbot.waitSignal(tab.exportFinished, timeout=60000) as finished:
        qtbot.mouseClick(tab.export_button, LEFT)
        qtbot.waitUntil(first_done.is_set, timeout=30000)  # one class mask of two written
        qtbot.mouseClick(tab.cancel_button, LEFT)
        go.set()
    assert seen.texts and finished.args == [None]
    qtbot.waitUntil(lambda: not win.session.busy)
    assert tree(out) == earlier
    assert not list(tmp_path.glob(".*partial*"))
    assert "cancelled" in tab.status.text().lower()


def test_the_results_window_saves_each_chart_with_its_data(win, qtbot, monkeypatch, tmp_path):
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QFileDialog

    tab = win.prediction_tab
    qtbot.mouseClick(tab.scope_buttons["all"], LEFT)
    run_clicked(qtbot, tab)
    panel = tab.results_panel
    with qtbot.waitSignal(panel.updated, timeout=60000):
        qtbot.mouseClick(tab.results_button, LEFT)
    assert tab.results_window.isVisible()
    answers = iter([str(tmp_path / "counts.png"), str(tmp_path / "area.svg")])
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (next(answers), "PNG image (*.png)")
    )
    qtbot.mouseClick(panel.save_counts_button, LEFT)
    image = QImage(str(tmp_path / "counts.png"))
    assert not image.isNull() and image.width() >= 800
    with open(tmp_path / "counts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    total = {}
    for r in rows:
        total[r["class"]] = total.get(r["class"], 0) + int(r["count"])
    assert total == tab.counts.counts(2)  # the totals shown in the tab (all predicted)
    qtbot.mouseClick(panel.save_values_button, LEFT)
    assert (tmp_path / "area.svg").read_text().lstrip().startswith("<?xml")
    with open(tmp_path / "area.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2 * N  # every object's value
    assert "Saved" in panel.note.text()


def test_keep_these_classes_failing_midway_leaves_the_earlier_masks_whole(
    win, qtbot, monkeypatch, tmp_path, shown_errors
):
    """Keep these classes ▸ Export into the folder of an earlier export; the disk fails after
    the first mask: the earlier masks stay as they were, nothing half-written beside them."""
    from svetlana.core.usecases import export_masks

    tab = win.prediction_tab
    qtbot.mouseClick(tab.scope_buttons["all"], LEFT)
    run_clicked(qtbot, tab)
    qtbot.mouseClick(tab.keep_button, LEFT)
    dialog = tab.exports.keep_dialog
    out = tmp_path / "clean"
    folder_answer(monkeypatch, out, out)
    with qtbot.waitSignal(dialog.exported, timeout=60000):  # written in the background
        qtbot.mouseClick(dialog.export_button, LEFT)
    qtbot.waitUntil(lambda: not win.session.busy)
    earlier = tree(out)
    assert {"cells_filtered.tif", "more_filtered.tif"} <= set(earlier)
    kept = tifffile.imread(out / "cells_filtered.tif")
    assert 0 < len(np.unique(kept)) - 1 < N  # some objects kept, some removed
    real, calls, on_main = export_masks.write_mask, [], []

    def disk_full_on_the_second(path, labels):
        calls.append(path)
        on_main.append(threading.current_thread() is threading.main_thread())
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        return real(path, labels)

    monkeypatch.setattr(export_masks, "write_mask", disk_full_on_the_second)
    other = win.session.predictions["cells"].class_names[1]
    qtbot.mouseClick(dialog.checks[other], LEFT)  # this time every class is kept
    with qtbot.waitSignal(dialog.exported, timeout=60000) as written:
        qtbot.mouseClick(dialog.export_button, LEFT)
    assert written.args == [None] and on_main == [False, False]  # written in a worker
    qtbot.waitUntil(lambda: not win.session.busy)
    assert len(calls) == 2 and shown_errors and "disk is full" in shown_errors[-1]
    assert tree(out) == earlier
    assert not list(tmp_path.glob(".*partial*"))
    dialog.close()


def test_an_export_into_a_folder_of_the_users_files_is_refused_and_leaves_them(
    win, qtbot, monkeypatch, tmp_path, shown_errors
):
    """The export replaces its folder whole: a folder holding the user's own files is refused
    (said before any work), never emptied."""
    tab = win.prediction_tab
    run_clicked(qtbot, tab)
    mine = tmp_path / "experiment"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    folder_answer(monkeypatch, mine)
    assert export_clicked(qtbot, tab, "Measurement table") is None
    assert shown_errors and "left alone" in shown_errors[-1] and "experiment" in shown_errors[-1]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "my notes"

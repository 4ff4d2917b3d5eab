"""The whole loop a biologist does, driven like a person: keys, clicks, buttons.

New project from a Cellpose-style pair -> label 50 objects from the keyboard -> train -> predict
-> correct 3 objects by clicking -> retrain -> export.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from svetlana.core.synthetic.easy import texture_scene
from svetlana.gui.dialogs.new_project import NewProjectDialog


@pytest.mark.slow
def test_whole_loop_from_cellpose_pair_to_export(window, qtbot, tmp_path, shown_errors):
    # A Cellpose-style pair: x.tif with x_cp_masks.png (16-bit PNG labels)
    scene = texture_scene(n_objects=70, shape=(384, 384), seed=3)
    data = tmp_path / "plate"
    data.mkdir()
    tifffile.imwrite(data / "well1.tif", scene.image[0])
    Image.fromarray(scene.labels.astype(np.uint16)).save(data / "well1_cp_masks.png")

    # New project: the folder is paired by name, shown in the preview table
    dialog = NewProjectDialog(window)
    assert dialog.set_folder(data) == 1
    assert [(p[0].name, p[1].name, p[2]) for p in dialog.pairs()] == [
        ("well1.tif", "well1_cp_masks.png", "well1")
    ]
    dialog.set_destination(tmp_path / "screen")
    dialog.set_class_names(list(scene.class_names))
    dialog.accept()  # reads the images in a worker, then creates the bundle
    qtbot.waitUntil(lambda: dialog.project is not None or bool(shown_errors), timeout=30_000)
    assert not shown_errors and dialog.project is not None
    window.set_project(dialog.project)
    session = window.session
    store = session.project.annotations
    keys = {name: store.class_info(name).key for name in scene.class_names}

    # Label 50 objects from the keyboard in Random mode (the right class key each time)
    tab = window.annotation_tab
    tab.set_mode("random")
    for _ in range(50):
        obj = tab.current
        qtbot.keyClick(window, keys[scene.class_names[scene.classes[obj]]])
    assert len(store) == 50
    assert sum(store.counts().values()) == 50

    # Train (fewer epochs than the default, to keep the test quick) and wait for the worker
    window.tabs.setCurrentWidget(window.training_tab)
    window.training_tab.epochs.setValue(40)
    with qtbot.waitSignal(window.training_tab.trainingFinished, timeout=120_000) as done:
        qtbot.mouseClick(window.training_tab.train_button, Qt.MouseButton.LeftButton)
    assert done.args[0] == "model-1" and not shown_errors

    # Predict this image
    ptab = window.prediction_tab
    window.tabs.setCurrentWidget(ptab)
    ptab.refresh_models(select_newest=True)
    with qtbot.waitSignal(ptab.predictionFinished, timeout=60_000):
        qtbot.mouseClick(ptab.run_button, Qt.MouseButton.LeftButton)
    pred = session.predictions["well1"]
    unlabelled = [int(i) for i in pred.ids if store.get("well1", int(i)) is None]
    right = sum(
        pred.class_names[pred.class_index[pred.table.rows(i)[0]] - 1]
        == scene.class_names[scene.classes[i]]
        for i in unlabelled
    )
    assert right / len(unlabelled) >= 0.9  # the model learned the textures

    # Correct 3 objects by clicking them and pressing a class key other than the predicted one
    tab.set_mode("click")
    loaded = session.loaded()
    targets = unlabelled[:3]
    for obj in targets:
        window.view.focus_object(obj)
        QApplication.processEvents()
        c = loaded.table.centroid[loaded.table.rows(obj)[0]]
        pos = window.view.map_image_to_widget(float(c[-1]) + 0.5, float(c[-2]) + 0.5)
        qtbot.mouseClick(window.view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        assert session.selection == (obj,)
        predicted = pred.class_names[pred.class_index[pred.table.rows(obj)[0]] - 1]
        other = next(n for n in scene.class_names if n != predicted)
        qtbot.keyClick(window, keys[other])
        assert store.get("well1", obj).source == "correction"
    ptab.result.refresh_corrections()
    assert ptab.retrain_button.isVisible()

    # Retrain from the prediction tab: a second model learns from 53 labels
    with qtbot.waitSignal(window.training_tab.trainingFinished, timeout=120_000) as done:
        qtbot.mouseClick(ptab.retrain_button, Qt.MouseButton.LeftButton)
    assert done.args[0] == "model-2"
    assert session.project.models.card("model-2")["n_labels"] == 53

    # Export the (first model's) predictions shown in the window
    files = ptab.exports.export_to(tmp_path / "results")
    names = sorted(p.name for p in files)
    assert names == ["predictions.csv", "run.json", "well1_classes.tif"]
    with open(tmp_path / "results" / "predictions.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 70
    # The corrections are what is exported, and the file says which model predicted the rest.
    for r in rows:
        if int(r["object"]) in targets:
            lab = store.get("well1", int(r["object"]))
            assert (r["class"], r["source"]) == (lab.class_name, "correction")
            assert r["predicted"] != r["class"]
        assert r["model"] == "model-1"
    assert ptab.result.predictions_stale() and "model-2" in ptab.shown_model.text()
    assert not shown_errors

"""The small projects the tab tests open: one labelled 30-object image, with or without a model."""

from __future__ import annotations

from pathlib import Path

import tifffile

N_OBJECTS = 30  # objects of the labelled image
LABELS_PER_CLASS = 10


def labelled_project(folder: Path, labels_per_class=LABELS_PER_CLASS, classes_labelled=None):
    """``folder/p.svetlana``: one texture-scene image (its files in ``folder/src``) whose first
    ``labels_per_class`` objects of each of the first ``classes_labelled`` classes (all when
    None) are labelled. Returns (project, scene, src)."""
    from svetlana.core.project.bundle import Project
    from svetlana.core.synthetic.easy import texture_scene

    scene = texture_scene(n_objects=N_OBJECTS, shape=(256, 256))
    src = folder / "src"
    src.mkdir(parents=True)
    tifffile.imwrite(src / "cells.tif", scene.image[0])
    tifffile.imwrite(src / "cells_masks.tif", scene.labels)
    project = Project.create(folder / "p.svetlana", classes=list(scene.class_names))
    project.add_image(src / "cells.tif", src / "cells_masks.tif", name="cells")
    changes = []
    for k, cname in enumerate(scene.class_names[:classes_labelled]):
        ids = sorted(i for i, c in scene.classes.items() if c == k)[:labels_per_class]
        changes += [("cells", i, cname) for i in ids]
    project.annotations.apply_labels(changes, source="import")
    return project, scene, src


def predict_clicked(qtbot, tab, scope="image", timeout=60000) -> str:
    """Run the Predict tab as a user does (a scope, then a click on Run); the model id shown."""
    from PySide6.QtCore import Qt

    tab.set_scope(scope)
    with qtbot.waitSignal(tab.predictionFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]

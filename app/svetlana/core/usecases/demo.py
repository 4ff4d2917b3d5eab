"""The built-in demo: a generated project with labels, trained and predicted in one go."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import Cancelled, InputError
from svetlana.core.io.csvsafe import to_csv_text
from svetlana.core.io.fileio import atomic_write_text
from svetlana.core.jobs import CancelToken, ProgressFn
from svetlana.core.project.bundle import SUFFIX, Project
from svetlana.core.usecases.train import train_project

log = logging.getLogger(__name__)


# ---- demo -----------------------------------------------------------------------------

DEMO_LABELS_PER_CLASS = 30


def demo_path() -> Path:
    """Where the demo project lives: the user's data folder (kept between runs)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("Svetlana", appauthor=False)) / f"demo{SUFFIX}"


def build_demo(path: str | Path, seed: int = 0, n_objects: int = 200) -> Project:
    """A project like the paper's experiment 1: two textures, known classes, some labels."""
    import tifffile

    from svetlana.core.synthetic.easy import texture_scene

    scene = texture_scene(n_objects=n_objects, shape=(640, 640), seed=seed)
    project = Project.create(path, classes=list(scene.class_names))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ip, mp = Path(tmp) / "textures.tif", Path(tmp) / "textures_masks.tif"
            tifffile.imwrite(ip, scene.image[0])
            tifffile.imwrite(mp, scene.labels)
            project.add_image(ip, mp, name="textures")
        project.settings["demo"] = True
        rng = np.random.default_rng(seed)
        ids = np.array(sorted(scene.classes))
        truth = np.array([scene.classes[i] for i in ids])
        changes = []
        for k, cname in enumerate(scene.class_names):
            pick = rng.permutation(ids[truth == k])[:DEMO_LABELS_PER_CLASS]
            changes += [("textures", int(o), cname) for o in pick]
        project.annotations.apply_labels(changes, source="import")
        truth_rows = to_csv_text(
            ["image", "object", "class"],
            [("textures", int(i), scene.class_names[c]) for i, c in zip(ids, truth, strict=True)],
        )
        atomic_write_text(project.path / "demo_truth.csv", truth_rows)
        project.save()
    except BaseException:
        project.close()
        raise
    return project


def open_or_build_demo(path: str | Path) -> Project:
    """The demo project at ``path``: opened when it is one made by ``build_demo``, built when
    ``path`` does not exist (or is an empty folder). Any other folder is refused: the demo trains
    and predicts inside its project, and must never do so in a person's real one."""
    path = Path(path)
    if (path / "project.json").is_file():
        project = Project.open(path)
        if project.settings.get("demo") is True and (path / "demo_truth.csv").is_file():
            return project
        project.close()
        raise InputError(
            "is a project of yours, not the demo's: the demo trains and predicts inside its "
            "project, so it is not run here (nothing was changed)",
            path,
            hint="give a new folder, or none for the demo in your data folder",
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(
            "already exists and is not a demo project; give a new folder for the demo", path
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return build_demo(path)


@dataclass(frozen=True)
class DemoResult:
    model_id: str
    unlabelled: int
    errors: int
    accuracy: float
    train_seconds: float
    predict_seconds: float
    device: str


def run_demo_headless(
    project: Project,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DemoResult:
    """Train with default settings, predict, and score the unlabelled objects against the truth."""
    from svetlana.core.annotations.records import read_label_csv
    from svetlana.core.usecases.predict import predict_project, read_predictions

    t0 = time.perf_counter()
    trained = train_project(project, progress=progress, cancel=cancel, kind="auto")
    t1 = time.perf_counter()
    run = predict_project(project, trained.id, progress=progress, cancel=cancel)
    t2 = time.perf_counter()
    truth = {
        (r["image"], r["object"]): r["class"]
        for r in read_label_csv(project.path / "demo_truth.csv")
    }
    predicted = read_predictions(run.out_dir / "predictions.csv")
    n = err = 0
    for (im, obj), cls in truth.items():
        if project.annotations.get(im, obj) is not None:
            continue
        n += 1
        err += predicted[im][obj]["class"] != cls
    if n == 0:
        raise Cancelled("every object of the demo is labelled; nothing left to score")
    return DemoResult(trained.id, n, err, 1 - err / n, t1 - t0, t2 - t1, trained.card["device"])

"""The Predict tab's Export menu: class masks, measurement table, QuPath objects, bioimage.io package.

Each export is planned on the main thread (what to write, from which snapshot of the shown
predictions), run in a worker on a read-only view of the bundle of its own (the window's project
is never touched off the main thread) and reported on the main thread: where the files are, or
the error in a dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QWidget,
)

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress
from svetlana.core.wording import plural

log = logging.getLogger(__name__)

MASKS, TABLE, OBJECTS, BIOIMAGEIO = "masks", "table", "objects", "bioimageio"
TITLES = {
    MASKS: "Class masks and predictions.csv…",
    TABLE: "Measurement table (CSV)…",
    OBJECTS: "Objects for QuPath (GeoJSON)…",
    BIOIMAGEIO: "bioimage.io model package…",
}
TIPS = {
    MASKS: "Write the class masks (<image>_classes.tif) and predictions.csv to a folder.",
    TABLE: "objects.csv: one row per object (class, probabilities, measurements) and\n"
    "summary.csv: counts, fractions and means per class and image — for R, Prism or pandas.",
    OBJECTS: "One <image>.geojson per 2D image: every object's outline with its class, colour and\n"
    "measurements. In QuPath: File ▸ Import objects from file.",
    BIOIMAGEIO: "The network as a bioimage.io model package (folder + .zip: rdf.yaml, ONNX weights,\n"
    "test patches) for ilastik, deepImageJ, QuPath and bioimageio.core.",
}


@dataclass(frozen=True, eq=False)
class ExportPlan:
    """What one export writes, decided on the main thread; all the worker gets."""

    kind: str  # MASKS | TABLE | OBJECTS | BIOIMAGEIO
    bundle: Path
    out_dir: Path
    model_id: str
    images: tuple[str, ...] = ()
    predictions: Mapping[str, Any] = field(default_factory=dict)  # image -> ImagePrediction
    info: Any = None  # bioimageio_export.PackageInfo
    note: str = ""  # said with the result (e.g. 3D images left out of the GeoJSON)


@dataclass(frozen=True)
class ExportDone:
    """What an export wrote, for the report on the main thread."""

    kind: str
    folder: Path
    files: tuple[Path, ...]
    message: str


def plan_export(
    project, kind: str, out_dir: str | Path, predictions, model_id: str | None, info=None
) -> ExportPlan:
    """Check on the main thread that ``kind`` can be written (cheap checks only; raises
    InputError/ModelError with the reason) and snapshot what the worker needs."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output must be a folder", out)
    if kind == BIOIMAGEIO:
        from svetlana.core.ml.forest import is_forest
        from svetlana.core.usecases.export_bioimageio import forest_refusal

        if not model_id:
            raise InputError("the project has no trained model yet: train one in the Training tab")
        if is_forest(project.models.card(model_id)):
            raise forest_refusal(model_id)
        return ExportPlan(kind, project.path, out, model_id, info=info)
    if kind not in (MASKS, TABLE, OBJECTS):
        raise ValueError(f"unknown export {kind!r}")
    if not predictions or not model_id:
        raise InputError("nothing to export: run a prediction first")
    images = tuple(predictions)
    note = ""
    if kind == OBJECTS:
        flat = tuple(im for im in images if project.image(im).ndim == 2)
        left = [im for im in images if im not in flat]
        if not flat:
            raise InputError(
                "GeoJSON outlines are 2D and the predicted images are 3D: export the measurement "
                "table instead",
                project.path,
            )
        if left:
            note = f"{plural(len(left), '3D image')} left out (GeoJSON outlines are 2D): {', '.join(left)}"
        images = flat
    return ExportPlan(kind, project.path, out, model_id, images, dict(predictions), note=note)


def run_export(
    plan: ExportPlan, progress: Callable[[Progress], None], cancel: CancelToken
) -> ExportDone:
    """The worker: write ``plan`` from a read-only view of the bundle (Qt-free)."""
    from svetlana.core.project.bundle import Project

    with Project.open(plan.bundle, readonly=True) as view:
        if plan.kind == MASKS:
            from svetlana.core.usecases.predict import write_prediction_outputs

            pairs = []
            for k, (name, pred) in enumerate(plan.predictions.items()):
                cancel.raise_if_cancelled()
                progress(Progress("export", k, len(plan.predictions), f"loading {name}"))
                pairs.append((pred, view.load(name)))
            files = tuple(
                write_prediction_outputs(
                    plan.out_dir, pairs, next(iter(plan.predictions.values())).class_names,
                    view.annotations.for_image, model_id=plan.model_id,
                    model_dir=view.models.dir(plan.model_id),
                    project_classes=view.annotations.class_names,
                )
            )  # fmt: skip
            message = (
                f"Wrote the class masks of {plural(len(pairs), 'image')} "
                "(<image>_classes.tif: pixel value = class number) and predictions.csv."
            )
        elif plan.kind == TABLE:
            from svetlana.core.usecases.export_table import export_table

            r = export_table(
                view, plan.out_dir, plan.images, model_id=plan.model_id,
                predictions=plan.predictions, progress=progress, cancel=cancel,
            )  # fmt: skip
            message = (
                f"Wrote {plural(r.rows, 'object')} of {plural(len(r.images), 'image')} to "
                f"{r.files[0].name}, and the counts and means per class to {r.files[1].name}."
            )
            files = r.files
        elif plan.kind == OBJECTS:
            from svetlana.core.usecases.export_geojson import export_objects

            r = export_objects(
                view, plan.out_dir, plan.images, model_id=plan.model_id,
                predictions=plan.predictions, progress=progress, cancel=cancel,
            )  # fmt: skip
            message = (
                f"Wrote {plural(r.objects, 'object')} to {plural(len(r.files), 'GeoJSON file')}"
                f" ({', '.join(f.name for f in r.files)}). In QuPath: open the image, then "
                "File ▸ Import objects from file."
            )
            files = r.files
        else:
            from svetlana.core.usecases.export_bioimageio import (
                DEFAULT_AUTHOR,
                PackageInfo,
                export_bioimageio,
            )

            progress(Progress("export", 0, 1, f"packaging {plan.model_id}"))
            info = plan.info or PackageInfo()
            r = export_bioimageio(view, plan.out_dir, plan.model_id, info)
            message = (
                f"Wrote the bioimage.io package of {r.model_id}: the folder {r.folder.name} and "
                f"{r.zip_path.name}. Check it with: bioimageio test {r.rdf}"
            )
            if DEFAULT_AUTHOR in info.authors:
                message += (
                    f"\nThe author is given as {DEFAULT_AUTHOR!r}: edit rdf.yaml before sharing it."
                )
            files = (r.folder, r.zip_path)
    if plan.note:
        message += f"\n{plan.note}."
    return ExportDone(plan.kind, plan.out_dir, tuple(files), message)


class ExportMenu(QMenu):
    """The entries of the Export button; ``refresh`` enables what the shown state allows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTipsVisible(True)
        self.actions_by_kind = {}
        for kind in (MASKS, TABLE, OBJECTS, BIOIMAGEIO):
            action = self.addAction(TITLES[kind])
            action.setToolTip(TIPS[kind])
            self.actions_by_kind[kind] = action

    def refresh(self, has_predictions: bool, model_id: str | None, forest: bool) -> None:
        for kind in (MASKS, TABLE, OBJECTS):
            self.actions_by_kind[kind].setEnabled(has_predictions)
        package = self.actions_by_kind[BIOIMAGEIO]
        if model_id and forest:
            package.setText(f"bioimage.io model package (networks only; {model_id} is a forest)")
            package.setToolTip(
                "bioimage.io packages hold networks. A forest is shared as its model folder\n"
                "(svetlana export-model) and the measurement table; train a CNN for a package."
            )
        else:
            package.setText(
                f"bioimage.io model package ({model_id})…" if model_id else TITLES[BIOIMAGEIO]
            )
            package.setToolTip(TIPS[BIOIMAGEIO])
        package.setEnabled(bool(model_id) and not forest)


class PackageInfoDialog(QDialog):
    """Author and licence written into the bioimage.io package (the CLI's defaults prefilled)."""

    def __init__(self, parent: QWidget | None = None):
        from svetlana.core.usecases.export_bioimageio import DEFAULT_LICENSE

        super().__init__(parent)
        self.setWindowTitle("bioimage.io model package")
        form = QFormLayout(self)
        intro = QLabel("Shown on bioimage.io and in the package's rdf.yaml.")
        intro.setWordWrap(True)
        form.addRow(intro)
        self.authors = QLineEdit()
        self.authors.setPlaceholderText("Ada Lovelace, Alan Turing")
        self.authors.setToolTip("The authors' names, separated by commas.")
        self.license = QLineEdit(DEFAULT_LICENSE)
        self.license.setToolTip("An SPDX licence id, e.g. CC-BY-4.0, MIT.")
        form.addRow("Authors", self.authors)
        form.addRow("Licence", self.license)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def info(self):
        from svetlana.core.usecases.export_bioimageio import (
            DEFAULT_AUTHOR,
            DEFAULT_LICENSE,
            PackageInfo,
        )

        authors = tuple(a.strip() for a in self.authors.text().split(",") if a.strip())
        return PackageInfo(
            authors=authors or (DEFAULT_AUTHOR,),
            license=self.license.text().strip() or DEFAULT_LICENSE,
        )


def ask_package_info(parent: QWidget | None):
    """The PackageInfo the user typed, or None when cancelled."""
    dialog = PackageInfoDialog(parent)
    return dialog.info() if dialog.exec() else None


def show_done(parent: QWidget | None, done: ExportDone) -> QMessageBox:
    """Where the files are, in a non-blocking message box (kept on the parent for tests)."""
    box = QMessageBox(QMessageBox.Icon.Information, "Export finished", done.message, parent=parent)
    box.setInformativeText(f"Folder: {done.folder}")
    box.open()
    return box

"""The Predict tab's Export menu: class masks, measurement table, QuPath objects, bioimage.io
package. What each writes is planned and run by ``core/usecases/export.py``; here are the menu
(entries enabled, or disabled with the reason), the package's author dialog and the report."""

from __future__ import annotations

import logging

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

from svetlana.core.usecases.export import (  # noqa: F401 - the menu's kinds and the operation
    BIOIMAGEIO,
    EXPORT_KINDS,
    MASKS,
    OBJECTS,
    TABLE,
    ExportDone,
    ExportPlan,
    export_refusal,
    plan_export,
    run_export,
)

log = logging.getLogger(__name__)

# the entries' texts: core's one table of export names (… : the entry asks for a folder)
TITLES = {kind: f"{EXPORT_KINDS[kind].title}…" for kind in (MASKS, TABLE, OBJECTS, BIOIMAGEIO)}
TIPS = {
    MASKS: "Write the class masks (<image>_classes.tif) and predictions.csv to a folder.",
    TABLE: "objects.csv: one row per object (class, probabilities, measurements) and\n"
    "summary.csv: counts, fractions and means per class and image — for R, Prism or pandas.",
    OBJECTS: "One <image>.geojson per 2D image: every object's outline with its class, colour and\n"
    "measurements. In QuPath: File ▸ Import objects from file.",
    BIOIMAGEIO: "The network as a bioimage.io model package (folder + .zip: rdf.yaml, ONNX weights,\n"
    "test patches) for ilastik, deepImageJ, QuPath and bioimageio.core.",
}


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

    def refresh(
        self, has_predictions: bool, model_id: str | None, forest: bool, any_2d: bool = True
    ) -> None:
        """Enable what can be exported; an entry that cannot says why in its text."""
        for kind in (MASKS, TABLE, OBJECTS):
            self.actions_by_kind[kind].setEnabled(has_predictions)
        objects = self.actions_by_kind[OBJECTS]
        if has_predictions and not any_2d:
            objects.setEnabled(False)
            objects.setText(f"{EXPORT_KINDS[OBJECTS].title} (2D images only; these are 3D)")
            objects.setToolTip(
                "GeoJSON outlines are 2D: QuPath cannot import 3D objects.\n"
                "Export the measurement table (or the class masks) instead."
            )
        else:
            objects.setText(TITLES[OBJECTS])
            objects.setToolTip(TIPS[OBJECTS])
        package, package_title = self.actions_by_kind[BIOIMAGEIO], EXPORT_KINDS[BIOIMAGEIO].title
        if model_id and forest:
            package.setText(f"{package_title} (networks only; {model_id} is a forest)")
            package.setToolTip(
                "bioimage.io packages hold networks. A forest is shared as its model folder\n"
                "(svetlana export-model) and the measurement table; train a CNN for a package."
            )
        else:
            package.setText(f"{package_title} ({model_id})…" if model_id else TITLES[BIOIMAGEIO])
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

"""'Keep these classes…': clean a segmentation with the classifier, with a live preview."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.annotations.final_class import project_final_classes, result_classes
from svetlana.core.usecases import export_masks as exports
from svetlana.core.wording import plural
from svetlana.gui.session import Session
from svetlana.gui.widgets.common import choose_folder

KIND = "filtered masks"  # what run.json of the folder says (a later export may replace it)
CHOSEN = "the folder chosen"


class KeepClassesDialog(QDialog):
    """Choose the classes to keep (and a minimum confidence); the image shows what is removed.

    While the dialog is open the removed objects of the current image are darkened in the view
    (``view_options["hidden_ids"]``); closing it restores the view. ``exported`` gives what an
    export wrote (a FilterSummary), or None when it failed.
    """

    exported = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job = None
        self.setWindowTitle("Keep these classes — Svetlana")
        self.setModal(False)
        pred = next(iter(session.predictions.values()))
        project = session.project
        self.class_names = result_classes(
            pred.class_names, project.annotations.class_names if project is not None else ()
        )
        intro = QLabel(
            "Write a cleaner segmentation: a label mask with only the objects of the classes you "
            "keep, with their original ids and in your mask's format, ready for Fiji, napari or "
            "Cellpose. Removed objects are darkened on the image."
        )
        intro.setWordWrap(True)
        box = QGroupBox("Keep objects of the classes (your label, else the prediction)")
        lay = QVBoxLayout(box)
        self.checks: dict[str, QCheckBox] = {}
        for i, name in enumerate(self.class_names):
            cb = QCheckBox(name)
            cb.setChecked(i == 0)
            cb.toggled.connect(self.refresh)
            lay.addWidget(cb)
            self.checks[name] = cb
        self.min_conf = QDoubleSpinBox()
        self.min_conf.setRange(0.0, 1.0)
        self.min_conf.setSingleStep(0.05)
        self.min_conf.setDecimals(2)
        self.min_conf.setToolTip(
            "Also remove kept-class objects the model is less sure of than this."
        )
        self.min_conf.valueChanged.connect(self.refresh)
        self.per_class = QCheckBox("Also write one mask per class")
        form = QFormLayout()
        form.addRow("Minimum confidence", self.min_conf)
        form.addRow(self.per_class)
        self.counts = QLabel()
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.export_button = QPushButton("Export filtered masks…")
        self.export_button.clicked.connect(self._choose_folder)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addWidget(intro)
        outer.addWidget(box)
        outer.addLayout(form)
        outer.addWidget(self.counts)
        outer.addWidget(self.export_button)
        outer.addWidget(buttons)
        session.currentImageChanged.connect(self.refresh)
        session.predictionsChanged.connect(self.refresh)
        session.labelsChanged.connect(self.refresh)
        self.finished.connect(self._restore_view)
        self.refresh()

    def _finals(self) -> dict:
        """image -> final classes (labels win), as the export will write them."""
        project = self.session.project
        if project is None:
            return {}
        return project_final_classes(project, self.session.predictions)

    def keep(self) -> list[str]:
        return [n for n, cb in self.checks.items() if cb.isChecked()]

    def preview(self) -> dict[str, tuple[int, int]]:
        """image -> (kept, removed) for every predicted image."""
        out = {}
        finals = self._finals()
        for name in self.session.predictions:
            kept, removed = exports.keep_preview(finals[name], self.keep(), self.min_conf.value())
            out[name] = (len(kept), len(removed))
        return out

    def refresh(self, *_args) -> None:
        if not self.session.predictions:
            self.counts.setText("No predictions any more: run a prediction first.")
            self.export_button.setEnabled(False)
            return
        pred = self.session.predictions.get(self.session.current_image)
        removed_here: frozenset[int] = frozenset()
        if pred is not None:
            final = self._finals()[self.session.current_image]
            _, removed = exports.keep_preview(final, self.keep(), self.min_conf.value())
            removed_here = frozenset(int(i) for i in removed)
        self.session.set_view_option("hidden_ids", removed_here)
        counts = self.preview()
        kept = sum(k for k, _ in counts.values())
        removed = sum(r for _, r in counts.values())
        lines = [f"<b>kept {kept}</b>, removed {removed} (in {plural(len(counts), 'image')})"]
        if self.session.current_image in counts:
            k, r = counts[self.session.current_image]
            lines.append(f"this image: kept {k}, removed {r}")
        self.counts.setText("<br>".join(lines))
        self.export_button.setEnabled(bool(self.keep()) or self.per_class.isChecked())

    def _choose_folder(self) -> None:
        project = self.session.project
        folder = choose_folder(
            self,
            "Write the filtered masks to (type a new name to create it)",
            project.path.parent if project is not None else "",
        )
        if folder:
            self.export_to(folder)

    def export_to(self, folder: str | Path):
        """Write the filtered masks in a worker (gui/ops.run_op), beside ``folder`` and swapped
        in whole (a failure leaves the folder as it was); ``exported`` gives the summary (None
        when it failed). Returns the job (None when refused before any work)."""
        from svetlana.core.io.outputs import check_output_folder
        from svetlana.gui.ops import run_op

        keep, min_conf = self.keep(), self.min_conf.value()
        per_class, preds = self.per_class.isChecked(), dict(self.session.predictions)
        model_id = self.session.prediction_model or ""

        def plan(_project) -> Path:
            return check_output_folder(folder, KIND, arg=CHOSEN)

        def run(final: Path, view, progress, cancel):
            from svetlana.core.io.outputs import output_folder

            with output_folder(final, KIND, arg=CHOSEN) as tmp:
                summary = exports.write_filtered_masks(
                    view, preds, keep, min_conf, tmp, per_class=per_class, model_id=model_id,
                    progress=progress, cancel=cancel,
                )  # fmt: skip
            return exports._moved(summary, tmp, final)  # noqa: SLF001 - the paths after the swap

        def done(final: Path, summary) -> None:
            self.counts.setText(
                self.counts.text() + f"<br>wrote {plural(len(summary.files), 'file')} to "
                f"{final} (kept {summary.kept}, removed {summary.removed})"
            )
            self.exported.emit(summary)

        def failed(exc: BaseException) -> None:
            from svetlana.gui.jobs import report_error

            report_error(self, exc)
            self.exported.emit(None)

        self.job = run_op(self, self.session, "keep classes", plan, run, done, on_failure=failed)
        if self.job is not None:
            self.export_button.setEnabled(False)
            self.job.finished.connect(self.refresh)
        return self.job

    def _restore_view(self, *_args) -> None:
        self.session.set_view_option("hidden_ids", frozenset())
        try:
            self.session.currentImageChanged.disconnect(self.refresh)
            self.session.predictionsChanged.disconnect(self.refresh)
            self.session.labelsChanged.disconnect(self.refresh)
        except (RuntimeError, TypeError):
            pass

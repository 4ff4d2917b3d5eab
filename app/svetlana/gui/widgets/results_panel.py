"""The Results panel: objects per class per image (bars) and one measurement per class (histogram).

It draws the final classes (your label wins over the model) of the shown predictions and the
object measurements, recomputed whenever predictions or labels change as an operation
(gui/ops.run_op: a snapshot on the main thread, the measuring in a worker on a read-only view,
the charts drawn on the main thread); each chart saves as PNG or SVG with its data as CSV. The
charts themselves: gui/widgets/result_charts.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.io.fileio import atomic_write_text
from svetlana.core.usecases.class_stats import ClassCounts, ClassValues, class_counts, class_values
from svetlana.core.wording import plural
from svetlana.gui.jobs import Job, report_error, stop_jobs
from svetlana.gui.ops import run_op
from svetlana.gui.widgets.result_charts import (
    csv_path,
    draw_counts,
    draw_values,
    plot_widget,
    save_plot,
)

log = logging.getLogger(__name__)

DEFAULT_MEASUREMENT = "area"
REFRESH_DELAY_MS = 300  # bursts of label changes give one recomputation
COUNTS, FRACTIONS = "Objects per class", "Fraction per class"
NOTHING = "Predict to see the results per class."
COMPUTING = "Computing…"


class ResultsPanel(QWidget):
    """Bars of the objects of each class per image, and the distribution of a measurement.

    ``updated`` is emitted each time the charts were redrawn from new data.
    """

    updated = Signal()

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self.counts: ClassCounts | None = None
        self.values: ClassValues | None = None
        self._finals: dict = {}
        self._measured: dict = {}  # image -> Measurements (kept while the project is open)
        self._again = False
        self._stale = True  # data changed while hidden: recompute when shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self._build()
        session.projectChanged.connect(self._on_project_changed)
        session.predictionsChanged.connect(self.schedule)
        session.labelsChanged.connect(lambda _keys: self.schedule())
        session.classesChanged.connect(self.schedule)

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.count_mode = QComboBox()
        self.count_mode.addItems([COUNTS, FRACTIONS])
        self.count_mode.currentIndexChanged.connect(lambda _i: self._draw_counts())
        self.save_counts_button = self._save_button(
            "Save this chart as PNG or SVG, with its data as CSV.", "counts"
        )
        lay.addLayout(_row(self.count_mode, self.save_counts_button))
        self.counts_plot = plot_widget()
        self.counts_plot.setMouseEnabled(x=False, y=False)
        lay.addWidget(self.counts_plot, 1)
        self.measurement = QComboBox()
        self.measurement.setToolTip(
            "Distribution of this measurement for the objects of each class\n"
            "(final classes: your labels and corrections count as your class)."
        )
        self.measurement.currentIndexChanged.connect(lambda _i: self._on_measurement())
        self.save_values_button = self._save_button(
            "Save this chart as PNG or SVG, with every object's value as CSV.", "values"
        )
        lay.addLayout(_row(QLabel("Measurement"), self.measurement, self.save_values_button))
        self.values_plot = plot_widget()
        lay.addWidget(self.values_plot, 1)
        self.note = QLabel(NOTHING)
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self._update_buttons()

    def _save_button(self, tip: str, which: str) -> QPushButton:
        button = QPushButton("Save…")
        button.setToolTip(tip)
        button.clicked.connect(lambda: self._choose_save(which))
        return button

    # ---- data ---------------------------------------------------------------------------
    def _on_project_changed(self) -> None:
        stop_jobs(self.job, timeout_ms=2000)
        self._measured = {}
        self._finals = {}
        self.counts = self.values = None
        self.measurement.clear()
        self.schedule()

    def schedule(self) -> None:
        """Recompute soon (several changes in a row give one); only while the panel is shown:
        measuring objects costs CPU that nobody needs while the charts are hidden."""
        if self.isVisible():
            self._say_computing()
            self._timer.start()
        else:
            self._stale = True

    def _say_computing(self) -> None:
        if self.session.project is not None and self.session.predictions:
            self.note.setText(COMPUTING)  # not "Predict to see…" while the data is on its way

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._say_computing()
            self._timer.start()

    def refresh(self) -> Job | None:
        """Recompute the charts' data from the shown predictions and the labels (run_op:
        snapshot here, measuring in a worker, charts drawn in the commit)."""
        if self.job is not None and self.job.running:
            self._again = True
            return None
        project = self.session.project
        if project is None or not self.session.predictions:
            self._finals = {}
            self.counts = self.values = None
            self._draw_counts()
            self._draw_values()
            self.note.setText(NOTHING)
            return None
        self.note.setText(COMPUTING)
        job = run_op(
            self, self.session, "results", self._plan, _measure, lambda _p, r: self._on_data(r),
            on_failure=self._on_failed, exclusive=False,
        )  # fmt: skip
        if job is not None:
            self.job = job
            job.finished.connect(self._on_finished)
        return job

    def _plan(self, project) -> tuple[dict, list[str]]:
        from svetlana.core.annotations.final_class import project_final_classes

        finals = project_final_classes(project, self.session.predictions)  # frozen snapshots
        todo = [
            im
            for im in finals
            if im not in self._measured and not project.image(im).image_file.endswith(".zarr")
        ]
        return finals, todo

    def _on_failed(self, exc: BaseException) -> None:
        self.note.setText("The results could not be computed.")
        report_error(self, exc)

    def _on_finished(self) -> None:
        if self._again:
            self._again = False
            self.schedule()

    def _on_data(self, result) -> None:
        finals, counts, measured = result
        self._measured.update(measured)
        self._finals = finals
        self.counts = counts
        names = next((list(self._measured[im].names) for im in finals if im in self._measured), [])
        current = self.measurement.currentText() or DEFAULT_MEASUREMENT
        if names != [self.measurement.itemText(i) for i in range(self.measurement.count())]:
            self.measurement.blockSignals(True)
            self.measurement.clear()
            self.measurement.addItems(names)
            if current in names:
                self.measurement.setCurrentIndex(names.index(current))
            self.measurement.blockSignals(False)
        total = int(counts.counts.sum())
        self.note.setText(
            f"{plural(total, 'object')} in {plural(len(counts.images), 'image')}; "
            "your labels count as your class."
        )
        self._draw_counts()
        self._on_measurement()
        self.updated.emit()

    def _on_measurement(self) -> None:
        name = self.measurement.currentText()
        if not self._finals or not name:
            self.values = None
        else:
            self.values = class_values(self._finals, self._measured, name)
        self._draw_values()

    # ---- drawing ------------------------------------------------------------------------
    def _draw_counts(self) -> None:
        c = self.counts
        colours = _colours(self.session, c.class_names) if c is not None else []
        draw_counts(self.counts_plot, c, colours, self.count_mode.currentText() == FRACTIONS)
        self._update_buttons()

    def _draw_values(self) -> None:
        v = self.values
        draw_values(
            self.values_plot, v, _colours(self.session, v.class_names) if v is not None else []
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.save_counts_button.setEnabled(self.counts is not None and bool(self.counts.images))
        self.save_values_button.setEnabled(
            self.values is not None and bool(len(self.values.values))
        )

    # ---- saving -------------------------------------------------------------------------
    def _choose_save(self, which: str) -> None:
        start = str(Path.home() / ("class_counts.png" if which == "counts" else "measurement.png"))
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the chart and its data", start, "PNG image (*.png);;SVG image (*.svg)"
        )
        if not path:
            return
        try:
            files = self.save_counts(path) if which == "counts" else self.save_values(path)
        except Exception as exc:  # noqa: BLE001 - one dialog naming the file
            report_error(self, exc)
            return
        self.note.setText("Saved " + ", ".join(p.name for p in files) + f" in {files[0].parent}.")

    def save_counts(self, path: str | Path) -> list[Path]:
        """The bar chart (PNG/SVG) and ``<name>.csv``: image, class, count, objects, fraction."""
        if self.counts is None:
            raise ValueError("nothing to save yet: predict first")
        image = save_plot(self.counts_plot, path)
        csv = csv_path(image)
        atomic_write_text(csv, self.counts.csv_text())
        return [image, csv]

    def save_values(self, path: str | Path) -> list[Path]:
        """The histogram (PNG/SVG), ``<name>.csv`` (every object's value) and ``<name>_bins.csv``."""
        if self.values is None:
            raise ValueError("nothing to save yet: predict first")
        image = save_plot(self.values_plot, path)
        csv, bins = csv_path(image), csv_path(image, "_bins")
        atomic_write_text(csv, self.values.csv_text())
        atomic_write_text(bins, self.values.histogram_csv_text())
        return [image, csv, bins]

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        self._timer.stop()
        return stop_jobs(self.job, timeout_ms=timeout_ms)


def _measure(plan, view, _progress, cancel):
    """The worker: counts per class, and the measurements of the images not measured yet."""
    from svetlana.core.objects.measurement_cache import project_measurements

    finals, todo = plan
    measured = {}
    for name in todo:
        cancel.raise_if_cancelled()
        measured[name] = project_measurements(view, name, cancel=cancel)
    return finals, class_counts(finals), measured


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w, 1 if isinstance(w, QComboBox) else 0)
    return row


def _colours(session, names) -> list:
    """Each class's colour in the project (a distinct hue for a class it does not have)."""
    store = session.project.annotations if session.project is not None else None
    out = []
    for k, name in enumerate(names):
        colour = store.class_info(name).colour if store and name in store.class_names else ""
        out.append(pg.mkColor(colour) if colour else pg.intColor(k, hues=max(len(names), 3)))
    return out

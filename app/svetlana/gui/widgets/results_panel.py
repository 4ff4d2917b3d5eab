"""The Results panel: objects per class per image (bars) and one measurement per class (histogram).

It draws the final classes (your label wins over the model) of the shown predictions and the
object measurements, recomputed in a worker whenever predictions or labels change; each chart
saves as PNG or SVG together with its data as CSV.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
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

from svetlana.core.io.fileio import atomic_write_text, atomic_write_with
from svetlana.core.usecases.class_stats import ClassCounts, ClassValues, class_counts, class_values
from svetlana.gui.jobs import Job, report_error, run_job, stop_jobs

log = logging.getLogger(__name__)

DEFAULT_MEASUREMENT = "area"
REFRESH_DELAY_MS = 300  # bursts of label changes give one recomputation
COUNTS, FRACTIONS = "Objects per class", "Fraction per class"
_LABEL = {"color": "#222222", "font-size": "11pt"}


def _csv_path(path: Path, extra: str = "") -> Path:
    return path.with_name(f"{path.stem}{extra}.csv")


def save_plot(plot: pg.PlotWidget, path: str | Path) -> Path:
    """Write the chart as PNG or SVG (by the suffix; PNG when there is none)."""
    import pyqtgraph.exporters as exporters

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        path = path.with_suffix(".png")
    if path.suffix.lower() == ".svg":
        # Qt's own SVG painter: pyqtgraph's SVGExporter fails on the paths of current Qt 6.
        atomic_write_with(path, lambda p: _render_svg(plot, p))
    else:
        exporter = exporters.ImageExporter(plot.plotItem)
        exporter.parameters()["width"] = max(1600, int(plot.width()) * 2)  # print resolution
        atomic_write_with(path, lambda p: exporter.export(str(p)))
    return path


def _render_svg(plot: pg.PlotWidget, path: Path) -> None:
    from PySide6.QtCore import QRect, QSize
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    size = QSize(max(int(plot.width()), 400), max(int(plot.height()), 250))
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle("Svetlana results")
    painter = QPainter(generator)
    try:
        plot.render(painter)
    finally:
        painter.end()


def _plot_widget() -> pg.PlotWidget:
    """A white chart with dark axes and readable type (as printed in a figure)."""
    from PySide6.QtGui import QFont

    plot = pg.PlotWidget(background="w")
    plot.setMinimumHeight(220)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    font = QFont()
    font.setPointSize(10)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen("#333333"))
        axis.setTextPen(pg.mkPen("#222222"))
        axis.setTickFont(font)
        # Values as measured: pyqtgraph would draw 0.0004 as 0.4 with "(x0.001)" in the name.
        axis.enableAutoSIPrefix(False)
    return plot


def _title(plot: pg.PlotWidget, text: str) -> None:
    plot.setTitle(text, color="#222222", size="12pt")


def _legend(plot: pg.PlotWidget) -> pg.LegendItem:
    item = plot.plotItem
    if item.legend is None:
        plot.addLegend(
            offset=(4, 1), labelTextColor="#222222", brush=pg.mkBrush(255, 255, 255, 210),
            verSpacing=-6, horSpacing=12,
        )  # fmt: skip
    return item.legend


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
        row = QHBoxLayout()
        self.count_mode = QComboBox()
        self.count_mode.addItems([COUNTS, FRACTIONS])
        self.count_mode.currentIndexChanged.connect(lambda _i: self._draw_counts())
        self.save_counts_button = QPushButton("Save…")
        self.save_counts_button.setToolTip("Save this chart as PNG or SVG, with its data as CSV.")
        self.save_counts_button.clicked.connect(lambda: self._choose_save("counts"))
        row.addWidget(self.count_mode, 1)
        row.addWidget(self.save_counts_button)
        lay.addLayout(row)
        self.counts_plot = _plot_widget()
        self.counts_plot.setMouseEnabled(x=False, y=False)
        lay.addWidget(self.counts_plot, 1)

        row = QHBoxLayout()
        row.addWidget(QLabel("Measurement"))
        self.measurement = QComboBox()
        self.measurement.setToolTip(
            "Distribution of this measurement for the objects of each class\n"
            "(final classes: your labels and corrections count as your class)."
        )
        self.measurement.currentIndexChanged.connect(lambda _i: self._on_measurement())
        self.save_values_button = QPushButton("Save…")
        self.save_values_button.setToolTip(
            "Save this chart as PNG or SVG, with every object's value as CSV."
        )
        self.save_values_button.clicked.connect(lambda: self._choose_save("values"))
        row.addWidget(self.measurement, 1)
        row.addWidget(self.save_values_button)
        lay.addLayout(row)
        self.values_plot = _plot_widget()
        lay.addWidget(self.values_plot, 1)
        self.note = QLabel("Predict to see the results per class.")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self._update_buttons()

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
            self._timer.start()
        else:
            self._stale = True

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._timer.start()

    def refresh(self) -> Job | None:
        """Recompute the charts' data in a worker from the shown predictions and the labels."""
        from svetlana.core.annotations.final_class import project_final_classes

        if self.job is not None and self.job.running:
            self._again = True
            return None
        project = self.session.project
        preds = self.session.predictions if project is not None else {}
        if not preds:
            self._finals = {}
            self.counts = self.values = None
            self._clear("Predict to see the results per class.")
            return None
        finals = project_final_classes(project, preds)  # frozen snapshots for the worker
        path = project.path
        todo = [
            im
            for im in finals
            if im not in self._measured and not project.image(im).image_file.endswith(".zarr")
        ]
        self.note.setText("Updating…")

        def work(progress, cancel):
            from svetlana.core.objects.measurement_cache import project_measurements
            from svetlana.core.project.bundle import Project

            counts = class_counts(finals)
            measured = {}
            if todo:  # a read-only view of the bundle of its own: nothing shared with the window
                with Project.open(path, readonly=True) as view:
                    for name in todo:
                        cancel.raise_if_cancelled()
                        measured[name] = project_measurements(view, name, cancel=cancel)
            return finals, counts, measured

        self.job = run_job(
            self, work, on_success=self._on_data, on_failure=self._on_failed, name="results"
        )
        self.job.finished.connect(self._on_finished)
        return self.job

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
        names: list[str] = []
        for im in finals:
            m = self._measured.get(im)
            if m is not None:
                names = list(m.names)
                break
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
            f"{total} objects in {len(counts.images)} image(s); your labels count as your class."
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
    def _colours(self, names) -> list:
        store = self.session.project.annotations if self.session.project is not None else None
        out = []
        for k, name in enumerate(names):
            colour = store.class_info(name).colour if store and name in store.class_names else ""
            out.append(pg.mkColor(colour) if colour else pg.intColor(k, hues=max(len(names), 3)))
        return out

    def _clear(self, message: str) -> None:
        self.counts_plot.clear()
        self.values_plot.clear()
        self.note.setText(message)
        self._update_buttons()

    def _draw_counts(self) -> None:
        plot = self.counts_plot
        plot.clear()
        if plot.plotItem.legend is not None:
            plot.plotItem.legend.clear()
        c = self.counts
        self._update_buttons()
        if c is None or not c.images:
            return
        fractions = self.count_mode.currentText() == FRACTIONS
        data = c.fractions if fractions else c.counts
        n = len(c.class_names)
        width = 0.8 / max(n, 1)
        legend = _legend(plot)
        legend.setColumnCount(max(len(c.class_names), 1))  # one row along the top
        x0 = np.arange(len(c.images), dtype=float)
        for k, (name, colour) in enumerate(
            zip(c.class_names, self._colours(c.class_names), strict=True)
        ):
            bars = pg.BarGraphItem(
                x=x0 - 0.4 + width * (k + 0.5),
                height=data[:, k].astype(float),
                width=width * 0.95,
                brush=colour,
                pen=pg.mkPen(colour.darker(130)),
            )
            plot.addItem(bars)
            legend.addItem(bars, name)
        plot.getAxis("bottom").setTicks([[(float(i), im) for i, im in enumerate(c.images)]])
        plot.setLabel("left", "fraction of objects" if fractions else "objects", **_LABEL)
        _title(plot, "Fraction of objects per class" if fractions else "Objects per class")
        plot.setXRange(-0.6, len(c.images) - 0.4, padding=0)
        top = float(data.max()) if data.size else 1.0
        plot.setYRange(
            0, max(top * 1.5, 1e-9 if fractions else 1.0), padding=0
        )  # room for the legend

    def _draw_values(self) -> None:
        plot = self.values_plot
        plot.clear()
        if plot.plotItem.legend is not None:
            plot.plotItem.legend.clear()
        v = self.values
        self._update_buttons()
        if v is None or not len(v.values):
            return
        _legend(plot).setColumnCount(max(len(v.class_names), 1))
        for k, (name, colour) in enumerate(
            zip(v.class_names, self._colours(v.class_names), strict=True)
        ):
            hist = v.histogram(k)
            if not hist.any():
                continue
            fill = pg.mkColor(colour)
            fill.setAlpha(60)
            item = pg.PlotDataItem(
                v.edges, hist, stepMode="center", pen=pg.mkPen(colour, width=2),
                fillLevel=0, brush=fill, name=f"{name} (n={int(hist.sum())})",
            )  # fmt: skip
            plot.addItem(item)  # named: the plot adds it to the legend
        top = max(int(v.histogram(k).max()) for k in range(len(v.class_names)))
        plot.setYRange(0, max(top, 1) * 1.5, padding=0)  # room for the legend
        unit = f" ({v.unit})" if v.unit else ""
        plot.setLabel("bottom", v.measurement + unit, **_LABEL)
        plot.setLabel("left", "objects", **_LABEL)
        _title(plot, f"{v.measurement} per class")

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
        csv = _csv_path(image)
        atomic_write_text(csv, self.counts.csv_text())
        return [image, csv]

    def save_values(self, path: str | Path) -> list[Path]:
        """The histogram (PNG/SVG), ``<name>.csv`` (every object's value) and ``<name>_bins.csv``."""
        if self.values is None:
            raise ValueError("nothing to save yet: predict first")
        image = save_plot(self.values_plot, path)
        csv, bins = _csv_path(image), _csv_path(image, "_bins")
        atomic_write_text(csv, self.values.csv_text())
        atomic_write_text(bins, self.values.histogram_csv_text())
        return [image, csv, bins]

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        self._timer.stop()
        return stop_jobs(self.job, timeout_ms=timeout_ms)

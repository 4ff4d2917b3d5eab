"""The Results charts as figures: a white chart with dark axes and readable type, the bars of
the objects per class per image, the histogram of a measurement per class, and saving a chart
as PNG (print resolution) or SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg

from svetlana.core.io.fileio import atomic_write_with

_LABEL = {"color": "#222222", "font-size": "11pt"}


def csv_path(path: Path, extra: str = "") -> Path:
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


def plot_widget() -> pg.PlotWidget:
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


def draw_counts(plot: pg.PlotWidget, c, colours, fractions: bool) -> None:
    """Bars of the objects (or the fraction of objects) of each class per image."""
    _reset(plot)
    if c is None or not c.images:
        return
    data = c.fractions if fractions else c.counts
    n = len(c.class_names)
    width = 0.8 / max(n, 1)
    legend = _legend(plot)
    legend.setColumnCount(max(n, 1))  # one row along the top
    x0 = np.arange(len(c.images), dtype=float)
    for k, (name, colour) in enumerate(zip(c.class_names, colours, strict=True)):
        bars = pg.BarGraphItem(
            x=x0 - 0.4 + width * (k + 0.5), height=data[:, k].astype(float),
            width=width * 0.95, brush=colour, pen=pg.mkPen(colour.darker(130)),
        )  # fmt: skip
        plot.addItem(bars)
        legend.addItem(bars, name)
    plot.getAxis("bottom").setTicks([[(float(i), im) for i, im in enumerate(c.images)]])
    plot.setLabel("left", "fraction of objects" if fractions else "objects", **_LABEL)
    _title(plot, "Fraction of objects per class" if fractions else "Objects per class")
    plot.setXRange(-0.6, len(c.images) - 0.4, padding=0)
    top = float(data.max()) if data.size else 1.0
    plot.setYRange(0, max(top * 1.5, 1e-9 if fractions else 1.0), padding=0)  # room for the legend


def draw_values(plot: pg.PlotWidget, v, colours) -> None:
    """The histogram of one measurement for the objects of each class."""
    _reset(plot)
    if v is None or not len(v.values):
        return
    _legend(plot).setColumnCount(max(len(v.class_names), 1))
    for k, (name, colour) in enumerate(zip(v.class_names, colours, strict=True)):
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
    unit = f" ({v.unit.replace('^2', '²').replace('^3', '³')})" if v.unit else ""
    plot.setLabel("bottom", v.measurement + unit, **_LABEL)
    plot.setLabel("left", "objects", **_LABEL)
    _title(plot, f"{v.measurement} per class")


def _reset(plot: pg.PlotWidget) -> None:
    plot.clear()
    if plot.plotItem.legend is not None:
        plot.plotItem.legend.clear()

"""Render the README's export screenshots from the real window, offscreen (no display needed).

    QT_QPA_PLATFORM=offscreen python resources/make_export_screenshots.py [OUT_DIR]

Builds the demo project in a temporary folder, trains, predicts, and saves the Predict tab with
its Export menu open (``screenshot-export-menu.png``); then exports the objects for QuPath from
that menu and draws the polygons *read back from the GeoJSON file* over the image, each outlined
in the class colour the file gives (``screenshot-geojson.png``): what QuPath shows after
File ▸ Import objects, without QuPath.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SCALE = 2  # screen pixels per image pixel in the GeoJSON figure
CROP = 320  # image pixels shown (top-left corner), so the outlines are visible


def main(out_dir: Path) -> None:
    from PySide6.QtCore import QEventLoop, QPoint, QSettings, QTimer
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication

    from svetlana.core.usecases.demo import build_demo
    from svetlana.core.usecases.train import train_project
    from svetlana.gui.main_window import MainWindow
    from svetlana.gui.tabs.predict import export as prediction_tab

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    project = build_demo(tmp / "demo.svetlana")
    train_project(project)
    window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.set_project(project)
    window.show()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    tab = window.prediction_tab
    window.tabs.setCurrentWidget(tab)
    done = []
    tab.predictionFinished.connect(lambda *_: done.append(1))
    tab.run_prediction()
    while not done:
        wait(50)
    window.view.fit()
    tab.exports.refresh_menu()
    wait(300)
    # A popup menu is a window of its own: paint it under the button, as it opens on screen.
    shot = window.grab()
    menu = tab.export_menu
    menu.adjustSize()
    at = tab.export_button.mapTo(window, QPoint(0, tab.export_button.height()))
    painter = QPainter(shot)
    painter.drawPixmap(at, menu.grab())
    painter.end()
    shot.save(str(out_dir / "screenshot-export-menu.png"))

    exported = []
    tab.exportFinished.connect(exported.append)
    prediction_tab.choose_folder = lambda *_a, **_k: str(tmp / "qupath")
    menu.actions_by_kind["objects"].trigger()
    while not exported:
        wait(50)
    if exported[0] is None:
        raise SystemExit("the GeoJSON export failed")
    geojson = exported[0].files[0]
    draw_geojson(project.load("textures").image, geojson, out_dir / "screenshot-geojson.png")
    tab.exports.last_export_box.close()
    window.close()
    app.processEvents()


def draw_geojson(image, geojson: Path, out: Path) -> None:
    """The image's first channel in grey with every feature's polygons (holes too) in its class colour."""
    import numpy as np
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF

    plane = np.asarray(image)[0].astype(np.float32)[:CROP, :CROP]
    lo, hi = np.percentile(plane, (1, 99.8))
    grey = (np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    grey = np.ascontiguousarray(np.kron(grey, np.ones((SCALE, SCALE), np.uint8)))
    h, w = grey.shape
    picture = QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8)
    header = 34
    canvas = QImage(w, h + header, QImage.Format.Format_RGB32)
    canvas.fill(QColor(30, 30, 30))
    features = json.loads(geojson.read_text())["features"]
    legend: dict[str, QColor] = {}
    painter = QPainter(canvas)
    painter.drawImage(0, header, picture)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for f in features:
        cls = f["properties"].get("classification", {})
        colour = QColor(*cls.get("color", [255, 255, 255]))
        legend.setdefault(cls.get("name", "?"), colour)
        painter.setPen(QPen(colour, 2))
        geom = f["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for poly in polys:
            for ring in poly:
                painter.drawPolygon(
                    QPolygonF([QPointF(x * SCALE, y * SCALE + header) for x, y in ring])
                )
    font = QFont("Sans")
    font.setPixelSize(16)
    painter.setFont(font)
    x = 10
    painter.setPen(QColor(230, 230, 230))
    text = f"{geojson.name}:"
    painter.drawText(x, 23, text)
    x += painter.fontMetrics().horizontalAdvance(text) + 12
    for name, colour in legend.items():
        painter.setPen(QPen(colour, 2))
        painter.drawText(x, 23, f"■ {name}")
        x += painter.fontMetrics().horizontalAdvance(f"■ {name}") + 16
    painter.setPen(Qt.PenStyle.NoPen)
    painter.end()
    canvas.save(str(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)

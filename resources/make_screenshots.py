"""Render the README's screenshots from the real window, offscreen (no display needed).

    QT_QPA_PLATFORM=offscreen python resources/make_screenshots.py [OUT_DIR]

Builds the demo project in a temporary folder, trains with default settings, saves the Annotate tab
(fixed zoom, object size, scale bar), predicts, and saves the Predict tab with the 'Keep these
classes' preview as PNGs; then corrects one object (the corrected object counts as the user's
class), retrains from the Predict tab (the shown predictions are marked stale) and predicts again.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(out_dir: Path) -> None:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from svetlana.core.usecases.demo import build_demo
    from svetlana.core.usecases.train import train_project
    from svetlana.gui.main_window import MainWindow

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

    # Annotate: the current object with its area, the scale bar, one zoom for all objects
    window.annotation_tab.fixed_zoom.setChecked(True)
    live = (
        window.annotation_tab.live
    )  # the live predictions' panel shows its result, not "Measuring…"
    for _ in range(600):
        if live.result is not None and not live.running:
            break
        wait(50)
    wait(300)
    window.grab().save(str(out_dir / "screenshot-annotation.png"))

    tab = window.prediction_tab
    window.tabs.setCurrentWidget(tab)
    done = []
    tab.predictionFinished.connect(lambda *_: done.append(1))
    tab.run_prediction()
    while not done:
        wait(50)
    tab.confidence.setValue(100)
    window.view.fit()
    wait(300)
    window.grab().save(str(out_dir / "screenshot-predict.png"))
    dialog = tab.exports.open_keep_dialog()
    wait(300)
    window.grab().save(str(out_dir / "screenshot-keep-preview.png"))
    dialog.grab().save(str(out_dir / "screenshot-keep-dialog.png"))
    dialog.close()

    # A correction: an unlabelled object given the class the model did not predict.
    session = window.session
    pred = session.predictions[session.current_image]
    store = project.annotations
    row = next(r for r, i in enumerate(pred.ids) if store.get(pred.image, int(i)) is None)
    obj = int(pred.ids[row])
    other = next(c for c in pred.class_names if c != pred.class_names[pred.class_index[row] - 1])
    session.select([obj])
    session.label([obj], other)
    wait(300)
    window.grab().save(str(out_dir / "screenshot-predict-corrected.png"))

    # Retrain from the Predict tab: the shown predictions (model-1) become stale.
    trained = []
    window.training_tab.trainingFinished.connect(lambda *a: trained.append(a))
    tab.retrain_button.click()
    while not trained:
        wait(100)
    window.tabs.setCurrentWidget(tab)
    wait(300)
    window.grab().save(str(out_dir / "screenshot-predict-stale.png"))
    done.clear()
    tab.run_prediction()
    while not done:
        wait(50)
    wait(300)
    window.grab().save(str(out_dir / "screenshot-predict-retrained.png"))
    results_screenshot(window, out_dir, wait)
    window.close()
    app.processEvents()


def results_screenshot(window, out_dir: Path, wait) -> None:
    """The Predict tab's Results per class: counts per class and the area per class."""
    tab = window.prediction_tab
    window.tabs.setCurrentWidget(tab)
    panel = tab.results_panel
    updated = []
    panel.updated.connect(lambda: updated.append(1))
    tab.results_button.click()  # the Results per class window; shown, it computes in a worker
    while not updated:
        wait(50)
    # Show the measurement that differs most between the two first classes (the README's point:
    # a measurement per class), and room for both charts.
    import numpy as np

    best, score = "area", -1.0
    for name in [panel.measurement.itemText(i) for i in range(panel.measurement.count())]:
        panel.measurement.setCurrentText(name)
        a, b = panel.values.of_class(0), panel.values.of_class(1)
        if len(a) and len(b):
            s = abs(np.median(a) - np.median(b)) / (np.std(panel.values.values) + 1e-9)
            best, score = (name, s) if s > score else (best, score)
    panel.measurement.setCurrentText(best)
    wait(400)
    tab.results_window.grab().save(str(out_dir / "screenshot-results.png"))
    tab.results_window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)

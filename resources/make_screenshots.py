"""Render the README's screenshots from the real window, offscreen (no display needed).

    QT_QPA_PLATFORM=offscreen python resources/make_screenshots.py [OUT_DIR]

Builds the demo project in a temporary folder, trains with default settings, predicts, and saves
the Predict tab with the 'Keep these classes' preview as PNGs.
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

    from svetlana.core.workflows import build_demo, train_project
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
    dialog = tab.open_keep_dialog()
    wait(300)
    window.grab().save(str(out_dir / "screenshot-keep-preview.png"))
    dialog.grab().save(str(out_dir / "screenshot-keep-dialog.png"))
    dialog.close()
    window.close()
    app.processEvents()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)

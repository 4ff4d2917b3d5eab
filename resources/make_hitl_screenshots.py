"""Render the README's screenshots of live predictions, Suggest, Review labels and the Gallery.

    QT_QPA_PLATFORM=offscreen python resources/make_hitl_screenshots.py [OUT_DIR]

Builds a project from the rare-class benchmark scene (core/synthetic/hard.py: 5 % of the discs carry a
spot), gives it 60 labels of which two are wrong on purpose, then saves the Annotate tab in
Suggest mode with the live predictions, the Review labels list, and the Gallery of the objects
predicted rare (least sure first).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(out_dir: Path) -> None:
    import numpy as np
    import tifffile
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from svetlana.core.synthetic.hard import rare_class
    from svetlana.core.usecases.setup import create_project
    from svetlana.gui.dialogs.gallery import PREDICTED
    from svetlana.gui.main_window import MainWindow
    from svetlana.gui.tabs.annotate import SUGGEST

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    scene = rare_class(0).images[0]
    ip, mp = tmp / "spots.tif", tmp / "spots_masks.tif"
    tifffile.imwrite(ip, scene.image[0])
    tifffile.imwrite(mp, scene.labels)
    project = create_project(tmp / "rare.svetlana", [(ip, mp, "spots")], ["common", "rare"])
    window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 980)
    window.set_project(project)
    window.show()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def until(cond, limit_s: float = 300) -> None:
        for _ in range(int(limit_s * 20)):
            if cond():
                return
            wait(50)
        raise RuntimeError("timed out")

    session, tab = window.session, window.annotation_tab
    truth = {int(o): int(c) for o, c in scene.classes.items()}
    rng = np.random.default_rng(1)
    rare = [o for o, c in truth.items() if c == 1]
    common = [o for o, c in truth.items() if c == 0]
    given_rare = [int(o) for o in rng.choice(rare, 12, replace=False)]
    given_common = [int(o) for o in rng.choice(common, 48, replace=False)]
    session.label(given_common[1:] + given_rare[:1], "common")  # two wrong labels, for the review
    session.label(given_rare[1:] + given_common[:1], "rare")
    tab.set_mode(SUGGEST)

    def fitted() -> bool:
        r = tab.live.result
        return (
            r is not None and r.fast is not None and r.fast.n_labels == 60 and not tab.live.running
        )

    until(fitted)
    tab.chooser.advance()
    window.view.fit()
    wait(500)
    window.grab().save(str(out_dir / "screenshot-live-suggest.png"))

    tab.review.check_button.click()
    until(
        lambda: tab.review.tree.topLevelItemCount() > 0 or "look right" in tab.review.status.text()
    )
    wait(500)
    window.grab().save(str(out_dir / "screenshot-review.png"))

    gallery = tab.open_gallery()
    gallery.resize(780, 700)
    gallery.set_source(PREDICTED + "rare")
    wait(500)
    gallery.grab().save(str(out_dir / "screenshot-gallery.png"))
    if os.environ.get("SVETLANA_SHOTS_STAY"):  # look at it in a real window (xvfb-shot.sh)
        app.exec()
    gallery.close()
    tab.shutdown()
    window.close()
    app.processEvents()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)

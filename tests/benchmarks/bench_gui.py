"""Keystroke -> next object shown, on a 4096x4096 image with ~16k objects (not in the default run),
on a fast disk and on a slow one (every fsync 200 ms, as on a network share).

Run: QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui.py [--fsync-ms 0 200]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import tifffile  # noqa: E402


def make_data(folder: Path, size: int = 4096, grid: int = 128) -> tuple[Path, Path]:
    """~16k square-ish objects (grid x grid cells with gaps), random intensities."""
    rng = np.random.default_rng(0)
    cell = size // grid
    yy, xx = np.mgrid[0:size, 0:size]
    gy, gx = yy // cell, xx // cell
    inside = (
        ((yy % cell) > 3) & ((xx % cell) > 3) & ((yy % cell) < cell - 3) & ((xx % cell) < cell - 3)
    )
    labels = np.where(inside, gy * grid + gx + 1, 0).astype(np.uint32)
    image = (rng.normal(300, 30, labels.shape) + 800 * inside).astype(np.uint16)
    ip, mp = folder / "big.tif", folder / "big_masks.tif"
    tifffile.imwrite(ip, image)
    tifffile.imwrite(mp, labels)
    return ip, mp


def keys(tmp: Path, ip: Path, mp: Path, fsync_ms: float, presses: int = 40) -> np.ndarray:
    """Milliseconds from a class key to the next object painted, ``presses`` times."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from svetlana.core.usecases.setup import create_project
    from svetlana.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(fsync_ms / 1000)
        real_fsync(fd)

    t0 = time.perf_counter()
    project = create_project(tmp / f"bench{fsync_ms:g}.svetlana", [(ip, mp, "big")], ["a", "b"])
    print(f"project: {time.perf_counter() - t0:.1f} s, {project.images[0].n_objects} objects")
    win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    t0 = time.perf_counter()
    win.set_project(project)
    win.view.flush()
    app.processEvents()
    print(f"open image (first paint): {time.perf_counter() - t0:.2f} s")
    # warm-up (first patch preview computes the normalised image and the patch size)
    for _ in range(3):
        QTest.keyClick(win, Qt.Key.Key_Space)
        win.view.flush()
        app.processEvents()
    os.fsync = slow_fsync if fsync_ms else real_fsync
    times = []
    try:
        for i in range(presses):
            before = win.annotation_tab.current
            t = time.perf_counter()
            QTest.keyClick(win, "1" if i % 2 else "2")
            win.view.flush()  # the overlay tiles
            win.view.graphics.viewport().repaint()  # the frame the user sees
            times.append(time.perf_counter() - t)
            assert win.annotation_tab.current != before
            app.processEvents()  # let the preview/progress timers run outside the measurement
            time.sleep(0.05)
            app.processEvents()
        win.close()  # waits for the journal's fsyncs
    finally:
        os.fsync = real_fsync
    return np.array(times) * 1000


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fsync-ms", type=float, nargs="+", default=[0, 200])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ip, mp = make_data(tmp)
        print(f"data: {time.perf_counter() - t0:.1f} s; load {os.getloadavg()[0]:.1f}")
        for fsync_ms in args.fsync_ms:
            ms = keys(tmp, ip, mp, fsync_ms)
            print(
                f"fsync {fsync_ms:g} ms: keystroke -> next object shown: median "
                f"{np.median(ms):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms, max {ms.max():.1f} ms"
                f" (target median <= 30, max <= 50 ms); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

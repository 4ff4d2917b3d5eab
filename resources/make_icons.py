"""Render the app icon from resources/svetlana.svg: PNG sizes, .ico, .icns; sync package data.

Run after changing the SVG, the .desktop launcher or the MIME file:
    QT_QPA_PLATFORM=offscreen python resources/make_icons.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

RES = Path(__file__).resolve().parent
PACKAGE_RES = RES.parent / "app" / "svetlana" / "resources"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# Files the installed package needs at run time (`svetlana install-desktop`, window icon).
SHIPPED = ("svetlana.svg", "svetlana.desktop", "svetlana-mime.xml")


def render_png(svg: Path, size: int, out: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out)):
        raise SystemExit(f"cannot write {out}")


def main() -> int:
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - fonts/paint
    icons = PACKAGE_RES / "icons"
    icons.mkdir(parents=True, exist_ok=True)
    svg = RES / "svetlana.svg"
    for size in SIZES:
        render_png(svg, size, icons / f"svetlana-{size}.png")
    big = Image.open(icons / "svetlana-512.png")
    ico_sizes = [(s, s) for s in SIZES if s <= 256]
    big.save(RES / "svetlana.ico", sizes=ico_sizes)
    big.save(RES / "svetlana.icns")
    for name in SHIPPED:
        shutil.copyfile(RES / name, PACKAGE_RES / name)
    print(f"wrote {len(SIZES)} PNGs to {icons}, svetlana.ico, svetlana.icns; synced {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the Help ▸ Guide shipped with the app (app/svetlana/resources/guide/): the README's
"Using it" section and its screenshots, scaled for the help window. Run after changing either:
`python resources/make_guide.py` (a test fails while the shipped guide differs from the README)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

from svetlana.gui.guide import GUIDE_DIR, GUIDE_FILE, guide_from_readme  # noqa: E402

WIDTH = 760  # px: the help window's text width


def main() -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage

    app = QGuiApplication.instance() or QGuiApplication(["make_guide", "-platform", "offscreen"])
    text = guide_from_readme((ROOT / "README.md").read_text(encoding="utf-8"))
    GUIDE_DIR.mkdir(parents=True, exist_ok=True)
    for old in GUIDE_DIR.glob("*.png"):
        old.unlink()
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        image = QImage(str(ROOT / "resources" / name))
        if image.isNull():
            raise SystemExit(f"cannot read resources/{name}")
        if image.width() > WIDTH:
            image = image.scaledToWidth(WIDTH, Qt.TransformationMode.SmoothTransformation)
        image.save(str(GUIDE_DIR / name), "PNG")
    (GUIDE_DIR / GUIDE_FILE).write_text(text, encoding="utf-8")
    del app
    print(f"wrote {GUIDE_DIR / GUIDE_FILE} and its screenshots")


if __name__ == "__main__":
    main()

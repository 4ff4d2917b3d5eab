"""Help ▸ Guide: the README's "Using it" with its screenshots, shipped with the app and shown
offline; the shipped copy never drifts from the README."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QTextDocument

from svetlana.gui.guide import GUIDE_DIR, GUIDE_FILE, guide_from_readme

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_guide_is_the_readmes_using_it_section():
    shipped = (GUIDE_DIR / GUIDE_FILE).read_text(encoding="utf-8")
    expected = guide_from_readme((ROOT / "README.md").read_text(encoding="utf-8"))
    assert shipped == expected, "run: python resources/make_guide.py"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", shipped)
    assert images and all((GUIDE_DIR / name).is_file() for name in images)


def test_help_guide_opens_with_the_text_and_its_screenshots(window, qtbot):
    help_menu = next(a.menu() for a in window.menuBar().actions() if "Help" in a.text())
    assert window.guide_action in help_menu.actions()
    window.guide_action.trigger()
    dialog = window.help.guide
    qtbot.waitExposed(dialog)
    text = dialog.browser.toPlainText()
    assert "Annotate" in text and "Keep these classes" in text
    doc = dialog.browser.document()
    image = doc.resource(QTextDocument.ResourceType.ImageResource, "screenshot-review.png")
    assert image is not None and not image.isNull()

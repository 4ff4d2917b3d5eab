"""Help ▸ Guide: the README's "Using it" section with its screenshots, shipped with the app
(resources/guide/, written by resources/make_guide.py) and shown offline in a QTextBrowser."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

GUIDE_DIR = Path(__file__).resolve().parents[1] / "resources" / "guide"
GUIDE_FILE = "using-it.md"
SECTION = "## Using it"


def guide_from_readme(readme: str) -> str:
    """The README's "Using it" section as the guide: images from the guide's own folder."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end >= 0 else None].strip() + "\n"
    section = section.replace(SECTION, "# Using Svetlana", 1)
    return re.sub(r"(!\[[^\]]*\]\()resources/", r"\1", section)


class GuideDialog(QDialog):
    """The guide in a resizable, non-modal window; links to the web open in the browser."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Guide — Svetlana")
        self.setModal(False)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setSearchPaths([str(GUIDE_DIR)])
        path = GUIDE_DIR / GUIDE_FILE
        try:
            self.browser.setMarkdown(path.read_text(encoding="utf-8"))
        except OSError:
            self.browser.setPlainText(
                f"The guide is missing from this installation ({path}). It is the section "
                "'Using it' of Svetlana's README."
            )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
        self.resize(860, 760)

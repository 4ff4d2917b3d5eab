"""The Annotate tab: a few panels of one job each (see tab.py)."""

from svetlana.gui.tabs.annotate.navigation import CLICK, MODE_HELP, RANDOM, SUGGEST, UNCERTAIN
from svetlana.gui.tabs.annotate.tab import AnnotationTab

__all__ = ["CLICK", "MODE_HELP", "RANDOM", "SUGGEST", "UNCERTAIN", "AnnotationTab"]

"""Svetlana: classify segmented objects in microscopy images."""

__version__ = "0.1.0"

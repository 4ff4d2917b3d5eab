"""Dialogs: new project / add images, keep classes, the gallery."""

"""The main window's parts (gui/main_window.py composes them): the start page, the menus and
their actions, the project's lifecycle, the image actions, the image bar, the status line,
the window's keys and the Help menu."""

"""The window's menu bar: its actions (kept as the window's attributes, ``win.new_action``…,
where the tests and the click coverage find them), the menus, and which actions are enabled."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from svetlana.gui import keymap

# Actions that need a project; the ones marked busy are also off while work runs.
_NEEDS_PROJECT = (
    "add_images_action", "remove_image_action", "spacing_action", "export_action",
    "close_action", "prev_image_action", "next_image_action",
)  # fmt: skip
_OFF_WHILE_BUSY = ("new_action", "open_action", "demo_action")
_OFF_WHILE_BUSY_WITH_PROJECT = (
    "add_images_action", "remove_image_action", "spacing_action", "close_action",
)  # fmt: skip


def _action(win: QMainWindow, text: str, slot, shortcut=None, checked: bool | None = None):
    """A window action; ``checked`` not None makes it a check box calling ``slot(on)``."""
    action = QAction(text, win)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if checked is not None:
        action.setCheckable(True)
        action.setChecked(checked)
        action.toggled.connect(slot)
    else:
        action.triggered.connect(slot)
    return action


def make_actions(win: QMainWindow) -> None:
    """The window's actions, wired to its parts (projects, image actions, view, help)."""
    K = QKeySequence.StandardKey
    projects, images, session, view = win.projects, win.image_actions, win.session, win.view
    win.new_action = _action(win, "&New project…", projects.new_project, K.New)
    win.open_action = _action(win, "&Open project…", projects.open_project_dialog, K.Open)
    win.demo_action = _action(win, "Try the &demo", lambda: projects.open_demo())
    win.add_images_action = _action(win, "&Add images…", images.add_images)
    win.remove_image_action = _action(win, "&Remove image…", images.remove_image)
    win.spacing_action = _action(win, "Set &voxel size…", images.set_spacing)
    win.export_action = _action(win, "&Export labels…", images.export_labels)
    win.close_action = _action(win, "&Close project", projects.close_project, K.Close)
    win.quit_action = _action(win, "&Quit", win.close, K.Quit)
    win.undo_action = session.undo_stack.createUndoAction(win, "&Undo")
    win.undo_action.setShortcuts(keymap.shortcuts("undo"))
    win.redo_action = session.undo_stack.createRedoAction(win, "&Redo")
    win.redo_action.setShortcuts(keymap.shortcuts("redo", K.Redo))
    opts = session.view_options

    def option(name: str):
        return lambda on: session.set_view_option(name, on)

    win.outlines_action = _action(
        win, "Object &outlines", option("outlines"), checked=opts["outlines"]
    )
    win.labels_action = _action(
        win, "&Labels (class colours)", option("labels"), checked=opts["labels"]
    )
    win.predictions_action = _action(
        win, "&Predictions", option("predictions"), checked=opts["predictions"]
    )
    win.auto_contrast_action = _action(win, "&Auto contrast", view.auto_contrast)
    win.fit_action = _action(win, "&Whole image", view.fit, keymap.sequences("fit")[0])
    win.prev_image_action = _action(win, "Previous image", lambda: session.step_image(-1))
    win.next_image_action = _action(win, "Next image", lambda: session.step_image(1))
    win.guide_action = _action(win, "&Guide", win.help.show_guide, K.HelpContents)
    win.shortcuts_action = _action(win, "&Keyboard shortcuts", win.help.show_shortcuts)
    win.about_action = _action(win, "&About Svetlana", win.help.show_about)


def make_menus(win: QMainWindow) -> None:
    """File, Edit, View and Help, from the actions of ``make_actions``."""
    bar = win.menuBar()
    m = bar.addMenu("&File")
    m.addAction(win.new_action)
    m.addAction(win.open_action)
    win.recent_menu = m.addMenu("Open &Recent")
    win.recent_menu.aboutToShow.connect(lambda: _fill_recent_menu(win))
    m.addAction(win.demo_action)
    m.addSeparator()
    for a in (win.add_images_action, win.remove_image_action, win.spacing_action):
        m.addAction(a)
    m.addAction(win.export_action)
    m.addSeparator()
    m.addAction(win.close_action)
    m.addAction(win.quit_action)
    m = bar.addMenu("&Edit")
    m.addAction(win.undo_action)
    m.addAction(win.redo_action)
    m = bar.addMenu("&View")
    for a in (win.outlines_action, win.labels_action, win.predictions_action):
        m.addAction(a)
    m.addSeparator()
    win.channels_menu = m.addMenu("&Channels")
    win.channels_menu.aboutToShow.connect(lambda: _fill_channels_menu(win))
    m.addAction(win.auto_contrast_action)
    m.addAction(win.fit_action)
    m.addSeparator()
    m.addAction(win.prev_image_action)
    m.addAction(win.next_image_action)
    m.addSeparator()
    tab_keys = keymap.sequences("tab")
    for i, name in enumerate(("&Annotate", "&Train", "&Predict")):
        action = QAction(name, win)
        action.setShortcut(QKeySequence(tab_keys[i]))
        action.triggered.connect(lambda _=False, i=i: win.tabs.setCurrentIndex(i))
        m.addAction(action)
    m = bar.addMenu("&Help")
    m.addAction(win.guide_action)
    m.addAction(win.shortcuts_action)
    m.addAction(win.about_action)


def _fill_recent_menu(win: QMainWindow) -> None:
    win.recent_menu.clear()
    paths = win.settings.recent_projects()
    for p in paths:
        win.recent_menu.addAction(str(p), lambda p=p: win.projects.open_project(p))
    if not paths:
        win.recent_menu.addAction("(none)").setEnabled(False)


def _fill_channels_menu(win: QMainWindow) -> None:
    win.channels_menu.clear()
    view = win.view
    for c in range(len(view.channel_items)):
        action = win.channels_menu.addAction(f"Channel {c + 1}")
        action.setCheckable(True)
        action.setChecked(view.channel_visible(c))
        action.toggled.connect(lambda on, c=c: view.set_channel_visible(c, on))


def enable_for_project(win: QMainWindow, has_project: bool) -> None:
    """The actions that act on a project, on only while one is open."""
    for name in _NEEDS_PROJECT:
        getattr(win, name).setEnabled(has_project)


def enable_for_busy(win: QMainWindow, busy: bool) -> None:
    """While work runs, nothing that opens, closes or changes the project's images."""
    for name in _OFF_WHILE_BUSY:
        getattr(win, name).setEnabled(not busy)
    for name in _OFF_WHILE_BUSY_WITH_PROJECT:
        getattr(win, name).setEnabled(not busy and win.session.project is not None)

"""A test run never touches the user's settings, recent projects, log or data folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import USER_ENV


def _real(var: str, default: str) -> Path:
    home = Path(USER_ENV["HOME"] or Path.home())
    return Path(USER_ENV[var] or home / default)


def _state(path: Path):
    """What a write would change: existence, size and modification time of every file."""
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def test_settings_logs_and_demo_live_in_the_temporary_home(isolated_user_folders):
    pytest.importorskip("PySide6")
    from svetlana.core.usecases.demo import demo_path
    from svetlana.gui.app import log_dir
    from svetlana.gui.settings import default_settings

    home = isolated_user_folders
    for path in (default_settings().fileName(), log_dir(), demo_path()):
        assert Path(path).is_relative_to(home), path


@pytest.mark.skipif(os.name != "posix", reason="the XDG folders of Linux")
def test_a_window_with_default_settings_leaves_the_users_files_alone(
    isolated_user_folders, qtbot, tmp_path, pair
):
    from PySide6.QtWidgets import QApplication

    from svetlana.core.usecases.setup import create_project
    from svetlana.gui.app import setup_logging
    from svetlana.gui.main_window import MainWindow
    from svetlana.gui.settings import Settings

    real = [
        _real("XDG_CONFIG_HOME", ".config") / "Svetlana",
        _real("XDG_STATE_HOME", ".local/state") / "Svetlana",
        _real("XDG_DATA_HOME", ".local/share") / "Svetlana",
    ]
    before = [_state(p) for p in real]
    log = setup_logging()  # as `svetlana gui` does
    try:
        win = MainWindow()  # the user's settings, as the app opens them
        qtbot.addWidget(win)
        project = create_project(tmp_path / "p.svetlana", [(pair[0], pair[1], "cells")], ["a"])
        win.set_project(project)  # remembered in "Recent projects"
        win.close()
        QApplication.processEvents()
    finally:
        import logging

        for h in list(logging.getLogger().handlers):
            if getattr(h, "baseFilename", None) == str(log):
                logging.getLogger().removeHandler(h)
                h.close()
    assert log is not None and Path(log).is_relative_to(isolated_user_folders)
    assert Settings().recent_projects()[0] == (tmp_path / "p.svetlana").resolve()
    assert [_state(p) for p in real] == before

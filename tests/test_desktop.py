"""The Linux launcher: install/uninstall for the current user, and double-click opening a project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from svetlana import __main__ as entry
from svetlana import desktop
from svetlana.cli import main as cli_main

pytestmark = pytest.mark.skipif(not desktop.is_supported(), reason="freedesktop launchers only")


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    data, config = tmp_path / "data", tmp_path / "config"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return data, config


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_install_then_uninstall_leaves_nothing_behind(xdg):
    data, _ = xdg
    installed = desktop.install_desktop(command=["/opt/Svetlana/Svetlana"], run_tools=False)
    assert set(installed.files) == _files(data)
    launcher = data / "applications" / "svetlana.desktop"
    text = launcher.read_text()
    assert "Exec=/opt/Svetlana/Svetlana %f" in text
    assert "TryExec=/opt/Svetlana/Svetlana" in text
    for size in desktop.ICON_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "svetlana.png").is_file()
    assert (data / "mime" / "packages" / "svetlana.xml").is_file()

    removed = desktop.uninstall_desktop(run_tools=False)
    assert set(removed.files) == set(installed.files)
    assert _files(data) == set()
    assert desktop.uninstall_desktop(run_tools=False).files == ()  # twice is harmless


def test_uninstall_keeps_files_it_did_not_install(xdg):
    data, _ = xdg
    other = data / "applications" / "other.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\n")
    desktop.install_desktop(command=["/x/svetlana-gui"], run_tools=False)
    desktop.uninstall_desktop(run_tools=False)
    assert _files(data) == {other}


def test_exec_line_quotes_paths_with_spaces(xdg):
    entry_text = desktop.desktop_entry(["/home/me/My Apps/Svetlana", "--flag$"])
    assert 'Exec="/home/me/My Apps/Svetlana" "--flag\\\\$" %f' in entry_text


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_installed_launcher_is_valid(xdg):
    data, _ = xdg
    desktop.install_desktop(command=["/home/me/My Apps/svetlana-gui"], run_tools=False)
    r = subprocess.run(
        ["desktop-file-validate", str(data / "applications" / "svetlana.desktop")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_launcher_points_at_this_installation():
    command = desktop.launcher_command()
    assert Path(command[0]).exists()
    assert "svetlana-gui" in Path(command[0]).name or command[-2:] == ["svetlana", "gui"]


def test_missing_desktop_tools_are_only_notes(xdg, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    change = desktop.install_desktop(command=["/x/svetlana-gui"])
    assert change.files
    assert any("update-mime-database not found" in n for n in change.notes)


@pytest.mark.skipif(
    shutil.which("update-mime-database") is None or shutil.which("gio") is None,
    reason="needs shared-mime-info and gio",
)
def test_file_manager_sees_a_project_manifest_as_a_svetlana_project(xdg, tmp_path, monkeypatch):
    from svetlana.core.project.bundle import Project

    data, _ = xdg
    desktop.install_desktop(command=["/x/svetlana-gui"])
    monkeypatch.setenv("XDG_DATA_DIRS", "/usr/local/share:/usr/share")
    with Project.create(tmp_path / "cells.svetlana", ["a", "b"]):
        pass
    other = tmp_path / "web" / "project.json"
    other.parent.mkdir()
    other.write_text('{"name": "not ours", "targets": {}}\n')

    def content_type(path: Path) -> str:
        r = subprocess.run(
            ["gio", "info", "-a", "standard::content-type", str(path)],
            capture_output=True,
            text=True,
        )
        return r.stdout.rsplit(":", 1)[-1].strip()

    assert content_type(tmp_path / "cells.svetlana" / "project.json") == desktop.MIME_TYPE
    assert content_type(other) == "application/json"


def test_uninstall_removes_only_our_default_association(xdg):
    _, config = xdg
    config.mkdir()
    mimeapps = config / "mimeapps.list"
    mimeapps.write_text(
        "[Default Applications]\n"
        "application/x-svetlana-project=svetlana.desktop\n"
        "text/plain=gedit.desktop\n"
    )
    desktop.uninstall_desktop()
    assert mimeapps.read_text() == "[Default Applications]\ntext/plain=gedit.desktop\n"


def test_cli_install_and_uninstall(xdg, capsys):
    data, _ = xdg
    assert cli_main(["install-desktop"]) == 0
    assert "installed the Svetlana launcher" in capsys.readouterr().out
    assert (data / "applications" / "svetlana.desktop").is_file()
    assert cli_main(["uninstall-desktop"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not (data / "applications" / "svetlana.desktop").exists()


def test_cli_explains_other_systems(xdg, monkeypatch, capsys):
    data, _ = xdg
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cli_main(["install-desktop"]) == 1
    assert "Svetlana.app" in capsys.readouterr().out
    assert not data.exists()


def test_double_clicked_project_opens_the_window(tmp_path, monkeypatch):
    bundle = tmp_path / "cells.svetlana"
    bundle.mkdir()
    (bundle / "project.json").write_text("{}")
    opened = []
    monkeypatch.setattr(entry, "run_gui", lambda path=None, demo=False: opened.append(path) or 0)
    assert entry.main([str(bundle / "project.json")]) == 0
    assert entry.main([str(bundle)]) == 0
    assert entry.main([str(bundle), "-psn_0_12345"]) == 0
    assert opened == [bundle / "project.json", bundle, bundle]


def test_other_single_arguments_stay_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "info").mkdir()  # a folder named like a sub-command is not a project
    assert entry.opened_project(["info"]) is None
    assert entry.opened_project([str(tmp_path / "missing.svetlana")]) is None
    assert entry.opened_project(["a.svetlana", "b.svetlana"]) is None
    assert entry.opened_project([]) is None

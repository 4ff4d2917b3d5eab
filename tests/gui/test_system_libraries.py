"""`svetlana gui` on a Linux desktop without some of Qt's xcb libraries names every missing one
and the packages to install, instead of Qt's abort naming another package."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path

from svetlana.gui import system_libraries as libs


def test_the_missing_libraries_and_their_packages_are_named():
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    message = libs.check_before_qt({"DISPLAY": ":0"}, loads=lambda so: so not in gone)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in message
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1\n" in message


def test_nothing_is_said_when_all_load_or_qt_does_not_use_xcb():
    assert libs.check_before_qt({"DISPLAY": ":0"}, loads=lambda so: True) is None
    never = lambda so: False  # noqa: E731
    assert libs.check_before_qt({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, never) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}
    assert libs.check_before_qt(wayland, never) is None
    assert libs.check_before_qt({"QT_QPA_PLATFORM": "xcb"}, never) is not None


def test_the_list_covers_what_the_installed_xcb_plugin_links_to():
    import re
    import shutil
    import subprocess
    from importlib.util import find_spec

    import pytest

    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("no ldd here")
    qt = Path(find_spec("PySide6").submodule_search_locations[0]) / "Qt"
    needed: set[str] = set()
    for lib in (qt / "plugins/platforms/libqxcb.so", qt / "lib/libQt6XcbQpa.so.6"):
        out = subprocess.run([ldd, str(lib)], capture_output=True, text=True).stdout
        needed |= set(re.findall(r"^\s*(\S+\.so\S*) =>", out, re.M))
    x11 = {n for n in needed if re.match(r"lib(xcb|X11|xkbcommon|EGL|GL\.|fontconfig|dbus)", n)}
    assert x11 and x11 <= set(libs.XCB_LIBRARIES), x11 - set(libs.XCB_LIBRARIES)


def test_svetlana_gui_prints_it_and_exits_before_qt(monkeypatch):
    import svetlana.__main__ as entry
    from svetlana.gui import app

    monkeypatch.setattr(app, "run", lambda *a, **k: 0)  # the window must not be reached
    monkeypatch.setattr(entry, "has_display", lambda: True)
    monkeypatch.setattr(libs, "_loads", lambda so: so != "libxcb-cursor.so.0")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    err = io.StringIO()
    with redirect_stderr(err):
        assert entry.run_gui() == 1
    assert "libxcb-cursor.so.0" in err.getvalue() and "libxcb-cursor0" in err.getvalue()

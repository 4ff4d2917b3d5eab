"""Before Qt starts on Linux/X11: are the system libraries of Qt's xcb platform plugin there?

Without one (a fresh Debian/Ubuntu lacks libxcb-icccm4 and libxcb-keysyms1) Qt aborts naming
another package (libxcb-cursor0); here every missing library is named with the package that
gives it. Qt-free: runs before PySide6 is imported. The list is what `ldd` shows for PySide6
6.11's plugins/platforms/libqxcb.so and lib/libQt6XcbQpa.so.6, beyond Qt's own libraries.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# soname -> Debian/Ubuntu package
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(
    libraries: dict[str, str] = XCB_LIBRARIES, loads: Callable[[str], bool] | None = None
) -> dict[str, str]:
    """The libraries the dynamic loader cannot find (soname -> package)."""
    loads = loads or _loads
    return {so: pkg for so, pkg in libraries.items() if not loads(so)}


def uses_xcb(environ=os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will start its X11 (xcb) plugin here."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return False  # Qt 6 prefers its Wayland plugin there
    return bool(environ.get("DISPLAY"))


def missing_message(missing: dict[str, str]) -> str:
    """What to tell the user (one paragraph and the command that fixes it)."""
    packages = " ".join(dict.fromkeys(missing.values()))
    names = ", ".join(missing)
    return (
        f"error: the Svetlana window needs system libraries that are not installed: {names}.\n"
        f"On Debian or Ubuntu install them with:\n  sudo apt install {packages}\n"
        "(other Linux systems: the packages that provide these files). "
        "The command line works without them: svetlana --help"
    )


def check_before_qt(environ=os.environ, loads: Callable[[str], bool] | None = None) -> str | None:
    """The message to print instead of starting Qt, or None when the window can start."""
    if not uses_xcb(environ):
        return None
    missing = missing_libraries(loads=loads)
    return missing_message(missing) if missing else None

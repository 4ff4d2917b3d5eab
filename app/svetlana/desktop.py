"""Install or remove the Linux desktop launcher, icons and project file type for the current user."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from svetlana.core.errors import SvetlanaError

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent / "resources"
APP_ID = "svetlana"
DESKTOP_FILE = f"{APP_ID}.desktop"
MIME_FILE = f"{APP_ID}.xml"
MIME_TYPE = "application/x-svetlana-project"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
PLATFORM_HINT = (
    "on macOS drag Svetlana.app to Applications (Finder then opens .svetlana projects with it); "
    "on Windows unpack the release zip and start Svetlana.exe"
)

# Characters that force quoting of an Exec argument (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


@dataclass(frozen=True)
class DesktopChange:
    """What install/uninstall did: files written or removed, and notes for the user."""

    files: tuple[Path, ...]
    notes: tuple[str, ...]


def has_display() -> bool:
    """Whether a window can be shown (always on Windows/macOS; X11/Wayland/offscreen on Linux)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def is_supported() -> bool:
    """Whether this platform uses freedesktop launchers (Linux and the BSDs)."""
    return sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when unset (XDG Base Directory spec)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def config_home() -> Path:
    """$XDG_CONFIG_HOME, or ~/.config when unset."""
    value = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".config"


def launcher_command() -> list[str]:
    """The command that opens the window: the frozen executable, or the `svetlana-gui` script."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    bindir = Path(sys.executable).parent  # a venv's scripts sit next to its interpreter
    for name in ("svetlana-gui", "svetlana-gui.exe"):
        if (bindir / name).is_file():
            return [str(bindir / name)]
    found = shutil.which("svetlana-gui")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "svetlana", "gui"]


def _exec_arg(arg: str) -> str:
    """Quote one Exec argument per the Desktop Entry spec (then escape it as a string value)."""
    arg = arg.replace("%", "%%")
    if any(c in _EXEC_RESERVED for c in arg):
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        arg = f'"{inner}"'
    return arg.replace("\\", "\\\\")  # the value itself is a string with backslash escapes


def desktop_entry(command: list[str]) -> str:
    """The shipped launcher with Exec (and TryExec) pointing at `command`."""
    lines = []
    for line in (RESOURCES / DESKTOP_FILE).read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(_exec_arg(a) for a in command) + " %f"
            if os.path.isabs(command[0]):
                lines.append("TryExec=" + command[0].replace("\\", "\\\\"))
        elif line.startswith("TryExec="):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def planned_files(home: Path | None = None) -> dict[Path, Path | None]:
    """Destination -> shipped source (None: generated) for everything install_desktop writes."""
    home = home or data_home()
    files: dict[Path, Path | None] = {home / "applications" / DESKTOP_FILE: None}
    for size in ICON_SIZES:
        dest = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        files[dest] = RESOURCES / "icons" / f"{APP_ID}-{size}.png"
    files[home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"] = (
        RESOURCES / f"{APP_ID}.svg"
    )
    files[home / "mime" / "packages" / MIME_FILE] = RESOURCES / "svetlana-mime.xml"
    return files


def _require_supported() -> None:
    if not is_supported():
        raise SvetlanaError(f"the desktop launcher is for Linux; {PLATFORM_HINT}")


def _run_tool(argv: list[str], notes: list[str]) -> None:
    """Run a desktop database tool if installed; its absence or failure is only a note."""
    if shutil.which(argv[0]) is None:
        notes.append(f"{argv[0]} not found; the desktop may need a re-login to notice the change")
        return
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        notes.append(f"{argv[0]} failed: {exc}")
        return
    if r.returncode != 0:
        detail = (r.stderr or r.stdout).strip().splitlines()
        notes.append(f"{argv[0]} failed: {detail[-1] if detail else f'exit {r.returncode}'}")


def _refresh(home: Path, notes: list[str], set_default: bool) -> None:
    _run_tool(["update-mime-database", str(home / "mime")], notes)
    _run_tool(["update-desktop-database", str(home / "applications")], notes)
    if set_default:
        _run_tool(["xdg-mime", "default", DESKTOP_FILE, MIME_TYPE], notes)


def install_desktop(
    home: Path | None = None, command: list[str] | None = None, run_tools: bool = True
) -> DesktopChange:
    """Install launcher, icons and the project MIME type under `home` ($XDG_DATA_HOME)."""
    _require_supported()
    home = home or data_home()
    command = command or launcher_command()
    written: list[Path] = []
    try:
        for dest, source in planned_files(home).items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            if source is None:
                tmp.write_text(desktop_entry(command), encoding="utf-8")
            else:
                shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
            written.append(dest)
    except OSError as exc:
        raise SvetlanaError(f"cannot install the launcher ({exc.strerror or exc})", dest) from exc
    notes: list[str] = []
    if run_tools:
        _refresh(home, notes, set_default=True)
    log.info("installed %d desktop files under %s", len(written), home)
    return DesktopChange(tuple(written), tuple(notes))


def _remove_default_association(notes: list[str]) -> None:
    """Drop our `xdg-mime default` line from mimeapps.list (and nothing else)."""
    path = config_home() / "mimeapps.list"
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return
    ours = f"{MIME_TYPE}={DESKTOP_FILE}"
    kept = [ln for ln in lines if ln.strip() not in (ours, ours + ";")]
    if len(kept) != len(lines):
        try:
            path.write_text("".join(kept), encoding="utf-8")
        except OSError as exc:
            notes.append(f"could not update {path}: {exc.strerror or exc}")


def uninstall_desktop(home: Path | None = None, run_tools: bool = True) -> DesktopChange:
    """Remove exactly the files install_desktop writes; missing ones are skipped."""
    _require_supported()
    home = home or data_home()
    removed: list[Path] = []
    for dest in planned_files(home):
        try:
            dest.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SvetlanaError(f"cannot remove ({exc.strerror or exc})", dest) from exc
        removed.append(dest)
    notes: list[str] = []
    if run_tools:
        _remove_default_association(notes)
        _refresh(home, notes, set_default=False)
    log.info("removed %d desktop files under %s", len(removed), home)
    return DesktopChange(tuple(removed), tuple(notes))

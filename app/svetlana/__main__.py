"""Entry point: no sub-command opens the desktop app, otherwise the command line."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path


def has_display() -> bool:
    """Whether a window can be shown (always on Windows/macOS; X11/Wayland/offscreen on Linux)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_gui(bundle: Path | None = None, demo: bool = False) -> int:
    if not has_display():
        print(
            "error: no display found to open the Svetlana window; "
            "use the command line (svetlana --help) or `svetlana demo --headless`",
            file=sys.stderr,
        )
        return 1
    from svetlana.gui.app import run

    return run(bundle, demo=demo)


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    from svetlana.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


def gui_main() -> int:
    multiprocessing.freeze_support()
    args = [a for a in sys.argv[1:] if not a.startswith("-psn_")]  # macOS Finder adds -psn_*
    return run_gui(Path(args[0]) if args else None)


if __name__ == "__main__":
    sys.exit(main())

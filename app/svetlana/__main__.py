"""Entry point: no sub-command opens the desktop app, otherwise the command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def has_display() -> bool:
    """Whether a window can open (svetlana.desktop's answer, imported only when asked)."""
    from svetlana.desktop import has_display as check

    return check()


def _freeze_support() -> None:
    """multiprocessing's start of a child process in a packaged (frozen) app; multiprocessing
    is imported only there (~0.1 s of every command's start otherwise)."""
    if getattr(sys, "frozen", False):
        import multiprocessing

        multiprocessing.freeze_support()


def run_gui(bundle: Path | None = None, demo: bool = False) -> int:
    if not has_display():
        print(
            "error: no display found to open the Svetlana window; "
            "use the command line (svetlana --help) or `svetlana demo --headless`",
            file=sys.stderr,
        )
        return 1
    from svetlana.gui.system_libraries import check_before_qt

    problem = check_before_qt()
    if problem:  # Qt would abort naming only one (often another) package
        print(problem, file=sys.stderr)
        return 1
    smoke_ms = os.environ.get("SVETLANA_SMOKE_EXIT_MS")
    if smoke_ms:
        _schedule_smoke_exit(int(smoke_ms))
    from svetlana.gui.app import run

    return run(bundle, demo=demo)


def _schedule_smoke_exit(after_ms: int) -> None:
    """Packaging smoke test: report when the window shows, then quit `after_ms` later.

    Set SVETLANA_SMOKE_EXIT_MS (and optionally SVETLANA_SMOKE_T0, the launch time in epoch
    seconds) to have the app print "smoke: window shown after X s" and "smoke: title ..." to
    stderr and exit by itself; exit status 1 when no window showed within a minute.
    """
    import time

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    t0 = float(os.environ.get("SVETLANA_SMOKE_T0") or time.time())
    app = QApplication.instance() or QApplication(sys.argv[:1])  # gui.app.run reuses it
    poll = QTimer(app)
    shown: list[float] = []

    def check() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.isWindow()]
        if not shown and windows:
            shown.append(time.time())
            print(f"smoke: window shown after {shown[0] - t0:.2f} s", file=sys.stderr, flush=True)
        if shown and time.time() - shown[0] >= after_ms / 1000:
            titles = "; ".join(w.windowTitle() for w in windows)
            print(f"smoke: title {titles!r}", file=sys.stderr, flush=True)
            app.exit(0)
        elif not shown and time.time() - t0 > 60:
            print("smoke: no window within 60 s", file=sys.stderr, flush=True)
            app.exit(1)

    poll.timeout.connect(check)
    poll.start(20)


def opened_project(argv: list[str]) -> Path | None:
    """The project path when it is the only argument (a double-clicked NAME.svetlana/project.json)."""
    if len(argv) != 1:
        return None
    path = Path(argv[0])
    if path.is_dir() and path.suffix == ".svetlana":
        return path
    if path.is_file() and path.name == "project.json":
        return path
    return None


def main(argv: list[str] | None = None) -> int:
    _freeze_support()
    args = sys.argv[1:] if argv is None else argv
    args = [a for a in args if not a.startswith("-psn_")]  # macOS Finder adds -psn_*
    project = opened_project(args)
    if project is not None:  # file association: open the window on it
        return run_gui(project)
    from svetlana.cli import main as cli_main

    return cli_main(args, open_gui=run_gui)


def gui_main() -> int:
    _freeze_support()
    args = [a for a in sys.argv[1:] if not a.startswith("-psn_")]  # macOS Finder adds -psn_*
    return run_gui(Path(args[0]) if args else None)


if __name__ == "__main__":
    sys.exit(main())

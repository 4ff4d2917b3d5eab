"""Install or remove the desktop launcher (the double-click entry)."""

from __future__ import annotations

from typing import TextIO

from svetlana.cli.progress import EXIT_ERROR, EXIT_OK


def cmd_install_desktop(a, out: TextIO, progress) -> int:
    from svetlana import desktop

    if not desktop.is_supported():
        print(f"install-desktop: nothing to do on this system; {desktop.PLATFORM_HINT}", file=out)
        return EXIT_ERROR
    change = desktop.install_desktop()
    print(
        f"installed the Svetlana launcher ({len(change.files)} files under {desktop.data_home()})",
        file=out,
    )
    for note in change.notes:
        print(f"note: {note}", file=out)
    return EXIT_OK


def cmd_uninstall_desktop(a, out: TextIO, progress) -> int:
    from svetlana import desktop

    if not desktop.is_supported():
        print(f"uninstall-desktop: nothing to do on this system; {desktop.PLATFORM_HINT}", file=out)
        return EXIT_ERROR
    change = desktop.uninstall_desktop()
    print(f"removed {len(change.files)} Svetlana launcher files", file=out)
    for note in change.notes:
        print(f"note: {note}", file=out)
    return EXIT_OK

"""The entry point of the command line: parse, run one command, turn errors into one line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from svetlana.cli.commands import (
    cmd_add,
    cmd_check_labels,
    cmd_classes,
    cmd_demo,
    cmd_export_labels,
    cmd_import_labels,
    cmd_info,
    cmd_init,
    cmd_remove_image,
    cmd_set_spacing,
    cmd_suggest,
)
from svetlana.cli.desktop_commands import cmd_install_desktop, cmd_uninstall_desktop
from svetlana.cli.export_commands import (
    cmd_export_mask,
    cmd_export_model,
    cmd_export_objects,
    cmd_export_patches,
    cmd_export_table,
    cmd_measure,
)
from svetlana.cli.model_commands import cmd_predict, cmd_train
from svetlana.cli.parser import build_parser
from svetlana.cli.progress import (
    EXIT_BROKEN_PIPE,
    EXIT_CANCELLED,
    EXIT_ERROR,
    ProgressPrinter,
    _silence_closed_pipes,
)
from svetlana.core.allocator import reuse_freed_memory
from svetlana.core.errors import Cancelled, SvetlanaError

log = logging.getLogger(__name__)


COMMANDS = {
    "init": cmd_init,
    "add": cmd_add,
    "remove-image": cmd_remove_image,
    "set-spacing": cmd_set_spacing,
    "import-labels": cmd_import_labels,
    "classes": cmd_classes,
    "export-labels": cmd_export_labels,
    "suggest": cmd_suggest,
    "check-labels": cmd_check_labels,
    "train": cmd_train,
    "predict": cmd_predict,
    "info": cmd_info,
    "demo": cmd_demo,
    "export-mask": cmd_export_mask,
    "export-patches": cmd_export_patches,
    "export-model": cmd_export_model,
    "measure": cmd_measure,
    "export-table": cmd_export_table,
    "export-objects": cmd_export_objects,
    "install-desktop": cmd_install_desktop,
    "uninstall-desktop": cmd_uninstall_desktop,
}


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    open_gui: Callable[..., int] | None = None,
) -> int:
    """Run one command. ``open_gui(bundle, demo=False)`` opens the window (given by the entry
    point, so that the command line never imports the GUI itself)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    a.open_gui = open_gui
    if a.command is None or a.command == "gui":
        if open_gui is None:
            print("error: this entry point cannot open the window; run `svetlana gui`", file=err)
            return EXIT_ERROR
        return open_gui(getattr(a, "bundle", None))
    progress = ProgressPrinter(err, quiet=a.quiet)
    reuse_freed_memory()  # the band pass reuses its freed temporaries (a CLI run only)
    try:
        status = COMMANDS[a.command](a, out, progress)
        out.flush()  # a closed pipe shows here, inside the border, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (`svetlana info B | head -1`): not an error, stop quietly.
        _silence_closed_pipes(out, err)
        return EXIT_BROKEN_PIPE
    except Cancelled:
        progress.close()
        print("cancelled; nothing was changed", file=err)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        progress.close()
        print("interrupted; nothing was changed", file=err)
        return EXIT_CANCELLED
    except SvetlanaError as exc:
        progress.close()
        print(f"error: {exc}", file=err)
        return EXIT_ERROR
    except MemoryError:
        progress.close()
        print("error: not enough memory for this operation; nothing was changed", file=err)
        return EXIT_ERROR
    except Exception as exc:  # the border: one clear line, details only when asked
        progress.close()
        log.debug("unexpected error", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", file=err)
        if os.environ.get("SVETLANA_DEBUG"):
            raise
        return EXIT_ERROR

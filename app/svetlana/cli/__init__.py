"""The `svetlana` command line: argparse sub-commands over core.usecases, with exit codes.

``parser`` holds the grammar (``arguments``: the shared arguments, ``export_parser``: the
exports'), ``commands``/``model_commands``/``export_commands``/``desktop_commands`` one thin
function per sub-command, ``progress`` the stderr reporting, ``entry`` the entry point (``main``).
"""

from svetlana.cli.entry import main
from svetlana.cli.progress import EXIT_BROKEN_PIPE

__all__ = ["EXIT_BROKEN_PIPE", "main"]

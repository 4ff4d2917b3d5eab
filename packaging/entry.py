"""Entry script of the frozen app: the same `svetlana` command, GUI with no arguments."""

import sys

from svetlana.__main__ import main

if __name__ == "__main__":
    # main() calls multiprocessing.freeze_support() first, so worker processes started by the
    # frozen executable run their task instead of opening a second app.
    sys.exit(main())

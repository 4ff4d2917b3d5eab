"""How the command line reports: a progress line on stderr, exit codes, closed pipes."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from svetlana.core.jobs import Progress

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
# What a shell reports for a program stopped by SIGPIPE (128 + 13), as `cat`, `ls`... give.
EXIT_BROKEN_PIPE = 141


def _silence_closed_pipes(*streams: TextIO) -> None:
    """Point the closed stdout/stderr at /dev/null so Python's final flush stays quiet.

    The recipe of the Python docs (signal module, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue  # an in-memory stream (tests): nothing to silence
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class ProgressPrinter:
    """A progress bar on a terminal; plain, rate-limited lines otherwise (logs, CI)."""

    def __init__(self, stream: TextIO = sys.stderr, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_line = 0.0
        self._last_stage = ""
        self._open_bar = False

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if p.stage == "train" and p.metrics:
            m = p.metrics
            parts = [f"epoch {p.done}/{p.total}", f"loss {m.get('loss', float('nan')):.4f}"]
            if m.get("accuracy") is not None:
                parts.append(f"acc {m['accuracy']:.3f}")
            if m.get("val_accuracy") is not None:
                parts.append(f"val acc {m['val_accuracy']:.3f}")
            text = "  ".join(parts)
        else:
            text = p.message or p.stage
        eta = f"  ETA {p.eta_s:.0f}s" if p.eta_s is not None else ""
        if self.tty:
            width = 28
            filled = int(round(p.fraction * width))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {p.fraction * 100:5.1f}%  {text}{eta}\x1b[K")
            self._open_bar = True
            if p.fraction >= 1.0:
                self.stream.write("\n")
                self._open_bar = False
            self.stream.flush()
            return
        now = time.monotonic()
        if p.stage != self._last_stage or p.fraction >= 1.0 or now - self._last_line >= 2.0:
            self.stream.write(f"{p.stage}: {p.fraction * 100:5.1f}%  {text}{eta}\n")
            self.stream.flush()
            self._last_line = now
            self._last_stage = p.stage

    def close(self) -> None:
        if self._open_bar:
            self.stream.write("\n")
            self._open_bar = False

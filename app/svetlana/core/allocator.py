"""A process-wide allocator setting for the command line (glibc only).

The band pass allocates tens of arrays of megabytes per band; returned to the system and faulted
in again, they cost the first prediction of the 16,671-object benchmark ~200,000 page faults and
~1 s of system time (~75,000 and 0.4 s with this). Set once by the CLI's ``main``, never by the
window (whose memory should go back to the system between jobs), never inside ``core`` code.
"""

from __future__ import annotations

_TUNED: list[bool] = []


def reuse_freed_memory() -> None:
    """Freed memory trimmed beyond 512 MB only, arrays under 32 MB from the heap, one arena
    shared by the threads (once per process; peak memory does not grow: the same arrays are
    reused)."""
    import sys

    if _TUNED or not sys.platform.startswith("linux"):
        return
    _TUNED.append(True)
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    trim_threshold, mmap_threshold, arena_max = -1, -3, -8  # glibc's mallopt parameters
    mallopt(trim_threshold, 512 << 20)
    mallopt(mmap_threshold, 32 << 20)
    mallopt(arena_max, 1)

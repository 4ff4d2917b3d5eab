"""How long the GUI thread kept its event loop from running, apart from waiting for a CPU.

A 10 ms timer ticks on the GUI thread; the gap between two ticks is how long the event loop did
not run. On a loaded machine (the 2-core test machine runs other work at load 8-15) part of a
gap is only waiting for a CPU, and that part is taken off (Linux counts it per thread: the
second field of ``/proc/self/task/<tid>/schedstat``):

- the time the GUI thread itself was ready to run but had no CPU;
- of the time it was blocked (on a lock, the interpreter lock, a file), at most the time the
  process's other threads waited for a CPU in that gap: a worker that holds the interpreter
  lock and has no CPU keeps the GUI thread waiting only because the machine is busy.

What is left is the time the GUI thread spent working, or waiting for something that was not
itself waiting for a CPU: a trainer running on the GUI thread, or a GUI thread waiting for the
trainer, still shows as a stall of its whole length (tests/gui/test_stall_watch.py). Where the
kernel does not report it (macOS, Windows) the gaps are the wall-clock ones.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from PySide6.QtCore import QTimer

_TASKS = "/proc/self/task"


def _waited(tid: int | str) -> float | None:
    """Seconds thread ``tid`` of this process has waited for a CPU (None: not reported)."""
    try:
        with open(f"{_TASKS}/{tid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class _Sample:
    wall: float  # s
    cpu: float  # the GUI thread's CPU time, s
    waited: float  # the GUI thread's time waiting for a CPU, s
    others: dict  # tid -> time waiting for a CPU, s, of the process's other threads


class EventLoopWatch:
    """``with EventLoopWatch() as watch: ...`` on the GUI thread; then ``watch.ticks`` and
    ``watch.longest_stall_ms`` (and ``watch.longest_gap_ms``, wall clock, for the report)."""

    def __init__(self, interval_ms: int = 10):
        self._tid = threading.get_native_id()
        self._proc = _waited(self._tid) is not None
        self._samples: list[_Sample] = []
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        waited, others = 0.0, {}
        if self._proc:
            waited = _waited(self._tid) or 0.0
            for tid in os.listdir(_TASKS):
                if int(tid) != self._tid and (w := _waited(tid)) is not None:
                    others[tid] = w
        self._samples.append(_Sample(wall, cpu, waited, others))

    def __enter__(self) -> EventLoopWatch:
        self._tick()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()
        self._tick()

    @property
    def ticks(self) -> int:
        return len(self._samples) - 2  # the timer's, without the first and last samples

    def _gaps(self) -> list[tuple[float, float, str]]:
        """(wall-clock gap, stall, what it was made of) of every pair of ticks, in ms."""
        out = []
        for i, (a, b) in enumerate(zip(self._samples, self._samples[1:], strict=False)):
            gap, ready, cpu = b.wall - a.wall, b.waited - a.waited, b.cpu - a.cpu
            blocked = max(0.0, gap - ready - cpu)
            others = max((w - a.others.get(t, w) for t, w in b.others.items()), default=0.0)
            parts = (
                f"tick {i}/{len(self._samples) - 1}: GUI thread working {1000 * cpu:.0f} ms, "
                f"waiting for a CPU {1000 * ready:.0f} ms, blocked {1000 * blocked:.0f} ms "
                f"(its process's other threads waited for a CPU up to {1000 * others:.0f} ms)"
            )
            out.append((1000 * gap, 1000 * (gap - ready - min(blocked, others)), parts))
        return out

    @property
    def longest_stall_ms(self) -> float:
        """The longest time between two ticks, less what was only waiting for a CPU."""
        return max((s for _g, s, _p in self._gaps()), default=0.0)

    @property
    def longest_gap_ms(self) -> float:
        return max((g for g, _s, _p in self._gaps()), default=0.0)

    def report(self) -> str:
        longest = max(self._gaps(), key=lambda g: g[1], default=(0.0, 0.0, ""))
        return (
            f"event loop: {self.ticks} ticks, longest gap {self.longest_gap_ms:.0f} ms, "
            f"longest stall {self.longest_stall_ms:.0f} ms (not counting waits for a CPU; "
            f"{longest[2]})"
        )

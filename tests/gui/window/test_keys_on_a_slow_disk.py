"""A class key on a slow disk (a network share: 200 ms an fsync): the label is written at once,
the next object shows without waiting for the disk, and closing waits for every fsync."""

from __future__ import annotations

import os
import time


def test_a_key_does_not_wait_for_a_slow_fsync(project_window, qtbot, monkeypatch):
    win, session = project_window, project_window.session
    real_fsync = os.fsync
    synced: list[int] = []

    def slow_fsync(fd: int) -> None:
        time.sleep(0.2)
        real_fsync(fd)
        synced.append(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    journal = session.project.path / "annotations.journal"
    shown = session.selection
    assert len(shown) == 1
    t0 = time.perf_counter()
    qtbot.keyClick(win, "1")
    elapsed = time.perf_counter() - t0
    assert session.project.annotations.get("cells", shown[0]).class_name == "class 1"
    assert session.selection and session.selection != shown  # the next object is shown
    assert elapsed < 0.15, f"the key waited {elapsed * 1000:.0f} ms for the disk"
    # The line is in the journal already (a kill -9 now keeps it) ...
    assert f'"object":{shown[0]}' in journal.read_text().replace(" ", "")
    # ... and closing the project waits for its fsync (a power cut after closing keeps it too).
    session.close_project()
    assert synced

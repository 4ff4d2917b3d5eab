"""Shared tools for the robustness tests: CLI runner, bundle snapshots, child processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import blobs, ok, run_cli, snapshot, write_pair  # noqa: F401 - re-exported

REPO = Path(__file__).resolve().parents[2]
IDS = [10 + 7 * k for k in range(12)]  # the object ids of ``blobs(n=12)``


def assert_clear_error(code: int, err: str) -> None:
    """Exit 1 with one line ``error: ...``: a handled error, never a crash or a generic one."""
    assert code == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert "unexpected" not in err, f"unhandled exception type: {err}"


def make_bundle(folder: Path, name: str = "p.svetlana", n_images: int = 1) -> Path:
    """A bundle with ``n_images`` 2D images of 12 objects, all labelled bright/dim."""
    from svetlana.core.project.bundle import Project

    bundle = folder / name
    with Project.create(bundle, ["bright", "dim"]) as project:
        for i in range(n_images):
            image, labels = blobs(n=12, seed=i)
            ip, mp = write_pair(folder / "in", f"cells{i}" if i else "cells", image, labels)
            entry = project.add_image(ip, mp)
            project.annotations.apply_labels(
                [(entry.name, o, "bright" if k % 2 == 0 else "dim") for k, o in enumerate(IDS)]
            )
        project.save()
    return bundle


def child(script: str, *args: str) -> subprocess.Popen:
    """Start ``python -c script args...`` with the package importable; stdout is a text pipe."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "app"), str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def wait_for(proc: subprocess.Popen, word: str, count: int = 1) -> list[str]:
    """Read the child's lines until ``count`` of them start with ``word``; fail if it exits first.

    Blocking reads: a child that stops printing is caught by the test's timeout mark.
    """
    lines: list[str] = []
    seen = 0
    while seen < count:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited before {word!r}: {proc.stderr.read()}")
        lines.append(line.rstrip("\n"))
        seen += line.startswith(word)
    return lines


def kill9(proc: subprocess.Popen) -> list[str]:
    """SIGKILL the child, reap it, and return what it printed before dying."""
    import signal

    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    proc.stderr.close()
    proc.stdout.close()
    return rest.splitlines()


def received_copy(trained: Path, folder: Path) -> Path:
    """A copy of a bundle as someone else would send it: links kept as links, no lock."""
    copy = folder / "received.svetlana"
    shutil.copytree(trained, copy, symlinks=True)
    (copy / ".lock").unlink(missing_ok=True)
    return copy

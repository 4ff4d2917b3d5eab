"""A reader that closes the pipe early (`svetlana info B | head -1`) ends the command quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from svetlana.cli import EXIT_BROKEN_PIPE
from tests.robustness.helpers import REPO, make_bundle


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "app"), env.get("PYTHONPATH", "")])
    return env


def test_closed_stdout_is_quiet_with_the_sigpipe_status(tmp_path):
    bundle = make_bundle(tmp_path, n_images=3)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "svetlana", "info", str(bundle)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=120,
        )
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == EXIT_BROKEN_PIPE == 141


@pytest.mark.skipif(shutil.which("head") is None, reason="needs a POSIX shell with head")
def test_info_piped_to_head_prints_one_line_and_no_error(tmp_path):
    bundle = make_bundle(tmp_path, n_images=3)
    proc = subprocess.run(
        f'"{sys.executable}" -m svetlana info "{bundle}" | head -1',
        shell=True,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("project ") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""

"""Shared fixtures: paths to the real StarDist data, tiny generated projects."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from hypothesis import settings as _hypothesis_settings  # noqa: E402

# CI must be reproducible: the fuzz tests explore a fixed set of examples there (any failure
# can be replayed), and explore new random ones on developers' machines.
_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]

# The user's own folders as they are before any test runs (tests/test_user_folders_untouched.py
# proves that a run leaves them alone).
USER_ENV = {
    k: os.environ.get(k)
    for k in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
              "APPDATA", "LOCALAPPDATA")
}  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def isolated_user_folders(tmp_path_factory):
    """Settings, recent projects, logs, the demo and caches go to a temporary home: no test
    reads or writes the user's (QSettings, platformdirs and the XDG folders all point there)."""
    home = tmp_path_factory.mktemp("user-home")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            mp.setenv(var, str(home / var.lower()))
        if sys.platform == "darwin":  # platformdirs and Qt use ~/Library there
            mp.setenv("HOME", str(home))
        if sys.platform == "win32":
            mp.setenv("APPDATA", str(home / "appdata"))
            mp.setenv("LOCALAPPDATA", str(home / "localappdata"))
        try:
            from PySide6.QtCore import QSettings
        except ImportError:  # the Qt-free test environment
            QSettings = None
        if QSettings is not None:  # Qt caches its folders: set them, not only the variables
            for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
                QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "xdg_config_home"))
        yield home


# Real nuclei images and masks kept in the repository (1.2 MB, BSD-3; see its README.md), so
# that every clone runs the real-data tests.
STARDIST = ROOT / "tests" / "data" / "stardist"


@pytest.fixture
def stardist_dir() -> Path:
    return STARDIST


def run_cli(*args) -> tuple[int, str, str]:
    """Run the `svetlana` command line in-process: (exit code, stdout, stderr)."""
    import io

    from svetlana.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def ok(*args) -> str:
    """Run a command that must succeed; its stdout."""
    code, out, err = run_cli(*args)
    assert code == 0, err
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a bundle (but the lock) and its bytes: to prove nothing was written."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def write_pair(folder: Path, name: str, image: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    """Write an image and its mask as TIFF files (as a segmentation tool would)."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    ip, mp = folder / f"{name}.tif", folder / f"{name}_masks.tif"
    tifffile.imwrite(ip, image)
    tifffile.imwrite(mp, labels)
    return ip, mp


def blobs(shape=(96, 96), n=12, seed=0, radius=5) -> tuple[np.ndarray, np.ndarray]:
    """A tiny 2D scene: ``n`` discs with non-contiguous ids, bright (even) or dim (odd)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    image = rng.normal(100, 5, shape).astype(np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    grid = int(np.ceil(np.sqrt(n)))
    step_y, step_x = shape[0] // grid, shape[1] // grid
    k = 0
    for gy in range(grid):
        for gx in range(grid):
            if k >= n:
                break
            cy, cx = gy * step_y + step_y // 2, gx * step_x + step_x // 2
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            obj_id = 10 + 7 * k
            labels[disc] = obj_id
            image[disc] += 400 if k % 2 == 0 else 60
            k += 1
    return image.astype(np.uint16), labels


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    image, labels = blobs()
    return write_pair(tmp_path / "inputs", "cells", image, labels)

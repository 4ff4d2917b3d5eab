"""Class masks, filtered masks and per-class masks open in ImageJ itself (Debian's `imagej`,
headless under Xvfb) with the sizes, bit depth and every pixel value Svetlana wrote, 2D and 3D."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import blobs, run_cli, write_pair

IJ_JAR = Path("/usr/share/java/ij.jar")
MACRO = Path(__file__).with_name("imagej_dump.ijm")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not IJ_JAR.exists() or shutil.which("java") is None or shutil.which("xvfb-run") is None,
        reason="ImageJ is not installed (Debian: apt-get install imagej xvfb; .ci/run does it as root)",
    ),
]


def ok(*args) -> str:
    code, out, err = run_cli("-q", *args)
    assert code == 0, err
    return out


def imagej_read(files: list[Path], work: Path) -> dict[Path, tuple[tuple[int, ...], np.ndarray]]:
    """What ImageJ reads in each file: (width, height, slices, bit depth) and the pixels (Z, Y, X)."""
    work.mkdir()
    listing = work / "files.txt"
    listing.write_text("".join(f"{f}\t{work / str(k)}\n" for k, f in enumerate(files)))
    cmd = ["xvfb-run", "-a", "java", "-jar", str(IJ_JAR), "-batch", str(MACRO), str(listing)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = {}
    for k, f in enumerate(files):
        info_file = work / f"{k}_info.txt"
        assert info_file.exists(), f"ImageJ did not open {f.name}: {done.stdout} {done.stderr}"
        info = tuple(int(v) for v in info_file.read_text().split())
        planes = [np.loadtxt(work / f"{k}_z{z}.txt", ndmin=2) for z in range(1, info[2] + 1)]
        out[f] = (info, np.stack(planes))
    return out


def _check(files: list[Path], work: Path) -> None:
    seen = imagej_read(files, work)
    for f in files:
        written = tifffile.imread(f)
        stack = written if written.ndim == 3 else written[np.newaxis]
        (width, height, slices, depth), pixels = seen[f]
        assert (slices, height, width) == stack.shape, f.name
        assert depth == 8 * written.dtype.itemsize, (f.name, written.dtype, depth)
        np.testing.assert_array_equal(pixels, stack, err_msg=f.name)
        assert len(np.unique(stack)) > 1, f"{f.name} is empty: the test would prove nothing"


def _bundle(tmp_path: Path, name: str, image, labels, classes: dict[int, str], names) -> Path:
    b = tmp_path / f"{name}.svetlana"
    ok("init", b, "--classes", ",".join(names))
    ok("add", b, *write_pair(tmp_path / "in", name, image, labels.astype(np.uint16)))
    lab = tmp_path / f"{name}_labels.csv"
    lab.write_text(
        "image,object,class\n" + "".join(f"{name},{i},{c}\n" for i, c in classes.items())
    )
    ok("import-labels", b, lab)
    ok("train", b, "--arch", "forest")
    return b


def _exports(b: Path, tmp_path: Path, name: str, keep: str) -> list[Path]:
    ok("predict", b, "--out", tmp_path / f"{name}_pred")
    ok("export-mask", b, "--keep", keep, "--per-class", "--out", tmp_path / f"{name}_masks")
    files = sorted((tmp_path / f"{name}_pred").glob("*.tif"))
    files += sorted((tmp_path / f"{name}_masks").glob("*.tif"))
    return files


def test_2d_masks_open_in_imagej_with_the_values_written(tmp_path):
    image, labels = blobs(n=12, seed=0)
    ids = [int(i) for i in np.unique(labels) if i]
    classes = {i: ("bright" if k % 2 == 0 else "dim") for k, i in enumerate(ids)}
    b = _bundle(tmp_path, "cells", image, labels, classes, ["bright", "dim"])
    files = _exports(b, tmp_path, "cells", "bright")
    assert {f.name for f in files} >= {
        "cells_classes.tif", "cells_filtered.tif", "cells_bright.tif", "cells_dim.tif"
    }  # fmt: skip
    _check(files, tmp_path / "ij")


def test_3d_masks_open_in_imagej_as_stacks(tmp_path):
    from svetlana.core.synthetic.easy import sphere_scene

    scene = sphere_scene(n_objects=10, shape=(24, 72, 72), seed=0)
    classes = {int(i): scene.class_names[c] for i, c in scene.classes.items()}
    b = _bundle(tmp_path, "cells3d", scene.image[0], scene.labels, classes, scene.class_names)
    files = _exports(b, tmp_path, "cells3d", scene.class_names[0])
    assert any(f.name.endswith("_filtered.tif") for f in files)
    _check(files, tmp_path / "ij")

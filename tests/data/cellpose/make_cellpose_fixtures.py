"""Write the Cellpose fixtures of this folder with Cellpose's own ``cellpose.io`` (cellpose 4.2.0).

Made with cellpose 4.2.0 (the PyPI wheel), torch 2.13.0+cpu, numpy 2.4.6, Python 3.11, in a
THROWAWAY environment — never Svetlana's (Cellpose pulls 5.9 GB of CUDA torch):

    pip download cellpose==4.2.0 --no-deps -d /tmp/cpdl
    python3.11 -m venv /tmp/cpvenv
    /tmp/cpvenv/bin/pip install --no-deps /tmp/cpdl/cellpose-4.2.0-py3-none-any.whl
    /tmp/cpvenv/bin/pip install numpy scipy natsort tifffile tqdm opencv-python-headless \
        fastremap roifile fill-voids imagecodecs
    # torch: the CPU torch 2.13.0 of another environment, put on the path by a .pth file that
    # points at a folder of symlinks to torch and its pure-Python dependencies.
    # torchvision: a STUB package (empty torchvision/transforms/{functional,_functional_tensor}.py)
    # on the path the same way. cellpose.transforms imports torchvision.transforms at import time,
    # but only the training augmentation (random_rotate_and_resize) calls it; the functions used
    # here never do. There is no CPU torchvision wheel for this torch.
    cd tests/data/cellpose && /tmp/cpvenv/bin/python make_cellpose_fixtures.py

What it writes (no model is run: the masks are given, the flows computed from them by
Cellpose's own ``dynamics``, as a model's output would hold them):

- ``labels_2d.npy``, ``labels_3d.npy``: the known labels (plain arrays, no pickle);
- ``seg/cells.tif`` + ``seg/cells_seg.npy`` (``cellpose.io.masks_flows_to_seg``, what the
  Cellpose GUI saves);
- ``png/cells.tif`` + ``png/cells_cp_masks.png`` (``cellpose.io.save_masks(png=True)``, what
  ``python -m cellpose --save_png`` writes);
- ``3d/stack.tif`` + ``3d/stack_seg.npy`` and ``3d_tif/stack.tif`` + ``3d_tif/stack_cp_masks.tif``
  (3D: ``masks_flows_to_seg`` and ``save_masks(tif=True)``; PNG is 2D only in Cellpose).
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
import tifffile
import torch
from cellpose import dynamics, io, plot

HERE = Path(__file__).resolve().parent


def labels_2d() -> np.ndarray:
    """Six objects: disks, a rectangle, a ring with another object in its hole, one on the border."""
    yy, xx = np.mgrid[:40, :56]
    lab = np.zeros((40, 56), np.uint16)
    lab[(yy - 10) ** 2 + (xx - 12) ** 2 <= 36] = 1
    lab[24:32, 4:18] = 2
    r2 = (yy - 20) ** 2 + (xx - 38) ** 2
    lab[(r2 <= 81) & (r2 > 25)] = 3
    lab[r2 <= 9] = 4
    lab[2:10, 50:56] = 5  # touches the right edge
    lab[35:37, 30:32] = 6  # 4 pixels
    return lab


def labels_3d() -> np.ndarray:
    """Three objects in 6 planes: a ball, a box through every plane, a small blob."""
    zz, yy, xx = np.mgrid[:6, :24, :32]
    lab = np.zeros((6, 24, 32), np.uint16)
    lab[((zz - 3) * 2) ** 2 + (yy - 8) ** 2 + (xx - 8) ** 2 <= 36] = 1
    lab[:, 14:20, 18:28] = 2
    lab[1:3, 2:5, 24:29] = 3
    return lab


def image_for(lab: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (100 + 400 * (lab > 0) + 30 * lab + rng.normal(0, 5, lab.shape)).astype(np.uint16)


def flows_2d(lab: np.ndarray) -> list:
    dp, _ = dynamics.masks_to_flows_gpu(lab, device=torch.device("cpu"))
    cellprob = np.where(lab > 0, 5.0, -5.0).astype(np.float32)
    return [plot.dx_to_circ(dp), dp.astype(np.float32), cellprob]


def flows_3d(lab: np.ndarray) -> list:
    dp = dynamics.masks_to_flows_gpu_3d(lab, device=torch.device("cpu"))
    cellprob = np.where(lab > 0, 5.0, -5.0).astype(np.float32)
    rgb = np.stack([plot.dx_to_circ(dp[1:, z]) for z in range(lab.shape[0])])
    return [rgb, dp.astype(np.float32), cellprob]


def write(folder: str, name: str, image: np.ndarray, lab: np.ndarray, flows: list, how: str):
    out = HERE / folder
    out.mkdir(exist_ok=True)
    tifffile.imwrite(out / f"{name}.tif", image)
    cwd = os.getcwd()
    os.chdir(out)  # Cellpose stores the file name it is given: keep it relative
    try:
        if how == "seg":
            io.masks_flows_to_seg(image, lab, flows, f"{name}.tif")
        elif how == "png":
            io.save_masks(image, lab, flows, f"{name}.tif", png=True)
        else:
            io.save_masks(image, lab, flows, f"{name}.tif", png=False, tif=True)
    finally:
        os.chdir(cwd)


def main() -> None:
    print("cellpose", version("cellpose"), "torch", torch.__version__, "numpy", np.__version__)
    lab2, lab3 = labels_2d(), labels_3d()
    np.save(HERE / "labels_2d.npy", lab2, allow_pickle=False)
    np.save(HERE / "labels_3d.npy", lab3, allow_pickle=False)
    f2, f3 = flows_2d(lab2), flows_3d(lab3)
    write("seg", "cells", image_for(lab2), lab2, f2, "seg")
    write("png", "cells", image_for(lab2), lab2, f2, "png")
    write("3d", "stack", image_for(lab3), lab3, f3, "seg")
    write("3d_tif", "stack", image_for(lab3), lab3, f3, "tif")
    for p in sorted(HERE.rglob("*")):
        if p.is_file() and p.suffix != ".py":
            print(p.relative_to(HERE), p.stat().st_size)


if __name__ == "__main__":
    main()

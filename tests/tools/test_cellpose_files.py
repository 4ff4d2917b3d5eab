"""Masks written by Cellpose's own ``cellpose.io`` (4.2.0; tests/data/cellpose/make_cellpose_fixtures.py)
are read with exactly the labels Cellpose was given, paired with their image, added by the CLI,
and a ``_seg.npy`` is still read without running anything from the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from svetlana.core.errors import UnsafeFileError
from svetlana.core.io.folders import find_pairs
from svetlana.core.io.images import read_mask
from svetlana.core.project.bundle import Project
from tests.conftest import ok

DATA = Path(__file__).resolve().parents[1] / "data" / "cellpose"

FILES = [  # (folder, image, mask written by Cellpose, known labels)
    ("seg", "cells.tif", "cells_seg.npy", "labels_2d.npy"),
    ("png", "cells.tif", "cells_cp_masks.png", "labels_2d.npy"),
    ("3d", "stack.tif", "stack_seg.npy", "labels_3d.npy"),
    ("3d_tif", "stack.tif", "stack_cp_masks.tif", "labels_3d.npy"),
]


def known(name: str) -> np.ndarray:
    return np.load(DATA / name, allow_pickle=False)


@pytest.mark.parametrize(("folder", "image", "mask", "truth"), FILES)
def test_cellpose_masks_read_with_the_labels_cellpose_was_given(folder, image, mask, truth):
    labels = read_mask(DATA / folder / mask).labels
    expected = known(truth)
    assert labels.shape == expected.shape and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize(("folder", "image", "mask", "truth"), FILES)
def test_a_folder_pairs_each_image_with_its_cellpose_mask(folder, image, mask, truth):
    assert [(i.name, m.name) for i, m in find_pairs(DATA / folder)] == [(image, mask)]


@pytest.mark.parametrize(("folder", "image", "mask", "truth"), [FILES[0], FILES[1], FILES[2]])
def test_svetlana_add_takes_a_cellpose_mask_and_leaves_the_files_alone(
    tmp_path, folder, image, mask, truth
):
    src = tmp_path / "in"
    shutil.copytree(DATA / folder, src)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "a,b")
    ok("add", bundle, src / image, src / mask, "--name", "x")
    with Project.open(bundle, readonly=True) as project:
        loaded = project.load("x")
        np.testing.assert_array_equal(loaded.labels, known(truth))
        expected_ids = np.unique(known(truth))[1:]
        np.testing.assert_array_equal(loaded.table.ids, expected_ids)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_a_real_seg_npy_needs_its_restricted_reader_and_a_planted_object_is_refused(tmp_path):
    real = DATA / "seg" / "cells_seg.npy"
    with pytest.raises(ValueError):  # a pickled dict: plain numpy refuses it without pickle
        np.load(real, allow_pickle=False)
    # The same file with one entry that would run a command when unpickled.
    seg = np.load(real, allow_pickle=True).item()  # our own fixture: trusted here only
    assert set(seg) >= {"masks", "outlines", "flows", "filename"}
    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return (shutil.copy, (str(real), str(marker)))

    seg["extra"] = Planted()
    np.save(tmp_path / "evil_seg.npy", seg, allow_pickle=True)
    with pytest.raises(UnsafeFileError, match="refused"):
        read_mask(tmp_path / "evil_seg.npy")
    assert not marker.exists()

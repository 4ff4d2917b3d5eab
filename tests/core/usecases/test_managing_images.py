"""Managing a project's images: 2D and 3D never mixed, removing an image (and its labels, only
when confirmed; nothing left behind), setting a voxel size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.images import plan_removal, remove_image, set_spacing
from tests.conftest import blobs, snapshot, write_pair


def _stack(folder, name="stack"):
    labels = np.zeros((6, 32, 32), np.uint16)
    labels[1:4, 4:12, 4:12] = 1
    labels[2:5, 18:28, 18:28] = 2
    image = (100 + 300 * (labels > 0)).astype(np.uint16)
    return write_pair(folder, name, image, labels)


def test_a_3d_image_is_refused_in_a_2d_project_with_the_reason_and_nothing_written(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["a"]) as p:
        p.add_image(*pair)
    before = snapshot(bundle)
    with Project.open(bundle) as p:
        with pytest.raises(InputError, match="is 3D but the project's images are 2D"):
            p.add_image(*_stack(tmp_path / "d3"))
        assert p.image_names == ("cells",)
    assert snapshot(bundle) == before


def test_a_2d_image_is_refused_in_a_3d_project(tmp_path, pair):
    with Project.create(tmp_path / "p.svetlana") as p:
        p.add_image(*_stack(tmp_path / "d3"))
        with pytest.raises(InputError, match="is 2D but the project's images are 3D"):
            p.add_image(*pair)


def test_removing_an_image_with_labels_needs_confirming_then_takes_files_and_labels(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    image, labels = blobs(seed=3)
    other = write_pair(tmp_path / "o", "other", image, labels)
    with Project.create(bundle, ["a", "b"]) as p:
        p.add_image(*pair)
        p.add_image(*other)
        ids = p.load("cells").table.ids
        oid = int(p.load("other").table.ids[0])
        p.annotations.apply_labels(
            [("cells", int(ids[0]), "a"), ("cells", int(ids[1]), "b"), ("other", oid, "a")]
        )
        p.save()
        before = snapshot(bundle)
        assert plan_removal(p, "cells").labels == {"a": 1, "b": 1}
        with pytest.raises(InputError, match="2 labels .*--yes"):
            remove_image(p, "cells")
        assert snapshot(bundle) == before  # refused: nothing changed
        removal = remove_image(p, "cells", confirmed=True)
        assert removal.n_labels == 2
        assert p.image_names == ("other",)
    with Project.open(bundle) as p:
        assert p.image_names == ("other",)
        assert p.annotations.counts() == {"a": 1, "b": 0}  # the other image's label stays
    files = {f for f in snapshot(bundle) if f.startswith(("images/", "masks/", "objects/"))}
    assert files and not any("cells" in f for f in files)


def test_labels_left_by_an_interrupted_removal_do_not_attach_to_a_new_image(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["a"]) as p:
        p.add_image(*pair)
        oid = int(p.load("cells").table.ids[0])
        p.annotations.apply_labels([("cells", oid, "a")])
        p.save()
    # The manifest was written without the image (the commit point), then the process died.
    manifest = json.loads((bundle / "project.json").read_text())
    manifest["images"] = []
    (bundle / "project.json").write_text(json.dumps(manifest))
    with Project.open(bundle) as p:
        p.add_image(*pair)
        assert p.annotations.for_image("cells") == {}


def test_set_spacing_is_kept_and_checked_against_the_image(tmp_path):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle) as p:
        p.add_image(*_stack(tmp_path / "d3"))
        with pytest.raises(InputError, match="3D: its voxel size is 3 positive numbers"):
            set_spacing(p, "stack", (0.5, 0.5))
        with pytest.raises(InputError, match="3 positive"):
            set_spacing(p, "stack", (2, 0, 0.5))
        assert set_spacing(p, "stack", (2, 0.5, 0.5)).spacing == (2.0, 0.5, 0.5)
        assert p.load("stack").spacing == (2.0, 0.5, 0.5)  # no stale cached copy
    with Project.open(bundle) as p:
        assert p.image("stack").spacing == (2.0, 0.5, 0.5)

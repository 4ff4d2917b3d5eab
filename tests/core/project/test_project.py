"""The folder bundle: create, add, reopen, lock, manifest checks, journal recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from svetlana.core.errors import InputError, ProjectError, ProjectLockedError, ProjectVersionError
from svetlana.core.project.bundle import Project


def test_create_add_reopen_keeps_images_classes_and_labels(tmp_path, pair):
    ip, mp = pair
    before = (ip.read_bytes(), mp.read_bytes())
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["alive", "dead"]) as p:
        e = p.add_image(ip, mp)
        assert e.name == "cells" and e.n_objects == 12 and e.channels == 1
        ids = p.load("cells").table.ids
        assert ids.tolist() == [10 + 7 * k for k in range(12)]  # ids kept, not renumbered
        p.annotations.apply_labels(
            [("cells", int(ids[0]), "alive"), ("cells", int(ids[1]), "dead")]
        )
    assert (ip.read_bytes(), mp.read_bytes()) == before  # user files untouched
    assert not (bundle / ".lock").exists()
    with Project.open(bundle) as p:
        assert p.annotations.class_names == ("alive", "dead")
        assert p.annotations.counts() == {"alive": 1, "dead": 1}
        loaded = p.load("cells")
        assert loaded.image.shape == (1, 96, 96) and loaded.image.dtype == np.uint16
        assert np.array_equal(loaded.labels, tifffile.imread(mp))


def test_duplicate_name_is_refused_and_nothing_written(tmp_path, pair):
    ip, mp = pair
    with Project.create(tmp_path / "p.svetlana") as p:
        p.add_image(ip, mp)
        manifest = (p.path / "project.json").read_text()
        files = sorted(os.listdir(p.path / "images"))
        with pytest.raises(InputError, match="already has an image named 'cells'"):
            p.add_image(ip, mp)
        assert (p.path / "project.json").read_text() == manifest
        assert sorted(os.listdir(p.path / "images")) == files
        e = p.add_image(ip, mp, name="cells again")
        assert e.image_file != p.images[0].image_file


def test_create_refuses_an_existing_folder_with_content(tmp_path):
    (tmp_path / "x.svetlana").mkdir()
    (tmp_path / "x.svetlana" / "mine.txt").write_text("keep me")
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "x.svetlana")
    assert (tmp_path / "x.svetlana" / "mine.txt").read_text() == "keep me"


def test_second_writer_is_refused_and_read_only_open_works(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["a", "b"]):
        code = (
            "import sys\n"
            "from svetlana.core.project.bundle import Project\n"
            "from svetlana.core.errors import ProjectLockedError\n"
            f"try:\n    Project.open({str(bundle)!r})\nexcept ProjectLockedError as e:\n    print(e); sys.exit(3)\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 3 and "open in another Svetlana" in r.stdout
        with Project.open(bundle, readonly=True) as ro:
            assert ro.annotations.class_names == ("a", "b")


def test_stale_lock_from_a_dead_process_is_recovered(tmp_path):
    bundle = tmp_path / "p.svetlana"
    Project.create(bundle).close()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import socket

    (bundle / ".lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    )
    with Project.open(bundle) as p:
        assert p.path == bundle


def test_live_lock_from_this_process_is_respected(tmp_path):
    bundle = tmp_path / "p.svetlana"
    p = Project.create(bundle)
    with pytest.raises(ProjectLockedError):
        Project.open(bundle)
    p.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    bundle = tmp_path / "p.svetlana"
    Project.create(bundle).close()
    m = json.loads((bundle / "project.json").read_text())
    m["schema_version"] = 99
    (bundle / "project.json").write_text(json.dumps(m))
    with pytest.raises(ProjectVersionError, match="newer Svetlana"):
        Project.open(bundle)
    assert not (bundle / ".lock").exists()


@pytest.mark.parametrize("evil", ["../../etc/passwd", "/etc/passwd", "images/../../x.tif"])
def test_manifest_paths_outside_the_bundle_are_refused(tmp_path, pair, evil):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle) as p:
        p.add_image(*pair)
    m = json.loads((bundle / "project.json").read_text())
    m["images"][0]["image_file"] = evil
    (bundle / "project.json").write_text(json.dumps(m))
    with pytest.raises(ProjectError, match="outside the project"):
        Project.open(bundle)


def test_labels_survive_without_a_clean_close(tmp_path, pair):
    """A label accepted (journalled) is there after the process dies without saving."""
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle, ["a", "b"]) as p:
        p.add_image(*pair)
    code = (
        "import os\n"
        "from svetlana.core.project.bundle import Project\n"
        f"p = Project.open({str(bundle)!r})\n"
        "p.annotations.apply_labels([('cells', 10, 'a'), ('cells', 17, 'b')])\n"
        "p.annotations.apply_labels([('cells', 24, 'b')])\n"
        "os._exit(0)  # no close, no save: as if killed\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (bundle / ".lock").exists()
    with Project.open(bundle) as p:  # stale lock recovered, journal replayed
        assert p.annotations.counts() == {"a": 1, "b": 2}
    assert not (bundle / "annotations.journal").exists()
    assert "cells,24,b" in (bundle / "annotations.csv").read_text()


def test_unknown_image_name_lists_the_images(tmp_path, pair):
    with Project.create(tmp_path / "p.svetlana") as p:
        p.add_image(*pair)
        with pytest.raises(InputError, match="images: cells"):
            p.image("nope")


def test_object_table_is_cached_and_a_damaged_cache_is_recomputed(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    with Project.create(bundle) as p:
        p.add_image(*pair)
        expected = p.load("cells").table
    cache = next((bundle / "objects").glob("*.npz"))
    with Project.open(bundle) as p:
        t = p.load("cells").table
        assert np.array_equal(t.ids, expected.ids) and np.allclose(t.centroid, expected.centroid)
    cache.write_bytes(b"garbage")  # a damaged derived file must not break opening
    with Project.open(bundle) as p:
        assert np.array_equal(p.load("cells").table.ids, expected.ids)
    with Project.open(bundle, readonly=True) as p:
        assert np.array_equal(p.load("cells").table.area, expected.area)

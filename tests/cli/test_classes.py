"""Issue 16: typos in a labels CSV do not make classes; `svetlana classes` renames, merges, removes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import FAST, _bad, label_csv
from tests.conftest import blobs, ok, run_cli, snapshot, write_pair

IDS = [10 + 7 * k for k in range(12)]


@pytest.fixture
def project_2d(tmp_path):
    """One 2D image, its 12 objects labelled bright/dim."""
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    ok("add", bundle, ip, mp)
    classes = ["bright" if k % 2 == 0 else "dim" for k in range(12)]
    ok("import-labels", bundle, label_csv(tmp_path / "l.csv", "cells", IDS, classes))
    return bundle


def test_a_typo_in_a_class_name_is_refused_with_the_nearest_name(tmp_path, project_2d):
    csv_path = label_csv(tmp_path / "typo.csv", "cells", IDS[:3], ["brihgt", "Dim", "bright"])
    err = _bad(project_2d, "import-labels", project_2d, csv_path, expect="--add-classes")
    assert "'brihgt' (did you mean 'bright'?)" in err and "'Dim' (did you mean 'dim'?)" in err
    far = label_csv(tmp_path / "far.csv", "cells", IDS[:1], ["mitotic"])
    err = _bad(project_2d, "import-labels", project_2d, far, expect="unknown class 'mitotic'")
    assert "did you mean" not in err
    out = ok("import-labels", project_2d, far, "--add-classes")
    assert "mitotic: 1" in out
    assert "mitotic: key 3, 1 label" in ok("classes", project_2d)


def test_a_project_without_classes_takes_the_csvs(tmp_path):
    image, labels = blobs(n=4)
    ip, mp = write_pair(tmp_path / "in", "c", image, labels)
    b = tmp_path / "n.svetlana"
    ok("init", b)
    ok("add", b, ip, mp)
    ok("import-labels", b, label_csv(tmp_path / "l.csv", "c", [10, 17], ["a", "b"]))
    assert ok("classes", b).splitlines() == ["a: key 1, 1 label", "b: key 2, 1 label"]


def test_classes_lists_renames_merges_and_removes(tmp_path, project_2d):
    ok("train", project_2d, *FAST)
    listed = ok("classes", project_2d)
    assert listed.splitlines() == [
        "bright: key 1, 6 labels; in model-1",
        "dim: key 2, 6 labels; in model-1",
    ]
    assert "renamed 'bright' to 'large' (6 labels)" in ok(
        "classes", project_2d, "--rename", "bright", "large"
    )
    # The model keeps its own class list and still predicts, saying the names differ.
    out = ok("predict", project_2d, "--out", tmp_path / "p")
    assert "note: model-1" in out and "bright" in out and "large" in out
    ok("classes", project_2d, "--rename", "dim", "small")
    ok(
        "import-labels",
        project_2d,
        label_csv(tmp_path / "s.csv", "cells", IDS[:2], ["smal", "smal"]),
        "--add-classes",
    )
    before = snapshot(project_2d)
    err = _bad(project_2d, "classes", project_2d, "--remove", "smal", expect="has 2 labels")
    assert "--force" in err and snapshot(project_2d) == before
    assert "merged 'smal' into 'small' (2 labels moved)" in ok(
        "classes", project_2d, "--merge", "smal", "small"
    )
    lines = ok("classes", project_2d).splitlines()
    assert lines == ["large: key 1, 5 labels", "small: key 2, 7 labels"]
    labels = ok("export-labels", project_2d, tmp_path / "all.csv")
    assert "12 labels" in labels
    assert "removed class 'small' and its 7 labels" in ok(
        "classes", project_2d, "--remove", "small", "--force"
    )
    manifest = json.loads((project_2d / "project.json").read_text())
    assert [c["name"] for c in manifest["classes"]] == ["large"]
    _bad(project_2d, "classes", project_2d, "--rename", "nope", "x", expect="unknown class 'nope'")
    _bad(project_2d, "classes", project_2d, "--merge", "large", "large", expect="into itself")


def test_a_class_with_few_labels_is_warned_about_before_training(tmp_path, project_2d):
    ok(
        "import-labels",
        project_2d,
        label_csv(tmp_path / "r.csv", "cells", IDS[:2], ["rare"] * 2),
        "--add-classes",
    )
    out = ok("train", project_2d, *FAST)
    assert out.splitlines()[0].startswith("warning: few labels for rare (2 labels)")
    assert out.strip().splitlines()[-1] == "model-1"  # scripts read the model's name last


def test_add_says_when_it_assumes_a_voxel_spacing(tmp_path):
    image, labels = blobs(n=6)
    vol, vlab = np.repeat(image[None], 4, axis=0), np.repeat(labels[None], 4, axis=0)
    ip, mp = write_pair(tmp_path / "v", "vol", vol, vlab)
    ok("init", tmp_path / "a.svetlana")
    out = ok("add", tmp_path / "a.svetlana", ip, mp)
    assert "assuming spacing 1,1,1" in out and "svetlana set-spacing" in out
    ok("init", tmp_path / "b.svetlana")
    out = ok("add", tmp_path / "b.svetlana", ip, mp, "--spacing", "2,0.5,0.5")
    assert "assuming" not in out
    ok("init", tmp_path / "c.svetlana")
    image_2d = ok(
        "add", tmp_path / "c.svetlana", *write_pair(tmp_path / "f", "flat", image, labels)
    )
    assert "assuming" not in image_2d


def test_demo_without_a_display_keeps_its_project_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, err = run_cli("demo", "--headless")
    assert code == 0, err
    kept = tmp_path / "data" / "Svetlana" / "demo.svetlana"
    assert (kept / "project.json").is_file() and (kept / "models" / "model-1").is_dir()
    assert f"kept in {kept}" in out

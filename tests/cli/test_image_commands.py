"""`svetlana remove-image` and `svetlana set-spacing`, and `add`'s advice pointing to them."""

from __future__ import annotations

import json

import numpy as np

from tests.conftest import ok, run_cli, write_pair


def test_add_without_voxel_size_points_to_set_spacing_which_works(tmp_path):
    labels = np.zeros((6, 32, 32), np.uint16)
    labels[1:3, 4:10, 4:10] = 1
    ip, mp = write_pair(tmp_path, "stack", (labels * 200 + 50).astype(np.uint16), labels)
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle)
    out = ok("add", bundle, ip, mp)
    assert "svetlana set-spacing" in out and "add it again" not in out
    out = ok("set-spacing", bundle, "stack", "2,0.5,0.5")
    assert "2,0.5,0.5" in out
    manifest = json.loads((bundle / "project.json").read_text())
    assert manifest["images"][0]["spacing"] == [2.0, 0.5, 0.5]
    code, _, err = run_cli("set-spacing", bundle, "nope", "1,1,1")
    assert code != 0 and "no image named 'nope'" in err and "Traceback" not in err


def test_remove_image_says_what_goes_and_needs_yes_for_labels(tmp_path, pair):
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "a,b")
    ok("add", bundle, *pair)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,object,class\ncells,10,a\ncells,17,b\ncells,24,b\n")
    ok("import-labels", bundle, labels)
    code, _, err = run_cli("remove-image", bundle, "cells")
    assert code != 0 and "3 labels (a: 1, b: 2)" in err and "--yes" in err
    assert "cells" in ok("info", bundle)
    out = ok("remove-image", bundle, "cells", "--yes")
    assert out.strip() == "removed image 'cells' and its 3 labels"
    ok("export-labels", bundle, tmp_path / "after.csv")
    assert len((tmp_path / "after.csv").read_text().strip().splitlines()) == 1  # header only

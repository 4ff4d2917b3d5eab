"""The README's command-line session works as written, in order: exports straight after
`predict --out` (the saved predictions are used when current, else predicted now, saying so)."""

from __future__ import annotations

import json

from tests.cli.folder_helpers import csv_rows, ok
from tests.conftest import blobs, write_pair


def test_the_readme_session_then_its_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip, mp = write_pair(tmp_path, "plate1", *blobs(n=12, seed=0))
    mp.rename(tmp_path / "plate1_cp_masks.tif")
    rows = ["image,object,class"] + [
        f"plate1,{10 + 7 * j},{'infected' if j % 2 == 0 else 'healthy'}" for j in range(12)
    ]
    (tmp_path / "my_labels.csv").write_text("\n".join(rows) + "\n")
    ok("init", "cells.svetlana", "--classes", "infected,healthy")
    ok("add", "cells.svetlana", "plate1.tif", "plate1_cp_masks.tif")
    ok("import-labels", "cells.svetlana", "my_labels.csv")
    ok("train", "cells.svetlana", "--arch", "forest")
    ok("predict", "cells.svetlana", "--out", "results/")
    predicted = {
        int(r["object"]): r["class"] for r in csv_rows(tmp_path / "results" / "predictions.csv")
    }
    out = ok("export-table", "cells.svetlana", "--out", "stats/")
    assert "predicted them now" in out  # nothing saved in the project: said, not refused
    table = {int(r["object"]): r["class"] for r in csv_rows(tmp_path / "stats" / "objects.csv")}
    assert table == predicted
    out = ok("export-objects", "cells.svetlana", "--out", "qupath/")
    doc = json.loads((tmp_path / "qupath" / "plate1.geojson").read_text())
    classes = {int(f["properties"]["name"]): f["properties"]["classification"]["name"]
               for f in doc["features"]}  # fmt: skip
    assert classes == predicted and "1 GeoJSON file" in out
    # with saved, current predictions in the project, they are used (nothing said)
    ok("predict", "cells.svetlana")
    out = ok("export-table", "cells.svetlana", "--out", "stats2/")
    assert "predicted" not in out.split("wrote")[0]

"""A small trained project for the command-line tests of outputs (a forest: seconds)."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import blobs, run_cli, write_pair


def ok(*args) -> str:
    code, out, err = run_cli("-q", *args)
    assert code == 0, err
    return out


def trained_bundle(tmp_path: Path, names=("cells",), predict: bool = False) -> Path:
    """A project with 2D images ``names`` (12 objects each, all labelled) and a forest model-1."""
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    rows = ["image,object,class"]
    for k, name in enumerate(names):
        image, labels = blobs(n=12, seed=k)
        ip, mp = write_pair(tmp_path / "in" / str(k), "img", image, labels)
        ok("add", bundle, ip, mp, "--name", name)
        rows += [f"{name},{10 + 7 * j},{'bright' if j % 2 == 0 else 'dim'}" for j in range(12)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "labels.csv")
    ok("train", bundle, "--arch", "forest")
    if predict:
        ok("predict", bundle)
    return bundle


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))

"""A forest trained on enough labels says in its card whether it reads the neighbours'
measurements, and predicts every object (its saved trees read the whole measurement table)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import blobs, ok, write_pair


def _labelled_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    rows = []
    for k, name in enumerate(("left", "right")):
        image, labels = blobs(shape=(120, 120), n=20, seed=k)
        ok("add", bundle, *write_pair(tmp_path / "in", name, image, labels))
        ids = [int(i) for i in sorted(set(labels.ravel().tolist()) - {0})]
        rows += [(name, o, "bright" if j % 2 == 0 else "dim") for j, o in enumerate(ids)]
    csv_path = Path(tmp_path / "l.csv")
    csv_path.write_text("image,object,class\n" + "".join(f"{i},{o},{c}\n" for i, o, c in rows))
    ok("import-labels", bundle, csv_path)
    return bundle


def test_the_card_says_with_or_without_the_neighbours_and_predict_agrees(tmp_path):
    bundle = _labelled_bundle(tmp_path)
    model = ok("train", bundle, "--arch", "forest").strip().splitlines()[-1]
    card = json.loads((bundle / "models" / model / "card.json").read_text())
    assert card["n_labels"] == 40
    assert card["measurements_chosen"].startswith(("with the neighbours", "without the"))
    assert any(n.startswith("nb_") for n in card["measurements"])  # the whole table is read
    ok("predict", bundle)
    with open(bundle / "predictions" / model / "predictions.csv", newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 40 and all(r["class"] == r["label"] for r in got)


def test_predicting_with_a_forest_imports_neither_torch_nor_the_training_loop(tmp_path):
    """A forest's predict (measuring first) starts without torch or the CNN training module
    (seconds and ~10 ms of a 2 s prediction): the command works on a machine where torch is
    slow to import, and stays fast."""
    bundle = _labelled_bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    code = (
        "import sys\n"
        "from svetlana.cli.entry import main\n"
        f"rc = main(['-q', 'predict', {str(bundle)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "print(rc, 'torch' in sys.modules, 'svetlana.core.ml.training' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"]
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 40

"""`svetlana train --mode quick|thorough`: the estimate printed before training, the mode kept."""

from __future__ import annotations

import csv
import json

from tests.cli.test_cli_model_kinds import two_images  # noqa: F401  (fixture)
from tests.conftest import blobs, ok, run_cli, write_pair


def test_the_estimate_is_printed_before_training_and_thorough_is_longer(two_images):  # noqa: F811
    quick = ok("train", two_images, "--epochs", "2")
    first = quick.splitlines()[0]
    assert first.startswith("training: auto, quick:") and "growing with the 24 labels" in first
    assert "quick mode, budget" in quick
    thorough = ok("train", two_images, "--epochs", "2", "--mode", "thorough")
    line = thorough.splitlines()[0]
    assert line.startswith("training: auto, thorough:") and "every fold" in line

    def seconds(text: str) -> float:
        return float(text.split("at most ~")[1].split(" s")[0])

    assert seconds(line) > seconds(first)
    model = thorough.strip().splitlines()[-1]
    card = json.loads((two_images / "models" / model / "card.json").read_text())
    assert card["selection"]["effort"] == "thorough"


def test_a_given_budget_is_the_one_announced_and_a_bad_mode_is_refused(two_images, capsys):  # noqa: F811
    out = ok("train", two_images, "--epochs", "2", "--time-budget", "7")
    assert "at most ~7 s" in out.splitlines()[0] and "growing" not in out.splitlines()[0]
    code, _, err = run_cli("train", two_images, "--mode", "slow")
    err += capsys.readouterr().err  # argparse's usage error goes to the process's stderr
    assert code != 0 and "--mode" in err and "thorough" in err


def test_a_hybrid_model_trains_saves_and_predicts_through_the_cli(two_images, monkeypatch):  # noqa: F811
    """Thorough mode cross-validates the hybrid; when it is chosen (forced here: on these
    easy discs the forest ties), its files are plain weights + plain arrays and `predict`
    runs the CNN, then the forest on measurements + the CNN's probabilities."""
    from svetlana.core.ml import choosing

    monkeypatch.setattr(choosing, "_pick", lambda *a: ("hybrid", "forced by the test"))
    out = ok("train", two_images, "--epochs", "2", "--mode", "thorough", "--time-budget", "600")
    assert "hybrid" in out and "chosen: hybrid" in out
    model = out.strip().splitlines()[-1]
    folder = two_images / "models" / model
    card = json.loads((folder / "card.json").read_text())
    assert card["kind"] == "hybrid" and card["cnn_architecture"] == "small"
    assert card["measurements"][-2:] == ["cnn_p_bright", "cnn_p_dim"]
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "forest.npz", "weights.pt"]
    assert len(card["selection"]["candidates"]) == 3
    out = ok("predict", two_images, "--model", model)
    assert "left: bright 6, dim 6" in out and "right: bright 6, dim 6" in out
    with open(two_images / "predictions" / model / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and all(r["class"] == r["label"] for r in rows)
    image, labels = blobs(n=12, seed=5)  # a folder outside the project
    write_pair(two_images.parent / "new", "fresh", image, labels)
    out = ok("predict", two_images, "--model", model, "--folder", two_images.parent / "new",
             "--out", two_images.parent / "res")  # fmt: skip
    assert "fresh: bright 6, dim 6" in out
    assert f"{model}: hybrid" in ok("info", two_images)
    for how in ([], ["--format", "bioimageio"]):  # a hybrid has no single network to export
        code, _, err = run_cli(
            "export-model", two_images, "--model", model, "--out", two_images.parent / "x", *how
        )
        assert code != 0 and "is a hybrid" in err


def test_a_cnn_skipped_because_the_forest_used_the_budget_is_listed_with_why(two_images):  # noqa: F811
    out = ok("train", two_images, "--time-budget", "0.05")
    line = next(x for x in out.splitlines() if x.strip().startswith("small"))
    assert "skipped" in line and "the forest's cross-validation and fit took" in line
    assert "--mode thorough" in line
    assert "chosen: forest (the CNN was skipped)" in out
    model = out.strip().splitlines()[-1]
    card = json.loads((two_images / "models" / model / "card.json").read_text())
    cnn = card["selection"]["candidates"][1]
    assert (
        cnn["status"] == "skipped" and "the forest's cross-validation and fit took" in cnn["note"]
    )

"""`svetlana train --mode quick|thorough`: the estimate printed before training, the mode kept."""

from __future__ import annotations

import json

from tests.cli.test_cli_model_kinds import two_images  # noqa: F401  (fixture)
from tests.conftest import ok, run_cli


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

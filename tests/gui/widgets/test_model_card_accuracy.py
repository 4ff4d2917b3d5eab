"""The model card's accuracy says what it is: for a forest judged out of bag (with its linear
part), the accuracy expected on objects like the labelled ones, with what it rests on."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from svetlana.core.wording import accuracy_estimate  # noqa: E402
from svetlana.gui.widgets.model_card import format_card  # noqa: E402


def test_an_out_of_bag_accuracy_is_said_for_what_it_is():
    metrics = {"accuracy": 0.816, "estimate": "out-of-bag", "n_val": 500, "n_train": 500}
    card = {"id": "model-1", "kind": "forest", "architecture": "forest", "metrics": metrics,
            "importances": [{"name": "nb_ch0_log_s1_mean", "importance": 0.01}]}  # fmt: skip
    text = format_card(card)
    row = text[text.index("Accuracy") :].split("</tr>")[0]
    assert "82 % expected on objects like the labelled ones" in row
    assert "each of the 500 labelled objects predicted by models that did not learn" in row
    assert "cross-validated" not in row
    assert accuracy_estimate(metrics).removeprefix("accuracy ") in row
    assert "neighbours' mean of spot texture of channel 1 (fine scale)" in text

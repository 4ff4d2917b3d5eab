"""A hybrid model's card as the Train tab shows it: its kind, what decides, the mode and budget
of the choice, and a candidate cut short with what it reached."""

from __future__ import annotations

from svetlana.gui.widgets.model_card import format_card


def test_a_hybrid_card_says_what_it_is_and_how_it_was_chosen():
    card = {
        "id": "model-3", "kind": "hybrid", "architecture": "hybrid", "cnn_architecture": "small",
        "classes": ["a", "b"], "n_labels": 40, "trees": 100, "patch_size": 32,
        "importances": [{"name": "cnn_p_a", "importance": 0.3}, {"name": "area", "importance": 0.2}],
        "history": [{"epoch": 1}] * 30,
        "selection": {
            "effort": "thorough", "budget_s": 144.0, "chosen": "hybrid", "reason": "r",
            "cv": {"folds": 5},
            "candidates": [
                {"name": "forest", "status": "done", "balanced_accuracy": 0.8, "spread": 0.1},
                {"name": "small", "status": "stopped", "balanced_accuracy": 0.612,
                 "note": "stopped after 1 of 5 folds (balanced accuracy 0.612 on them): budget"},
            ],
        },
    }  # fmt: skip
    text = format_card(card)
    assert "hybrid: forest of 100 trees on object measurements" in text
    assert "class probabilities of the CNN small" in text
    assert "the CNN's probability of a; area" in text  # what decides, in words
    assert "32 px" in text and ">30<" in text
    assert "thorough mode, budget 144 s" in text
    assert "balanced accuracy 0.612 on them" in text

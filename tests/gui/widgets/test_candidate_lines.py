"""The Train tab's candidate lines read as one sentence each (what a user sees under Candidates)."""

from __future__ import annotations

from svetlana.gui.widgets.model_card import candidate_text


def test_a_stopped_candidate_says_stopped_once():
    row = {"name": "small", "status": "stopped",
           "note": "stopped after 0 of 3 folds: time budget spent"}  # fmt: skip
    line = candidate_text(row)
    assert "small: stopped after 0 of 3 folds: time budget spent" in line
    assert line.count("stopped") == 1


def test_a_skipped_candidate_keeps_its_status_before_the_reason():
    row = {"name": "small", "status": "skipped", "note": "the forest is already perfect"}
    assert "small: skipped: the forest is already perfect" in candidate_text(row)
    done = {"name": "forest", "status": "done", "balanced_accuracy": 0.955, "spread": 0.059,
            "seconds": 14.4}  # fmt: skip
    assert "forest: 95.5% ± 5.9% (14.4 s)" in candidate_text(done, chosen=True)

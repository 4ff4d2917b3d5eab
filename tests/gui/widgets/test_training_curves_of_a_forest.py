"""The Train tab's curves for a forest: it learns in one go, so instead of two empty charts the
panel says so and gives the forest's cross-validated accuracy; a network's curves come back."""

from __future__ import annotations

from svetlana.gui.widgets.model_card import TrainingCurves

FOREST = {
    "kind": "forest",
    "metrics": {"accuracy": 0.9, "n_val": 40, "estimate": "cross-validation"},
}
CNN = {
    "kind": "cnn",
    "architecture": "small",
    "history": [{"epoch": 1, "loss": 0.7, "val_loss": 0.8, "accuracy": 0.6, "val_accuracy": 0.5}],
}


def test_a_forest_shows_its_accuracy_instead_of_empty_curves(qtbot):
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.show()
    curves.show_model(FOREST, [])
    assert curves.note.isVisible() and not curves.loss_plot.isVisible()
    text = curves.note.text()
    assert "no training curve" in text and "90 %" in text and "cross-validated" in text
    curves.show_model(CNN)  # a network trained afterwards: its curves are drawn
    assert not curves.note.isVisible() and curves.loss_plot.isVisible()
    assert list(curves.loss_train.getData()[1]) == [0.7]

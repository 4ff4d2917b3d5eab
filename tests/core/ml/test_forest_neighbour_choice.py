"""The forest keeps the neighbours' measurements where they pay (out-of-bag) and drops them
where they are noise; either way the saved forest reads the whole table and predicts the same."""

from __future__ import annotations

import numpy as np

from svetlana.core.ml.forest import CHOICE_MIN_LABELS, fit_forest, load_forest, save_forest

CLASSES = ("a", "b")


def _table(signal_in_neighbours: bool, n: int = 200, seed: int = 0):
    """Five own columns and thirty ``nb_`` columns; the class shows in one own column (the
    ``nb_`` columns are noise, as on a mosaic of unrelated crops), or only in a ``nb_`` one."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    own = rng.normal(size=(n, 5))
    nb = rng.normal(size=(n, 30))
    if signal_in_neighbours:
        nb[:, 0] += 3 * y
    else:
        own[:, 0] += 1.5 * y
    names = [f"m{k}" for k in range(5)] + [f"nb_m{k}" for k in range(30)]
    return np.concatenate([own, nb], 1).astype(np.float32), y, names


def _card(names):
    return {"kind": "forest", "architecture": "forest", "classes": list(CLASSES),
            "measurements": list(names)}  # fmt: skip


def test_noise_neighbour_columns_are_left_out_and_the_saved_forest_agrees(tmp_path):
    x, y, names = _table(signal_in_neighbours=False)
    model = fit_forest(x, y, CLASSES, names)
    assert "without the neighbours" in model.note
    assert dict(model.importances())["nb_m1"] == 0.0  # never read
    save_forest(tmp_path, model, _card(names))
    loaded = load_forest(tmp_path)
    assert loaded.feature_names == tuple(names)  # the whole table, as measured
    unseen, _, _ = _table(signal_in_neighbours=False, n=500, seed=1)
    np.testing.assert_allclose(loaded.predict_proba(unseen), model.predict_proba(unseen), atol=1e-6)
    assert loaded.importances() == model.importances()


def test_neighbour_columns_that_carry_the_class_are_kept():
    x, y, names = _table(signal_in_neighbours=True)
    model = fit_forest(x, y, CLASSES, names)
    assert "with the neighbours" in model.note
    test, truth, _ = _table(signal_in_neighbours=True, n=500, seed=1)
    assert (model.predict_proba(test).argmax(1) == truth).mean() > 0.85


def test_few_labels_use_every_column_without_choosing():
    x, y, names = _table(signal_in_neighbours=False, n=CHOICE_MIN_LABELS - 1)
    model = fit_forest(x, y, CLASSES, names)
    assert model.note == "" and model.columns is None

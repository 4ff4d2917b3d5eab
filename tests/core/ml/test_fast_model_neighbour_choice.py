"""The fast forest (live preview, suggestions) chooses with or without the neighbours' measurements
as the saved forest does: noise neighbours' columns do not steer its predictions or suggestions."""

from __future__ import annotations

import numpy as np

from svetlana.core.annotations.label_table import from_arrays
from svetlana.core.ml.fast_model import fit_fast
from svetlana.core.ml.forest import CHOICE_MIN_LABELS, fit_forest
from svetlana.core.usecases.suggest import _weights

CLASSES = ("a", "b")


def _rows(signal_in_neighbours: bool, n: int, seed: int):
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
    return np.concatenate([own, nb], 1).astype(np.float32), y


def _table(signal_in_neighbours: bool, labelled: int = 200):
    """``labelled`` labelled rows and 300 unlabelled ones."""
    x, y = _rows(signal_in_neighbours, labelled, 0)
    xu, yu = _rows(signal_in_neighbours, 300, 1)
    names = [f"m{k}" for k in range(5)] + [f"nb_m{k}" for k in range(30)]
    labels = np.r_[y, np.full(300, -1)]
    return from_arrays(np.vstack([x, xu]), labels, CLASSES, names), np.r_[y, yu]


def test_noise_neighbour_columns_are_left_out_as_the_trained_forest_leaves_them_out():
    table, y = _table(signal_in_neighbours=False)
    rows = table.labelled
    saved = fit_forest(table.values[rows], y[rows], CLASSES, table.feature_names)
    fast = fit_fast(table)
    assert "without the neighbours" in saved.note
    assert fast.model.columns is not None
    assert [table.feature_names[c] for c in fast.model.columns] == [f"m{k}" for k in range(5)]
    # Suggestions spread over the columns the model reads: the left-out ones weigh nothing.
    w = _weights(fast, len(table.feature_names))
    assert w[5:].max() == 0.0 and w[0] > 0
    rest = table.unlabelled
    assert (fast.predicted[rest] == y[rest]).mean() > 0.7


def test_neighbour_columns_that_carry_the_class_are_kept():
    table, y = _table(signal_in_neighbours=True)
    fast = fit_fast(table)
    assert fast.model.columns is None
    rest = table.unlabelled
    assert (fast.predicted[rest] == y[rest]).mean() > 0.85


def test_few_labels_use_every_column_and_the_choice_can_be_turned_off():
    table, _ = _table(signal_in_neighbours=False, labelled=CHOICE_MIN_LABELS - 1)
    assert fit_fast(table).model.columns is None
    table, _ = _table(signal_in_neighbours=False)
    assert fit_fast(table, choose_columns=False).model.columns is None


def test_a_refit_keeps_the_previous_choice_until_the_labels_grow_by_a_quarter():
    # The live preview refits after every label: choosing the columns (two fits) each time
    # would double its cost, so a refit given its previous model keeps that model's choice.
    table, y = _table(signal_in_neighbours=False)
    first = fit_fast(table)
    assert first.model.columns is not None and first.chosen_at == 200
    # The neighbours' columns now carry the class, but a few more labels keep the choice...
    signal, _ = _table(signal_in_neighbours=True, labelled=220)
    again = fit_fast(signal, previous=first)
    assert again.chosen_at == 200
    np.testing.assert_array_equal(again.model.columns, first.model.columns)
    # ... and a quarter more labels choose again (with them, this time).
    signal, _ = _table(signal_in_neighbours=True, labelled=250)
    assert fit_fast(signal, previous=first).model.columns is None

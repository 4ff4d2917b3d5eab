"""A received forest.npz is refused, naming it, when its arrays unpack to more than a forest of
its card can hold (a small file that unpacks to gigabytes would fill the memory); a forest as
trained opens."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import ModelError
from svetlana.core.ml.forest import fit_forest, load_forest, save_forest

CLASSES = ("a", "b")
NAMES = ("area", "ch0_mean")


def _saved(folder):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = fit_forest(x, y, CLASSES, NAMES)
    card = {"kind": "forest", "architecture": "forest", "classes": list(CLASSES),
            "measurements": list(NAMES), "n_labels": 40, "trees": model.n_trees}  # fmt: skip
    save_forest(folder, model, card)
    return model, x


def test_a_forest_as_trained_opens_within_its_bound(tmp_path):
    model, x = _saved(tmp_path)
    np.testing.assert_array_equal(load_forest(tmp_path).predict_proba(x), model.predict_proba(x))


def test_a_forest_file_that_unpacks_to_far_more_is_refused_naming_it(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "forest.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    # the class fractions of 4 million nodes: 64 MB of zeros, ~64 KB packed
    arrays["value"] = np.zeros((4 << 20, 2), np.float64)
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ModelError, match="unpacks to") as err:
        load_forest(tmp_path)
    assert err.value.path == path

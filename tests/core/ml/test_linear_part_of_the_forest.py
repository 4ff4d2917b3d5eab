"""The linear model averaged into the forest (core/ml/linear.py): kept where the labels'
out-of-sample estimates say it pays (a class boundary oblique to every measurement), left out
where it does not (a boundary the trees draw and a line cannot), saved as plain arrays that
round-trip to the same probabilities, and a tampered file or card is refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svetlana.core.errors import ModelError, UnsafeFileError
from svetlana.core.ml.forest import FOREST_FILE, fit_forest, load_forest, save_forest
from svetlana.core.ml.linear import LINEAR_CARD, add_linear, linear_card

CLASSES = ("a", "b", "c")
NAMES = tuple(f"m{i}" for i in range(12))


def _oblique(n, seed=0):
    """Three classes by which of three random directions through all 12 columns is largest."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    w = np.random.default_rng(99).normal(size=(len(NAMES), 3))
    return x.astype(np.float32), (x @ w).argmax(1)


def _checkerboard(n, seed=0):
    """Class by the signs of two columns (XOR): trees draw it, no line can."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    return x.astype(np.float32), ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)


def _card(model) -> dict:
    return {
        "kind": "forest",
        "architecture": "forest",
        "classes": list(CLASSES),
        "measurements": list(NAMES),
        "trees": model.n_trees,
        "n_labels": 300,
        **linear_card(model),
    }


def _model(seed=0):
    x, y = _oblique(300, seed)
    return add_linear(fit_forest(x, y, CLASSES, NAMES), x, y), x, y


def test_an_oblique_boundary_gets_the_linear_model_and_it_helps_on_unseen_objects():
    model, x, y = _model()
    assert model.linear is not None and 0 < model.linear_weight <= 1
    assert "linear model on every measurement weighted" in model.note
    forest = fit_forest(x, y, CLASSES, NAMES)
    xt, yt = _oblique(2000, seed=1)
    both = np.mean(model.predict_proba(xt).argmax(1) == yt)
    alone = np.mean(forest.predict_proba(xt).argmax(1) == yt)
    assert both > alone + 0.05
    p = model.predict_proba(xt)
    assert np.allclose(p.sum(1), 1, atol=1e-5) and p.min() >= 0


def test_a_boundary_no_line_can_draw_keeps_the_forest_alone():
    x, y = _checkerboard(300)
    model = add_linear(fit_forest(x, y, ("a", "b"), NAMES), x, y)
    assert model.linear is None and "no linear model" in model.note


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_linear_models_arrays_give_scikit_learns_probabilities(n_classes):
    """What the file keeps (clip, centre, scale, coefficients) predicts as the fitted model."""
    from sklearn.linear_model import LogisticRegression

    from svetlana.core.ml.linear import CLIP_PERCENTILES, C, fit_linear

    x, y = _oblique(200)
    y = np.minimum(y, n_classes - 1)
    m = fit_linear(x, y)
    xs = x.astype(np.float64)
    lo, hi = np.percentile(xs, CLIP_PERCENTILES, 0)
    xc = np.clip(xs, lo, hi)
    z = (xc - xc.mean(0)) / xc.std(0)
    ref = LogisticRegression(C=C, class_weight="balanced", max_iter=300).fit(z, y)
    xt, _ = _oblique(300, seed=5)
    zt = (np.clip(xt.astype(np.float64), lo, hi) - xc.mean(0)) / xc.std(0)
    assert np.allclose(m.predict_proba(xt), ref.predict_proba(zt), atol=1e-4)


def test_too_few_labels_fit_no_linear_model():
    x, y = _oblique(20)
    model = fit_forest(x, y, CLASSES, NAMES)
    assert add_linear(model, x, y) is model


def test_the_saved_model_round_trips_and_predicts_the_same(tmp_path):
    model, x, y = _model()
    save_forest(tmp_path, model, _card(model))
    with np.load(tmp_path / FOREST_FILE, allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = load_forest(tmp_path)
    assert loaded.linear is not None and loaded.linear_weight == model.linear_weight
    xt, _ = _oblique(500, seed=2)
    assert np.allclose(loaded.predict_proba(xt), model.predict_proba(xt), atol=1e-5)


def test_a_card_without_the_linear_field_predicts_with_the_forest_alone(tmp_path):
    """Files written before the linear part (no card field) open and predict as before."""
    model, x, _ = _model()
    card = _card(model)
    del card[LINEAR_CARD]
    save_forest(tmp_path, model, card)
    loaded = load_forest(tmp_path)
    forest_alone = fit_forest(*_oblique(300), CLASSES, NAMES)
    assert loaded.linear is None
    assert np.allclose(loaded.predict_proba(x), forest_alone.predict_proba(x), atol=1e-6)


def _rewrite(path, **changes):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, change in changes.items():
        arrays[key] = change(arrays[key].copy())
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"linear_coef": lambda a: a[:, :5]}, "coef has shape"),
        ({"linear_scale": lambda a: a[:3]}, "scale has shape"),
        ({"linear_intercept": lambda a: np.concatenate([a, a])}, "intercept has shape"),
        ({"linear_classes": lambda a: a + 7}, "classes"),
        ({"linear_scale": lambda a: a * 0}, "scale of 0"),
        ({"linear_centre": lambda a: a * np.nan}, "finite"),
        ({"linear_coef": lambda a: a.astype(np.int64)}, "type"),
    ],
)
def test_an_untrusted_file_with_wrong_linear_arrays_is_refused(tmp_path, changes, message):
    model, _, _ = _model()
    save_forest(tmp_path, model, _card(model))
    _rewrite(tmp_path / FOREST_FILE, **changes)
    with pytest.raises(ModelError, match=message) as err:
        load_forest(tmp_path)
    assert "linear model" in str(err.value) and FOREST_FILE in str(err.value)


def test_a_card_naming_a_linear_model_the_file_lacks_or_a_bad_weight_is_refused(tmp_path):
    model, _, _ = _model()
    card = _card(model)
    save_forest(tmp_path, model, card)
    for weight in (0, 1.5, "0.5", True, None):
        card[LINEAR_CARD]["weight"] = weight
        (tmp_path / "card.json").write_text(json.dumps(card))
        with pytest.raises(ModelError, match="weight"):
            load_forest(tmp_path)
    card[LINEAR_CARD]["weight"] = 0.5
    (tmp_path / "card.json").write_text(json.dumps(card))
    _rewrite(tmp_path / FOREST_FILE)  # same arrays, then one dropped
    with np.load(tmp_path / FOREST_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "linear_coef"}
    np.savez(tmp_path / FOREST_FILE, **arrays)
    with pytest.raises(ModelError, match="lacks linear_coef"):
        load_forest(tmp_path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_linear_array_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "HACKED"
    model, _, _ = _model()
    save_forest(tmp_path, model, _card(model))
    _rewrite(tmp_path / FOREST_FILE, linear_coef=lambda a: np.array([_Payload(marker)], object))
    with pytest.raises(UnsafeFileError, match="pickled"):
        load_forest(tmp_path)
    assert not marker.exists()


def test_the_measurements_read_include_the_linear_parts_so_prediction_never_sees_zeros():
    """Prediction measures only ``read_features`` (a new image: nothing else in the cache) and
    gives the other columns as zeros: the linear part's columns must be among them, or its
    probabilities on a new image would come from zeros instead of the measurements."""
    from dataclasses import replace

    from svetlana.core.ml.forest import select_features

    model, x, y = _model()
    assert model.linear is not None
    flat = x.copy()
    flat[:, 4:] = 0  # trees that can split on the first 4 columns only
    trees = fit_forest(flat, y, CLASSES, NAMES)
    both = replace(trees, linear=model.linear, linear_weight=model.linear_weight)
    read = both.read_features
    assert set(np.flatnonzero(np.any(model.linear.coef != 0, axis=0))) <= {
        NAMES.index(n) for n in read
    }
    xt, _ = _oblique(500, seed=2)
    only_read = [NAMES.index(n) for n in read]
    measured = select_features([NAMES[i] for i in only_read], xt[:, only_read], NAMES, None, read)
    assert np.allclose(both.predict_proba(measured), both.predict_proba(xt), atol=1e-6)


def test_the_linear_part_serves_the_labels_images_only_and_the_card_keeps_them(tmp_path):
    """Raw values do not travel between images: an image that holds none of the labels is
    predicted by the forest alone, an image of the labels by the blend; saved and read back the
    same, and a model saved before the images were recorded blends on every image as it did."""
    from dataclasses import replace

    model, x, _ = _model()
    forest_alone = replace(model, linear=None, linear_weight=0.0)
    own, other = "a" * 64, "b" * 64
    model = replace(model, linear_identities=(own,))
    xt, _ = _oblique(500, seed=3)
    blend = model.predict_proba(xt)
    assert not np.allclose(blend, forest_alone.predict_proba(xt))
    assert np.array_equal(model.for_image(own).predict_proba(xt), blend)
    assert np.array_equal(model.for_image(other).predict_proba(xt), forest_alone.predict_proba(xt))
    assert np.array_equal(model.predict_image(xt, "new", np.arange(500), other),
                          forest_alone.predict_proba(xt))  # fmt: skip
    assert model.needs_identity()

    save_forest(tmp_path / "m", model, _card(model))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card[LINEAR_CARD]["image_identities"] == [own]
    back = load_forest(tmp_path / "m")
    assert back.linear_identities == (own,)
    assert np.allclose(back.for_image(other).predict_proba(xt), forest_alone.predict_proba(xt))
    assert np.allclose(back.for_image(own).predict_proba(xt), blend, atol=1e-6)

    del card[LINEAR_CARD]["image_identities"]  # as an earlier version wrote it
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    before = load_forest(tmp_path / "m")
    assert before.linear_identities == () and not before.needs_identity()
    assert np.allclose(before.for_image(other).predict_proba(xt), blend, atol=1e-6)

    card[LINEAR_CARD]["image_identities"] = ["../../etc/passwd"]
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="image_identities"):
        load_forest(tmp_path / "m")

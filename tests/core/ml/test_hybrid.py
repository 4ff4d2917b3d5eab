"""The hybrid candidate (thorough mode): the forest on measurements + the CNN's out-of-fold
probabilities; chosen when each source knows part of the answer; saved as plain weights and
plain arrays, both checked when a received bundle's model is read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from svetlana.core.errors import ModelError, UnsafeFileError
from svetlana.core.ml.choosing import choose
from svetlana.core.ml.hybrid import HybridModel, save_hybrid, stacked_names
from svetlana.core.ml.inference import predict_probabilities
from svetlana.core.ml.models import load_checkpoint
from svetlana.core.ml.training import TrainingConfig

CLASSES = ("a0b0", "a0b1", "a1b0", "a1b1")
TINY = TrainingConfig(arch="minimal", epochs=15, batch_size=8, augment="none")
NAMES = ("f0", "f1", "f2")


def _split_scene(n: int, seed: int):
    """Class = 2a + b: bit a is in the measurements only, bit b in the patches only."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    a, b = y // 2, y % 2
    patches = rng.normal(0, 1, (n, 2, 8, 8)).astype(np.float32)
    patches[:, 1] = 1.0
    patches[:, 0, 2:6, 2:6] += np.where(b == 1, 3.0, -3.0)[:, None, None]
    features = rng.normal(0, 1, (n, 3)).astype(np.float32)
    features[:, 0] += 10 * a
    return patches, features, y


@pytest.fixture(scope="module")
def chosen():
    patches, features, y = _split_scene(64, 0)
    result = choose(
        features=features, feature_names=NAMES, patches=patches, labels=y, groups=None,
        class_names=CLASSES, config=TINY, candidates=("forest", "cnn", "hybrid"),
        budget_s=600, mode="thorough",
    )  # fmt: skip
    return result


def test_the_hybrid_wins_when_measurements_and_patches_each_hold_half_the_answer(chosen):
    sel = chosen.selection
    by = {c["name"]: c for c in sel["candidates"]}
    assert set(by) == {"forest", "minimal", "hybrid"}
    assert by["minimal"]["status"] == "done" and len(by["minimal"]["folds"]) == 5
    hybrid = by["hybrid"]
    assert hybrid["status"] == "done" and len(hybrid["folds"]) == 5
    assert hybrid["balanced_accuracy"] > by["forest"]["balanced_accuracy"] + 0.2
    assert hybrid["balanced_accuracy"] > by["minimal"]["balanced_accuracy"] + 0.2
    assert sel["chosen"] == "hybrid" and chosen.kind == "hybrid"
    model = chosen.model
    assert isinstance(model, HybridModel)
    assert model.forest.feature_names == NAMES + stacked_names(CLASSES)
    # New objects: the CNN's probabilities, then the forest on measurements + them.
    patches, features, y = _split_scene(80, 1)
    cnn = predict_probabilities(model.cnn, patches)
    pred = model.predict_proba(features, cnn).argmax(1)
    assert np.mean(pred == y) >= 0.9
    assert chosen.metrics["estimate"] == "cross-validation" and chosen.metrics["n_val"] == 64


def test_quick_mode_has_no_hybrid():
    patches, features, y = _split_scene(32, 2)
    result = choose(
        features=features, feature_names=NAMES, patches=patches, labels=y, groups=None,
        class_names=CLASSES, config=TINY, budget_s=600,
    )  # fmt: skip
    assert "hybrid" not in [c["name"] for c in result.selection["candidates"]]


def _card(model: HybridModel) -> dict:
    return {
        "id": "m", "kind": "hybrid", "architecture": "hybrid", "cnn_architecture": "minimal",
        "classes": list(CLASSES), "n_classes": 4, "in_channels": 2, "channels": 1, "ndim": 2,
        "patch_size": 8, "patch_shape": [8, 8], "n_labels": 64,
        "measurements": list(model.forest.feature_names),
    }  # fmt: skip


def test_a_saved_hybrid_loads_as_it_was_and_holds_no_pickle(chosen, tmp_path):
    model = chosen.model
    save_hybrid(tmp_path, model, _card(model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json", "forest.npz", "weights.pt"]
    loaded, card = load_checkpoint(tmp_path)
    assert isinstance(loaded, HybridModel) and card["kind"] == "hybrid"
    patches, features, _ = _split_scene(24, 3)
    cnn_a = predict_probabilities(model.cnn, patches)
    cnn_b = predict_probabilities(loaded.cnn, patches)
    np.testing.assert_allclose(cnn_a, cnn_b, atol=1e-5)
    np.testing.assert_allclose(
        model.predict_proba(features, cnn_a), loaded.predict_proba(features, cnn_b), atol=1e-6
    )


def test_a_received_hybrid_with_a_bad_card_or_a_pickle_is_refused(chosen, tmp_path):
    import json

    model = chosen.model
    card = _card(model)
    save_hybrid(tmp_path, model, card)
    bad = {k: v for k, v in card.items() if k != "cnn_architecture"}
    (tmp_path / "card.json").write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="cnn_architecture"):
        load_checkpoint(tmp_path)
    wrong = {**card, "measurements": list(NAMES)}  # no CNN columns at the end
    (tmp_path / "card.json").write_text(json.dumps(wrong))
    with pytest.raises(ModelError, match="one CNN probability column per class"):
        load_checkpoint(tmp_path)
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "forest.npz").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises((UnsafeFileError, ModelError)):
        load_checkpoint(tmp_path)
    save_hybrid(tmp_path, model, card)
    (tmp_path / "weights.pt").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(UnsafeFileError):
        load_checkpoint(tmp_path)


def test_a_hybrid_is_explained_by_its_cnn(chosen):
    from svetlana.core.ml.explain import gradcam

    patches, _, _ = _split_scene(4, 4)
    heat = gradcam(chosen.model, patches[0])
    assert heat.shape == (8, 8) and heat.min() >= 0 and heat.max() <= 1
    np.testing.assert_allclose(heat, gradcam(chosen.model.cnn, patches[0]))


def test_pretraining_without_labels_is_bounded_in_time_and_gives_an_embedding():
    from svetlana.core.ml.hybrid import embed, pretrain

    patches, _, y = _split_scene(48, 5)
    pre = pretrain(patches, arch="minimal", seconds=3.0, batch_size=16, max_epochs=2)
    assert pre.steps >= 1 and pre.seconds < 3.0 + 2.0  # one step may run over, not more
    emb = embed(pre.model, patches)
    assert emb.shape == (48, 16) and np.isfinite(emb).all()

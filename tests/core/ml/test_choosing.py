"""Choosing forest or CNN by cross-validation: folds, the pick, the budget, out-of-fold metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svetlana.core.errors import Cancelled
from svetlana.core.jobs import CancelToken
from svetlana.core.ml.choosing import choose, make_folds
from svetlana.core.ml.forest import ForestModel
from svetlana.core.ml.training import TrainingConfig

CLASSES = ("a", "b")
TINY = TrainingConfig(arch="minimal", epochs=15, batch_size=8, augment="none")


def _scene(
    n: int = 40, seed: int = 0, patches_informative: bool = True, features_informative: bool = True
):
    """Patches (N, 2, 8, 8) and measurements (N, 4) that do or do not carry the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    patches = rng.normal(0, 1, (n, 2, 8, 8)).astype(np.float32)
    patches[:, 1] = 1.0  # the object-mask channel
    if patches_informative:
        patches[:, 0, 2:6, 2:6] += np.where(y == 1, 3.0, -3.0)[:, None, None]
    features = rng.normal(0, 1, (n, 4)).astype(np.float32)
    if features_informative:
        features[:, 0] += 10 * y
    return patches, features, y


def _choose(patches, features, y, groups=None, **kw):
    return choose(
        features=features,
        feature_names=("f0", "f1", "f2", "f3"),
        patches=patches,
        labels=y,
        groups=groups,
        class_names=CLASSES,
        config=kw.pop("config", TINY),
        **kw,
    )


def test_folds_are_stratified_and_grouped_by_image_when_there_are_two():
    y = np.arange(40) % 2
    single = make_folds(y, np.zeros(40, int))
    assert single.method == "StratifiedKFold" and not single.grouped and len(single.splits) == 5
    groups = np.repeat([0, 1], 20)
    two = make_folds(y, groups)
    assert two.method == "StratifiedGroupKFold" and two.grouped and len(two.splits) == 2
    for train, val in two.splits:  # an image is never judged by a model trained on it
        assert not set(groups[train]) & set(groups[val])
    assert make_folds(np.array([0, 1]), None).splits == ()  # too few labels: no folds


def test_measurements_win_clearly_forest_is_chosen_and_cnn_skipped():
    patches, features, y = _scene(patches_informative=False)
    result = _choose(patches, features, y)
    sel = result.selection
    assert result.kind == "forest" and isinstance(result.model, ForestModel)
    assert sel["chosen"] == "forest" and sel["mode"] == "auto"
    forest, cnn = sel["candidates"]
    assert forest["name"] == "forest" and forest["balanced_accuracy"] == 1.0
    assert len(forest["folds"]) == 5 and forest["spread"] == 0.0
    assert cnn["name"] == "minimal" and cnn["status"] == "skipped"
    # Out-of-sample metrics: every label judged once, by trees that did not see it.
    m = result.metrics
    assert m["estimate"] == "out-of-bag" and m["n_val"] == 40
    assert np.asarray(m["confusion"]).sum() == 40


def test_patches_win_clearly_cnn_is_chosen_and_fitted_on_all_labels():
    patches, features, y = _scene(n=48, features_informative=False)
    result = _choose(patches, features, y, budget_s=600)
    sel = result.selection
    forest, cnn = sel["candidates"]
    assert cnn["status"] == "done" and len(cnn["folds"]) == 3
    assert cnn["balanced_accuracy"] > forest["balanced_accuracy"] + 0.2
    assert result.kind == "cnn" and sel["chosen"] == "minimal"
    assert len(result.history) == TINY.epochs  # the final fit ran on all labels
    # Out-of-fold metrics of the CNN cover the 3 folds it was cross-validated on.
    assert 0 < result.metrics["n_val"] < 48


def test_a_cnn_that_cannot_fit_the_budget_is_stopped_and_the_forest_kept():
    patches, features, y = _scene(n=48, features_informative=False)
    result = _choose(patches, features, y, budget_s=0.01)
    forest, cnn = result.selection["candidates"]
    assert cnn["status"] in ("stopped", "skipped") and "budget" in cnn["note"]
    assert result.kind == "forest"


def test_the_cnn_is_skipped_without_torch_when_the_forest_used_the_budget():
    """Quick mode: the forest's folds took longer than the time left, so the CNN (each fold
    slower than a forest) is not started; the card says why, and torch is never imported."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from svetlana.core.ml.choosing import choose
        from svetlana.core.ml.training import TrainingConfig
        rng = np.random.default_rng(0)
        y = np.arange(60) % 2
        x = rng.normal(size=(60, 4)).astype(np.float32)
        x[:, 0] += 1.5 * y
        r = choose(features=x, feature_names=("f0", "f1", "f2", "f3"),
                   patches=np.zeros((60, 2, 8, 8), np.float32), labels=y, groups=None,
                   class_names=("a", "b"), config=TrainingConfig(arch="minimal"), budget_s=0.2)
        print(json.dumps({"sel": r.selection, "kind": r.kind, "torch": "torch" in sys.modules}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    forest, cnn = got["sel"]["candidates"]
    assert forest["status"] == "done" and got["kind"] == "forest"
    assert cnn["status"] == "skipped"
    assert (
        "the forest's cross-validation and fit took" in cnn["note"]
        and "--mode thorough" in cnn["note"]
    )
    assert got["sel"]["reason"] == "the CNN was skipped"
    assert not got["torch"]


def test_the_folds_use_the_neighbour_choice_made_once_on_all_labels():
    """Neighbours' columns that are noise are dropped once (out-of-bag, all labels), and every
    fold's forest reads the same columns as the final one."""
    rng = np.random.default_rng(0)
    n = 200
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 35)).astype(np.float32)
    x[:, 0] += 1.5 * y  # the class shows in an own column; the 30 neighbours' ones are noise
    names = tuple(f"m{k}" for k in range(5)) + tuple(f"nb_m{k}" for k in range(30))
    result = choose(features=x, feature_names=names, patches=np.zeros((n, 2, 8, 8), np.float32),
                    labels=y, groups=None, class_names=CLASSES, config=TINY,
                    candidates=("forest",))  # fmt: skip
    assert "without the neighbours" in result.model.note
    assert dict(result.model.importances())["nb_m0"] == 0.0
    forest = result.selection["candidates"][0]
    assert forest["status"] == "done" and forest["balanced_accuracy"] > 0.6


def test_forced_forest_has_only_one_candidate():
    patches, features, y = _scene()
    result = _choose(patches, features, y, candidates=("forest",))
    assert [c["name"] for c in result.selection["candidates"]] == ["forest"]
    assert result.selection["mode"] == "forced" and result.kind == "forest"


def test_user_cancel_stops_the_choice():
    patches, features, y = _scene()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        _choose(patches, features, y, cancel=token)


def test_too_few_labels_to_cross_validate_still_gives_a_forest_and_says_so():
    patches, features, y = _scene(n=2)
    result = _choose(patches, features, y)
    forest, cnn = result.selection["candidates"]
    assert forest["status"] == cnn["status"] == "skipped" and "too few labels" in forest["note"]
    assert result.kind == "forest" and result.metrics["estimate"] == "none"


def test_the_budget_grows_with_the_labels_and_thorough_gives_more_time():
    from svetlana.core.ml.choosing import default_budget

    quick = [default_budget(2, n) for n in (50, 500, 2000)]
    assert quick[0] < quick[1] < quick[2]
    # Quick stays within the default-train targets (30 s at 500, 90 s at 2,000, all included).
    assert quick[1] <= 22 and quick[2] <= 60
    assert default_budget(3, 500) > quick[1]  # 3D patches cost more
    assert all(default_budget(2, n, "thorough") >= 3 * default_budget(2, n) for n in (50, 2000))
    with pytest.raises(ValueError, match="quick, thorough"):
        default_budget(2, 10, "slow")


def test_thorough_cross_validates_the_cnn_on_every_fold_and_records_the_mode():
    patches, features, y = _scene(n=48, features_informative=False)
    quick = _choose(patches, features, y, budget_s=600)
    thorough = _choose(patches, features, y, budget_s=600, mode="thorough")
    assert len(quick.selection["candidates"][1]["folds"]) == 3
    assert len(thorough.selection["candidates"][1]["folds"]) == 5
    assert quick.selection["effort"] == "quick" and thorough.selection["effort"] == "thorough"
    # Without an explicit budget the mode's budget, grown with the labels, is recorded.
    default = _choose(patches, features, y, mode="thorough")
    assert default.selection["budget_s"] > quick.selection["budget_s"] / 10 > 0


def test_a_cnn_cut_short_is_reported_with_what_it_reached():
    patches, features, y = _scene(n=48, patches_informative=False)
    rng = np.random.default_rng(1)
    features[:, 0] = 2.5 * y + rng.normal(0, 1, 48)  # the forest is good, not perfect
    result = _choose(patches, features, y, budget_s=600)
    forest, cnn = result.selection["candidates"]
    assert cnn["status"] == "stopped" and len(cnn["folds"]) >= 1
    reached = f"balanced accuracy {np.mean(cnn['folds']):.3f} on them"
    assert reached in cnn["note"] and cnn["balanced_accuracy"] is not None
    assert result.kind == "forest"


def test_the_forest_is_judged_with_its_linear_part_on_the_folds_and_in_its_accuracy():
    """A boundary oblique to every measurement: the linear part is kept, every fold's forest
    gets it too (the candidate compared with the CNN is the model the user gets), and the
    accuracy recorded is what the model reaches on new objects of the same kind."""
    from svetlana.core.ml.choosing import cv_forest

    rng = np.random.default_rng(0)
    w = rng.normal(size=(12, 3))

    def oblique(n, seed):
        x = np.random.default_rng(seed).normal(size=(n, 12)).astype(np.float32)
        return x, (x @ w).argmax(1)

    x, y = oblique(300, 1)
    names = tuple(f"m{i}" for i in range(12))
    result = choose(features=x, feature_names=names, patches=np.zeros((300, 2, 8, 8), np.float32),
                    labels=y, groups=None, class_names=("a", "b", "c"), config=TINY,
                    candidates=("forest",))  # fmt: skip
    model = result.model
    assert model.linear is not None and model.linear_weight > 0
    folds = make_folds(y, None, seed=TINY.seed)
    alone, _ = cv_forest(x, y, ("a", "b", "c"), names, folds, TINY.seed, CancelToken(), None)
    candidate = result.selection["candidates"][0]
    assert candidate["balanced_accuracy"] > np.mean(alone) + 0.03
    xt, yt = oblique(3000, 2)
    reached = float(np.mean(model.predict_proba(xt).argmax(1) == yt))
    assert result.metrics["estimate"] == "out-of-bag"
    assert abs(result.metrics["accuracy"] - reached) < 0.05


def test_a_cnn_skipped_for_a_forest_perfect_on_its_folds_says_which_folds():
    """The forest's mean over every fold can be below 1 (0.92 here) while it is perfect on the
    folds the CNN would be judged on: the note must not call the forest perfect outright."""
    from svetlana.core.ml.choosing import CandidateScore, _cv_cnn

    forest = CandidateScore("forest", "forest", "done", (1.0, 1.0, 1.0, 0.8, 0.8))
    y = np.arange(20) % 2
    folds = make_folds(y, None, seed=0)
    score, oof = _cv_cnn(np.zeros((20, 2, 8, 8), np.float32), y, folds, 3, 2,
                         TrainingConfig(), forest, None, None, None, 0, 1)  # fmt: skip
    assert score.status == "skipped" and (oof == -1).all()
    assert "perfect on the 3 folds the CNN would be judged on" in score.note

"""The forest classifier: fit/predict with few or missing labels, safe files, tampered files refused."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from svetlana.core.errors import InputError, ModelError, TrainingError, UnsafeFileError
from svetlana.core.ml.forest import (
    FOREST_FILE,
    SKOPS_FILE,
    ForestModel,
    fit_forest,
    forest_bytes,
    load_forest,
    save_forest,
    select_features,
)

CLASSES = ("a", "b", "c")
NAMES = ("area", "ch0_mean", "noise")


def table(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class a: small, b: large (column 0); column 1 = brightness by class; column 2 = noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.stack(
        [np.where(y == 0, 50, 200) + rng.normal(0, 5, n), 100 + 40 * y, rng.normal(0, 1, n)], 1
    )
    return x.astype(np.float32), y


def test_fit_predict_aligns_never_labelled_classes_with_zeros():
    x, y = table()
    model = fit_forest(x, y, CLASSES, NAMES, seed=0)
    probs = model.predict_proba(x)
    assert probs.shape == (60, 3) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.all(probs[:, 2] == 0)  # "c" was never labelled
    assert (probs.argmax(1) == y).all()
    assert model.predict_proba(np.zeros((0, 3))).shape == (0, 3)
    names = [n for n, _ in model.importances()]
    assert names[-1] == "noise"  # the noise column matters least


def test_one_label_of_a_class_and_unbalanced_labels():
    x, y = table(80)
    keep = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:1]])
    model = fit_forest(x[keep], y[keep], CLASSES, NAMES)
    test = np.flatnonzero(y == 1)[1:]
    # Balanced class weights: a single large object still claims most large ones.
    assert (model.predict_proba(x[test]).argmax(1) == 1).mean() > 0.9


def test_bad_input_is_refused_clearly():
    x, y = table()
    with pytest.raises(TrainingError, match="two classes"):
        fit_forest(x, np.zeros(60, int), CLASSES, NAMES)
    with pytest.raises(InputError, match="3 columns"):
        fit_forest(x[:, :2], y, CLASSES, NAMES)
    with pytest.raises(InputError, match="class indices"):
        fit_forest(x, y + 5, CLASSES, NAMES)
    with pytest.raises(ModelError, match="missing_one"):
        select_features(NAMES, x, ["area", "missing_one"])
    assert select_features(NAMES, x, ["noise", "area"]).tolist() == x[:, [2, 0]].tolist()


def _card() -> dict:
    return {
        "kind": "forest",
        "architecture": "forest",
        "classes": list(CLASSES),
        "measurements": list(NAMES),
    }


def test_saved_forest_gives_scikit_learns_probabilities_exactly(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 1] > 1.2, 2, (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int))
    model = fit_forest(x, y, CLASSES, NAMES)
    save_forest(tmp_path, model, _card())
    assert zipfile.is_zipfile(tmp_path / FOREST_FILE)
    with np.load(tmp_path / FOREST_FILE, allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype != object for k in npz.files)
    assert json.loads((tmp_path / "card.json").read_text())["kind"] == "forest"
    loaded = load_forest(tmp_path)
    assert isinstance(loaded, ForestModel) and loaded.class_names == CLASSES
    assert loaded.estimator is None and loaded.n_trees == model.n_trees
    unseen = rng.normal(size=(2000, 3)).astype(np.float32) * 2
    unseen[:5] = x[:5]  # values equal to a threshold go left, as in scikit-learn
    assert np.allclose(loaded.predict_proba(unseen), model.predict_proba(unseen), atol=1e-6)
    assert (loaded.predict_proba(unseen).argmax(1) == model.predict_proba(unseen).argmax(1)).all()
    assert loaded.importances() == model.importances()


def test_loading_a_forest_needs_neither_scikit_learn_nor_skops(tmp_path):
    import subprocess
    import sys

    x, y = table()
    save_forest(tmp_path, fit_forest(x, y, CLASSES, NAMES), _card())
    code = (
        "import sys; from svetlana.core.ml.forest import load_forest; import numpy as np; "
        f"m = load_forest({str(tmp_path)!r}); m.predict_proba(np.zeros((4, 3))); "
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('sklearn', 'skops')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # seconds of imports saved on every predict


def test_a_forest_saved_by_an_earlier_version_still_predicts(tmp_path):
    import skops.io as sio

    x, y = table()
    model = fit_forest(x, y, CLASSES, NAMES)
    sio.dump(model.estimator, tmp_path / SKOPS_FILE)  # what versions before 0.9 wrote
    (tmp_path / "card.json").write_text(json.dumps(_card()))
    loaded = load_forest(tmp_path)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", [FOREST_FILE, SKOPS_FILE])
def test_a_pickle_disguised_as_a_forest_is_refused_and_runs_nothing(tmp_path, name):
    marker = tmp_path / "HACKED"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
    (folder / "card.json").write_text(json.dumps(_card()))
    with pytest.raises(UnsafeFileError, match="pickle"):
        load_forest(folder)
    assert not marker.exists()


def test_a_forest_file_with_a_pickled_array_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "HACKED"
    x, y = table()
    save_forest(tmp_path, fit_forest(x, y, CLASSES, NAMES), _card())
    with np.load(tmp_path / FOREST_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["value"] = np.array([_Payload(marker)], dtype=object)
    np.savez(tmp_path / FOREST_FILE, **arrays)
    with pytest.raises(UnsafeFileError, match="pickled"):
        load_forest(tmp_path)
    assert not marker.exists()


def _rewrite(path: Path, **changes) -> None:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, change in changes.items():
        arrays[key] = change(arrays[key].copy())
    np.savez(path, **arrays)


def _set(index: int, value):
    def change(a):
        a[index] = value
        return a

    return change


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"left": _set(0, 10**6)}, "child index outside"),  # would read far out of the arrays
        ({"left": _set(0, 0)}, "child index outside"),  # a loop: the walk would never end
        ({"right": _set(0, -1)}, "one child"),
        ({"feature": _set(0, 7)}, "measurement the card does not list"),
        ({"offsets": lambda a: a[:-1]}, "offsets"),
        ({"classes": lambda a: a + 5}, "classes"),
        ({"value": lambda a: a[:, :1]}, "values"),
        ({"threshold": lambda a: a.astype(np.int64)}, "type"),
        ({"format": lambda a: np.array("something-else")}, "format"),
    ],
)
def test_a_tampered_or_damaged_forest_file_is_refused_clearly(tmp_path, changes, message):
    x, y = table()
    save_forest(tmp_path, fit_forest(x, y, CLASSES, NAMES), _card())
    _rewrite(tmp_path / FOREST_FILE, **changes)
    with pytest.raises(ModelError, match=message) as err:
        load_forest(tmp_path)
    assert FOREST_FILE in str(err.value)


def test_forest_bytes_are_what_save_writes(tmp_path):
    x, y = table()
    model = fit_forest(x, y, CLASSES, NAMES)
    save_forest(tmp_path, model, _card(), forest_bytes(model))
    assert np.array_equal(load_forest(tmp_path).predict_proba(x), model.predict_proba(x))


def _tamper(path: Path, module: str, name: str) -> None:
    """Rewrite a skops file's schema so that its top object is ``module.name``."""
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    schema["__module__"], schema["__class__"] = module, name
    files["schema.json"] = json.dumps(schema).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize(("module", "name"), [("builtins", "eval"), ("os", "system")])
@pytest.mark.parametrize("file_name", [SKOPS_FILE, FOREST_FILE])
def test_a_skops_file_naming_code_is_refused_before_loading(
    tmp_path, module, name, file_name, monkeypatch
):
    import skops.io as sio

    x, y = table()
    sio.dump(fit_forest(x, y, CLASSES, NAMES).estimator, tmp_path / file_name)
    (tmp_path / "card.json").write_text(json.dumps(_card()))
    _tamper(tmp_path / file_name, module, name)

    def must_not_load(*_a, **_k):
        raise AssertionError("the file was loaded")

    monkeypatch.setattr(sio, "load", must_not_load)
    with pytest.raises(UnsafeFileError, match=f"{module}.{name}"):
        load_forest(tmp_path)


def test_another_estimator_or_a_mismatched_card_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x, y = table()
    sio.dump(LogisticRegression().fit(x, y), tmp_path / SKOPS_FILE)
    (tmp_path / "card.json").write_text(json.dumps(_card()))
    with pytest.raises(ModelError, match="LogisticRegression"):
        load_forest(tmp_path)
    save_forest(tmp_path, fit_forest(x, y, CLASSES, NAMES), {**_card(), "measurements": ["area"]})
    with pytest.raises(ModelError, match="measurements"):
        load_forest(tmp_path)
    (tmp_path / FOREST_FILE).write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises((ModelError, InputError), match="forest"):
        load_forest(tmp_path)


def test_a_large_table_is_predicted_a_block_of_rows_at_a_time_with_the_same_result(
    tmp_path, monkeypatch
):
    """Whole-slide tables (hundreds of thousands of rows) are predicted in blocks, so memory
    stays small: the same probabilities as all rows at once, saved or fitted forest."""
    from svetlana.core.ml import forest

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 1] > 1.2, 2, (x[:, 0] > 0).astype(int))
    model = fit_forest(x, y, CLASSES, NAMES)
    save_forest(tmp_path, model, _card())
    loaded = load_forest(tmp_path)
    rows = rng.normal(size=(1000, 3)).astype(np.float32)
    rows[7, 1] = np.inf  # cleaned in its block as in the whole table
    whole = [m.predict_proba(rows) for m in (model, loaded)]
    monkeypatch.setattr(forest, "_PREDICT_BLOCK", 97)
    for m, ref in zip((model, loaded), whole, strict=True):
        np.testing.assert_array_equal(m.predict_proba(rows), ref)

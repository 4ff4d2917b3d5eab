"""Every record read from a received bundle is checked when read: a tampered journal line, cache,
card, manifest field or forest is refused with one message naming the file (or rebuilt, for a
cache), never replayed into an unopenable project or turned into wrong results with exit 0.
(Issue 23, items 6, 11 and 15.)"""

from __future__ import annotations

import errno
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from svetlana.core.project.bundle import Project
from tests.robustness.helpers import (
    IDS,
    assert_clear_error,
    make_bundle,
    ok,
    received_copy,
    run_cli,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    bundle = make_bundle(tmp_path_factory.mktemp("trained"))
    ok("-q", "train", bundle, "--arch", "forest")
    return bundle


@pytest.fixture
def bundle(trained, tmp_path) -> Path:
    return received_copy(trained, tmp_path)


def _edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    obj = change(obj) or obj
    path.write_text(json.dumps(obj))


def _predicted_rows(bundle: Path) -> int:
    csv = bundle / "predictions" / "model-1" / "predictions.csv"
    return len(csv.read_text().splitlines()) - 1


# ---- journal and caches (item 6) -------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        {"op": "update_class", "name": "dim", "changes": {"name": ""}},
        {"op": "update_class", "name": "dim", "changes": {"name": "a\nb"}},
        {"op": "update_class", "name": "dim", "changes": {"colour": ["x"]}},
        {"op": "add_class", "name": "", "colour": "#fff", "key": ""},
        {"op": "add_class", "name": "x,y", "colour": "#fff", "key": ""},
        {"op": "label", "image": "cells", "object": -4, "class": "dim"},
        {"op": "label", "image": "cells", "object": 10, "class": "dim", "source": "robot"},
    ],
)
def test_a_tampered_journal_record_is_refused_never_replayed(bundle, record, caplog):
    with open(bundle / "annotations.journal", "a") as f:
        f.write(json.dumps(record) + "\n")
    out = ok("info", bundle)  # opens, says which line it refused
    assert "bright" in out and "dim" in out
    assert "annotations.journal: line 1: refused a damaged record" in caplog.text
    ok("classes", bundle, "--rename", "bright", "shiny")  # a write compacts the journal
    for args in (["info", bundle], ["export-labels", bundle, bundle.parent / "l.csv"]):
        ok(*args)
    with Project.open(bundle, readonly=True) as p:
        assert p.annotations.class_names == ("shiny", "dim")
        assert len(p.annotations) == len(IDS)


def test_an_object_table_cache_with_objects_removed_is_rebuilt(bundle):
    cache = bundle / "objects" / "cells.npz"
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    keep = np.arange(len(arrays["ids"])) % 2 == 0  # half of the objects, well-formed
    np.savez(cache, **{k: v[keep] for k, v in arrays.items()})
    ok("-q", "predict", bundle)
    assert _predicted_rows(bundle) == len(IDS)  # every object classified, not 6 of 12


def test_an_object_table_cache_with_foreign_ids_is_rebuilt(bundle):
    cache = bundle / "objects" / "cells.npz"
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["ids"] = arrays["ids"] + 1
    np.savez(cache, **arrays)
    ok("-q", "predict", bundle)
    assert _predicted_rows(bundle) == len(IDS)


# ---- manifest fields (item 15) --------------------------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m["images"][0].update(name="../../../tmp/evil"), "not usable"),
        (lambda m: m["images"][0].update(channels=0), "malformed"),
        (lambda m: m["settings"].update(sampling_seed="abc"), "sampling_seed"),
        (lambda m: m["settings"].update(sampling_seed=2**70), "sampling_seed"),
        (lambda m: m["classes"][0].update(name=""), "class name"),
        (lambda m: m["classes"][0].update(name=["x"]), "class name"),
        (lambda m: m["classes"][1].update(name=m["classes"][0]["name"]), "two classes"),
        (lambda m: m["images"].append(dict(m["images"][0])), "two images"),
    ],
)
def test_a_tampered_manifest_field_is_one_message_naming_the_manifest(bundle, change, message):
    _edit_json(bundle / "project.json", change)
    for args in (["info", bundle], ["-q", "predict", bundle]):
        code, _, err = run_cli(*args)
        assert_clear_error(code, err)
        assert "project.json" in err and message in err, err


# ---- model cards (item 15) ----------------------------------------------------------------


def _second_model(bundle: Path) -> None:
    """model-2: a copy of model-1, registered."""
    shutil.copytree(bundle / "models" / "model-1", bundle / "models" / "model-2")
    _edit_json(bundle / "project.json", lambda m: m["models"].append({"id": "model-2"}))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c: [c], "not a JSON object"),
        (lambda c: c.pop("classes") and None, "'classes'"),
        (lambda c: c.update(classes="bright"), "'classes'"),
        (lambda c: c.update(classes=[]), "'classes'"),
        (lambda c: c.update(patch_size="16"), "'patch_size'"),
        (lambda c: c.update(ndim=2.5), "'ndim'"),
        (lambda c: c.update(measurements={"a": 1}), "'measurements'"),
        (lambda c: c.update(metrics=[1]), "'metrics'"),
    ],
)
def test_a_damaged_card_names_itself_and_other_models_keep_working(bundle, change, message):
    _second_model(bundle)
    _edit_json(bundle / "models" / "model-2" / "card.json", change)
    out = ok("info", bundle)  # the whole project is still shown
    assert "model-1" in out and "model-2" in out
    info = json.loads(ok("info", "--json", bundle))
    broken = next(m for m in info["models"] if m["id"] == "model-2")
    assert "card.json" in broken["error"] and message in broken["error"]
    code, _, err = run_cli("-q", "predict", bundle, "--model", "model-2")
    assert_clear_error(code, err)
    assert "model-2/card.json" in err and message in err, err
    ok("-q", "predict", bundle, "--model", "model-1")
    assert _predicted_rows(bundle) == len(IDS)


# ---- forest files (item 15) ---------------------------------------------------------------


def _rewrite_forest(bundle: Path, change) -> Path:
    path = bundle / "models" / "model-1" / "forest.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


def _chain(arrays: dict, n: int) -> None:
    """One tree that is a chain of ``n`` inner nodes (each node's right child a leaf)."""
    k = len(arrays["classes"])
    nodes = 2 * n + 1
    left = np.full(nodes, -1, np.int32)
    right = np.full(nodes, -1, np.int32)
    inner = np.arange(0, 2 * n, 2)
    left[inner], right[inner] = inner + 2, inner + 1
    feature = np.full(nodes, -2, np.int32)
    feature[inner] = 0
    arrays.update(
        offsets=np.array([0, nodes], np.int64),
        left=left,
        right=right,
        feature=feature,
        threshold=np.where(feature >= 0, 1e30, -2.0),
        value=np.full((nodes, k), 1.0 / k),
    )


def _decreasing(offsets: np.ndarray) -> np.ndarray:
    """Unsigned offsets that go back once (``[0, n, 1, n]``): a difference that wraps round."""
    n = int(offsets[-1])
    return np.array([0, n, 1, n], np.uint64)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a: a.update(offsets=_decreasing(a["offsets"])), "offsets"),
        (lambda a: a["value"].__setitem__((0, 0), -1e300), "outside 0..1"),
        (lambda a: a["importances"].__setitem__(0, np.nan), "importances"),
        (lambda a: _chain(a, 100_000), "nodes"),
    ],
)
def test_a_tampered_forest_is_refused_quickly_naming_it(bundle, change, message):
    _rewrite_forest(bundle, change)
    t0 = time.perf_counter()
    code, _, err = run_cli("-q", "predict", bundle)
    assert time.perf_counter() - t0 < 10
    assert_clear_error(code, err)
    assert "forest.npz" in err and message in err, err


def test_a_deep_tree_is_refused_even_when_the_card_allows_many_nodes(bundle):
    _edit_json(bundle / "models" / "model-1" / "card.json", lambda c: c.pop("n_labels") and None)
    _rewrite_forest(bundle, lambda a: _chain(a, 100_000))
    t0 = time.perf_counter()
    code, _, err = run_cli("-q", "predict", bundle)
    assert time.perf_counter() - t0 < 10
    assert_clear_error(code, err)
    assert "forest.npz" in err and "deeper than" in err, err


def test_a_skops_forest_holding_another_estimator_is_refused_before_loading(bundle, monkeypatch):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    folder = bundle / "models" / "model-1"
    (folder / "forest.npz").unlink()
    x = np.random.default_rng(0).normal(size=(20, 3))
    sio.dump(LogisticRegression().fit(x, np.arange(20) % 2), folder / "forest.skops")

    def must_not_load(*_a, **_k):
        raise AssertionError("the file was loaded")

    monkeypatch.setattr(sio, "load", must_not_load)
    code, _, err = run_cli("-q", "predict", bundle)
    assert_clear_error(code, err)
    assert "forest.skops" in err and "LogisticRegression" in err and "before loading" in err


# ---- a full disk (item 11) ----------------------------------------------------------------


def _full_disk_after(monkeypatch, name: str) -> None:
    """Writing the temp file of ``name`` fails as on a full disk."""
    import svetlana.core.io.fileio as fileio

    real = fileio._mkstemp

    def mkstemp(path, prefix, suffix):
        if path.name == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, prefix, suffix)

    monkeypatch.setattr(fileio, "_mkstemp", mkstemp)


@pytest.mark.parametrize("failing", ["annotations.csv", "project.json"])
def test_import_on_a_full_disk_says_nothing_changed_only_when_true(
    bundle, tmp_path, monkeypatch, failing
):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,object,class,source\ncells,10,dim,manual\ncells,17,bright,manual\n")
    before = {p: (bundle / p).read_bytes() for p in ("annotations.csv", "project.json")}
    with monkeypatch.context() as m:
        _full_disk_after(m, failing)
        code, _, err = run_cli("import-labels", bundle, labels, "--add-classes")
    assert_clear_error(code, err)
    assert "disk is full" in err and "nothing was changed" in err, err
    with Project.open(bundle, readonly=True) as p:  # the journal does not bring it back
        assert p.annotations.get("cells", 10).class_name == "bright"
    after = {p: (bundle / p).read_bytes() for p in ("annotations.csv", "project.json")}
    assert after == before
    ok("import-labels", bundle, labels)  # space again: it works
    with Project.open(bundle, readonly=True) as p:
        assert p.annotations.get("cells", 10).class_name == "dim"


def test_a_full_disk_when_taking_the_lock_is_a_clear_message(bundle, monkeypatch):
    import os as _os

    real = _os.write

    def write(fd, data):
        if b'"pid"' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(_os, "write", write)
    code, _, err = run_cli("-q", "predict", bundle)
    assert_clear_error(code, err)
    assert ".lock" in err and "disk is full" in err, err


@pytest.mark.parametrize("seed", [str(2**40), str(2**32)])
def test_a_seed_numpy_cannot_take_is_one_clear_message(bundle, seed):
    before = {p.name: p.read_bytes() for p in (bundle / "models").rglob("*") if p.is_file()}
    code, _, err = run_cli("-q", "train", bundle, "--arch", "forest", "--seed", seed)
    assert_clear_error(code, err)
    assert "seed" in err and "2**32" in err, err
    after = {p.name: p.read_bytes() for p in (bundle / "models").rglob("*") if p.is_file()}
    assert after == before


def test_a_measurement_cache_with_objects_removed_is_remeasured(bundle):
    ok("-q", "predict", bundle)  # writes measurements/cells.npz
    cache = bundle / "measurements" / "cells.npz"
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    keep = np.arange(len(arrays["ids"])) % 2 == 0  # well-formed, its fingerprint still right
    arrays["ids"], arrays["values"] = arrays["ids"][keep], arrays["values"][keep]
    np.savez(cache, **arrays)
    ok("-q", "predict", bundle)
    assert _predicted_rows(bundle) == len(IDS)
    table = bundle.parent / "table"
    ok("export-table", bundle, "--out", table)
    rows = (table / "objects.csv").read_text().splitlines()
    assert len(rows) == 1 + len(IDS)

"""Property-based damaged records of a received bundle: model cards, the manifest, journal lines
and forest arrays, changed at random. Each run is one clear message naming the damaged file
(never "unexpected ...Error") or a correct prediction of every object."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.helpers import IDS, assert_clear_error, make_bundle, ok, run_cli

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# JSON values of every type, including the ones a field never holds: lists for objects,
# strings for numbers, huge or non-finite numbers, empty and strange strings.
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "abc", "../../../tmp/evil", "a\nb", "1e999", "-1", "forest", "x,y"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    bundle = make_bundle(tmp_path_factory.mktemp("fuzz-records"))
    ok("-q", "train", bundle, "--arch", "forest")
    return bundle


def _copy(trained: Path, tmp: str) -> Path:
    bundle = Path(tmp) / "b.svetlana"
    shutil.copytree(trained, bundle)
    (bundle / ".lock").unlink(missing_ok=True)
    return bundle


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _damage(data, obj):
    """``obj`` with one value (anywhere in it) replaced, or a key removed, or all replaced."""
    how = data.draw(st.sampled_from(["replace", "remove", "whole"]))
    if how == "whole":
        return data.draw(json_values)
    path = data.draw(st.sampled_from(list(_paths(obj))[1:]))
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if how == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    return obj


def _predicts_or_names(bundle: Path, name: str) -> None:
    """``predict`` either classifies every object or fails with one line naming ``name``."""
    for args in (["info", bundle], ["-q", "predict", bundle]):
        code, _, err = run_cli(*args)
        if code != 0:
            assert_clear_error(code, err)
            # the damaged file, the entry of the bundle it points at, or the project when
            # what it says is valid but empty
            assert name in err or f"{bundle}/" in err or "the project has no" in err, err
            return
    csv = bundle / "predictions" / "model-1" / "predictions.csv"
    rows = csv.read_text().splitlines()[1:]
    assert len(rows) == len(IDS)
    for row in rows:
        probs = [float(v) for v in row.split(",")[7:9]]
        assert all(0 <= p <= 1 for p in probs), row


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_damaged_model_cards(trained, data):
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _copy(trained, tmp)
        card = bundle / "models" / "model-1" / "card.json"
        card.write_text(json.dumps(_damage(data, json.loads(card.read_text()))))
        _predicts_or_names(bundle, "card.json")


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_damaged_manifests(trained, data):
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _copy(trained, tmp)
        manifest = bundle / "project.json"
        manifest.write_text(json.dumps(_damage(data, json.loads(manifest.read_text()))))
        _predicts_or_names(bundle, "project.json")


_RECORDS = [
    {"op": "label", "image": "cells", "object": 10, "class": "dim", "source": "manual"},
    {"op": "update_class", "name": "dim", "changes": {"name": "faint"}},
    {"op": "add_class", "name": "new", "colour": "#ffffff", "key": "", "index": 2},
    {"op": "remove_class", "name": "new"},
]


@settings(FUZZ)
@given(data=st.data(), record=st.sampled_from(_RECORDS))
def test_fuzz_damaged_journal_records(trained, data, record):
    """A damaged record is refused when read (a warning naming its line), never replayed into
    a project that the next command cannot open."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _copy(trained, tmp)
        damaged = _damage(data, json.loads(json.dumps(record)))
        with open(bundle / "annotations.journal", "w") as f:
            f.write(json.dumps(damaged) + "\n")
        for args in (
            ["info", bundle],
            ["classes", bundle, "--rename", "bright", "shiny"],  # compacts the journal
            ["info", bundle],
            ["export-labels", bundle, Path(tmp) / "labels.csv"],
        ):
            code, _, err = run_cli(*args)
            if code != 0:
                assert_clear_error(code, err)
                assert "annotations" in err or "project.json" in err, err


_FOREST_KEYS = [
    "offsets",
    "left",
    "right",
    "feature",
    "threshold",
    "value",
    "classes",
    "importances",
]


@st.composite
def damaged_arrays(draw, arrays: dict) -> dict:
    key = draw(st.sampled_from(_FOREST_KEYS))
    a = arrays[key].copy()
    how = draw(st.sampled_from(["set", "dtype", "cut", "shape"]))
    if how == "set" and a.size:
        i = draw(st.integers(0, a.size - 1))
        v = draw(
            st.one_of(
                st.integers(-(2**40), 2**40),
                st.floats(allow_nan=True, allow_infinity=True, width=64),
            )
        )
        flat = a.astype(np.float64).ravel() if a.dtype.kind == "f" else a.ravel().copy()
        try:
            flat[i] = v
        except (OverflowError, ValueError):
            flat[i] = -1
        a = flat.reshape(a.shape).astype(a.dtype) if a.dtype.kind != "f" else flat.reshape(a.shape)
    elif how == "dtype":
        a = a.astype(draw(st.sampled_from(["uint8", "uint64", "int16", "float32", "bool"])))
    elif how == "cut":
        a = a[: draw(st.integers(0, max(len(a) - 1, 0)))]
    else:
        a = a.reshape(-1, 1) if a.ndim == 1 else a.ravel()
    return {**arrays, key: a}


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_damaged_forest_files(trained, data):
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _copy(trained, tmp)
        path = bundle / "models" / "model-1" / "forest.npz"
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        with np.errstate(all="ignore"):
            damaged = data.draw(damaged_arrays(arrays))
        np.savez(path, **damaged)
        _predicts_or_names(bundle, "forest.npz")

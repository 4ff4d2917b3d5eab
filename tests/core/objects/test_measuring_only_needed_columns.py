"""A model's measurements cost only their families: each family computed alone gives the values
of a full measurement, a forest predicts the same classes from only the columns its trees read,
and the bundle's cache keeps what was computed and adds only what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.objects.measure_registry import FAMILIES, layout
from svetlana.core.objects.measurements import channel_prefixes, measure_objects


def _scene(kind: str):
    from svetlana.core.synthetic.hard import SCENES

    if kind == "rgb":  # brightfield RGB: the stains are measured as two more channels
        s = SCENES["texture2d"](1).images[0]
        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (3, *s.labels.shape)).astype(np.uint8)
        return image, s.labels, None
    s = SCENES[kind](1).images[0]
    return np.asarray(s.image, np.float32), s.labels, s.spacing


def _parts(image, labels, spacing):
    """Each (family, channel) of this image, with its columns."""
    from svetlana.core.objects.stains import is_brightfield_rgb

    img = image if image.ndim == labels.ndim + 1 else image[np.newaxis]
    prefixes = channel_prefixes(img.shape[0], is_brightfield_rgb(img))
    out: dict = {}
    for c in layout(labels.ndim, prefixes, spacing is not None):
        out.setdefault((c.family, c.channel), []).append(c.name)
    return out


def _check_subset(image, labels, spacing, full, full_some, some, columns) -> None:
    """``columns`` measured alone (every object, and the objects ``some``) give the full
    measurement's values, and little more than them: the asked columns and the base columns
    of the neighbours' means asked for."""
    alone = measure_objects(image, labels, spacing=spacing, columns=columns)
    base = {c.removeprefix("nb_") for c in columns}
    assert set(columns) <= set(alone.names) <= set(columns) | base, columns
    for name in alone.names:
        assert np.array_equal(alone.column(name), full.column(name)), (name, columns)
    asked = [c for c in columns if not c.startswith("nb_")]
    if asked:  # the same objects measured: the same bands, the same sums
        sub = measure_objects(image, labels, ids=some, spacing=spacing, columns=asked)
        assert set(sub.names) == set(asked)
        for name in sub.names:
            assert np.array_equal(sub.column(name), full_some.column(name)), (name, columns)


@pytest.mark.parametrize("kind", ["marker_uneven", "texture3d_aniso", "rgb"])
def test_any_columns_computed_alone_give_the_full_measurement_values(kind):
    """Each column alone (one moment order, one filter-bank response, one shape measure...),
    and random sets of columns with and without the neighbours' means."""
    image, labels, spacing = _scene(kind)
    full = measure_objects(image, labels, spacing=spacing)
    some = np.unique(labels[labels > 0])[::4]
    base = [n for n in full.names if not n.startswith("nb_")]
    full_some = measure_objects(image, labels, ids=some, spacing=spacing, columns=base)
    # Every column alone in 2D; in 3D the shape's (their own code), the others as in 2D.
    singles = {"marker_uneven": base, "texture3d_aniso": base[:12]}.get(kind, [])
    for name in singles:
        _check_subset(image, labels, spacing, full, full_some, some, [name])
    rng = np.random.default_rng(0)
    for k in (2, 3, 5, 8, 13):
        for _ in range(2):
            pick = rng.choice(len(full.names), k, replace=False)
            cols = [full.names[j] for j in sorted(pick)]
            _check_subset(image, labels, spacing, full, full_some, some, cols)


def test_columns_this_image_has_not_are_left_out_for_the_caller_to_report():
    image, labels, spacing = _scene("marker_uneven")
    m = measure_objects(image, labels, columns=["area", "ch7_mean", "no_such_column"])
    assert "area" in m.names and "ch7_mean" not in m.names
    assert not any(n.startswith("ch0_") for n in m.names)  # no channel was needed


def test_a_forest_predicts_the_same_classes_from_only_the_columns_its_trees_read():
    from svetlana.core.ml.forest import fit_forest, select_features

    image, labels, spacing = _scene("marker_uneven")
    full = measure_objects(image, labels, spacing=spacing)
    # A model whose card names the shape and intensity columns only (trained on those).
    cols = [n for n in full.names if "ring" not in n and "_s" not in n and "context" not in n]
    idx = [full.names.index(n) for n in cols]
    y = (full.column("ch0_mean") > np.median(full.column("ch0_mean"))).astype(int)
    y += 2 * (full.column("area") > np.median(full.column("area")))
    model = fit_forest(full.values[:, idx], y, ["a", "b", "c", "d"], cols, seed=0)
    read = model.read_features
    assert 0 < len(read) < len(full.names)
    part = measure_objects(image, labels, spacing=spacing, columns=read)
    assert len(part.names) < len(full.names)
    x = select_features(part.names, part.values, model.feature_names, read=read)
    expected = model.predict_proba(full.values[:, idx])
    assert np.array_equal(model.predict_proba(x), expected)


@pytest.fixture
def cache(tmp_path):
    from svetlana.core.objects.measurement_cache import measurement_cache
    from svetlana.core.project.bundle import Project
    from tests.conftest import blobs, write_pair

    image, labels = blobs()
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    p = Project.create(tmp_path / "p.svetlana", ["a", "b"])
    p.add_image(ip, mp)
    loaded = p.load("cells")
    yield measurement_cache(p, "cells"), loaded.image, loaded.labels
    p.close()


def test_the_cache_adds_missing_columns_and_never_recomputes_the_cached_ones(cache, monkeypatch):
    import svetlana.core.objects.measurement_cache as mod

    c, image, labels = cache
    full = measure_objects(image, labels, spacing=c.spacing)
    asked = []
    real = mod.measure_objects
    monkeypatch.setattr(mod, "measure_objects", lambda *a, **k: asked.append(k["columns"]) or real(*a, **k))  # fmt: skip

    first = c.measure(image, labels, columns=["area", "ch0_mean"])
    assert "ch0_gauss_s1_mean" not in first.names and "ch0_mean" in first.names
    assert "ch0_gauss_s1_mean" not in c.cached().names  # the file holds what was computed
    both = c.measure(image, labels, columns=["ch0_mean", "ch0_gauss_s1_mean"])
    assert asked[-1] == ["ch0_gauss_s1_mean"]  # only the missing column was asked for
    assert {"area", "ch0_mean", "ch0_gauss_s1_mean"} <= set(c.cached().names)
    for name in both.names:
        assert np.array_equal(both.column(name), full.column(name)), name
    everything = c.measure(image, labels)
    assert everything.names == full.names and np.array_equal(everything.values, full.values)
    calls = len(asked)
    again = c.measure(image, labels, columns=["ch0_ring_mean"])
    assert len(asked) == calls and np.array_equal(again.values, full.values)


def test_a_cache_with_columns_this_version_does_not_know_is_rebuilt(cache):
    from svetlana.core.objects.measurement_cache import _save_cache
    from svetlana.core.objects.measurements import Measurements

    c, image, labels = cache
    m = c.measure(image, labels, columns=["area"])
    odd = Measurements(m.ids, ("area", "retired_column"), ("px^2", ""),
                       np.zeros((len(m.ids), 2), np.float32))  # fmt: skip
    _save_cache(c.bundle, c.path, odd, c.fingerprint)
    assert c.cached() is None
    rebuilt = c.measure(image, labels, columns=["area"])
    assert "retired_column" not in rebuilt.names
    assert np.array_equal(rebuilt.column("area"), m.column("area"))


def test_every_family_is_registered_once_in_table_order():
    names = [c.name for c in layout(2, ["ch0_"], False)]
    assert len(names) == len(set(names))
    assert list(FAMILIES)[:6] == ["shape", "intensity", "ring", "shells", "filterbank", "context"]


def test_a_registered_family_is_one_line_and_gets_its_channels():
    from svetlana.core.objects import measure_registry as reg
    from svetlana.core.objects.measurements import column_names

    def columns(nd, prefixes, unit):
        return [(p + "toy_max", "intensity") for p in prefixes]

    def compute(x):  # the brightest pixel of each object, from the channel it is given
        labels, out = np.asarray(x.labels), {}
        for p in x.prefixes:
            ch = np.asarray(x.channels[x.channel_prefixes.index(p)][...])
            out[p + "toy_max"] = np.array([ch[labels == i].max() for i in x.present])
        return out

    reg.register_family(reg.Family("toy", columns, compute=compute))
    try:
        image, labels, _ = _scene("marker_uneven")
        assert column_names(2, 1, neighbours=False)[0][-1] == "ch0_toy_max"
        m = measure_objects(image, labels, columns=["ch0_toy_max"])
        assert m.names == ("ch0_toy_max",)
        expected = [image[0][labels == i].max() for i in m.ids]
        np.testing.assert_allclose(m.column("ch0_toy_max"), expected)
    finally:
        reg.FAMILIES.pop("toy")

"""Object measurements: values on known shapes, bad input, the bundle cache."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.objects.measurement_cache import project_measurements
from svetlana.core.objects.measurements import Measurements, column_names, measure_objects


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_disk_area_perimeter_diameter_and_shape():
    labels = np.zeros((80, 80), np.int32)
    labels[_disk(labels.shape, (40, 38), 20)] = 3
    image = np.full((1, 80, 80), 100, np.float32)
    m = measure_objects(image, labels)
    assert m.ids.tolist() == [3]
    area = float(m.column("area")[0])
    assert area == (labels == 3).sum()
    assert area == pytest.approx(np.pi * 20**2, rel=0.02)
    assert m.column("perimeter")[0] == pytest.approx(2 * np.pi * 20, rel=0.04)
    assert m.column("equivalent_diameter")[0] == pytest.approx(40, rel=0.02)
    assert m.column("major_axis_length")[0] == pytest.approx(40, rel=0.03)
    assert m.column("elongation")[0] == pytest.approx(1.0, abs=0.02)
    assert m.column("solidity")[0] > 0.93
    assert m.column("circularity")[0] > 0.9
    assert m.column("extent")[0] == pytest.approx(area / 41**2)  # the bounding box is 41 x 41
    assert m.column("euler_number")[0] == 1


def test_ellipse_elongation_holes_and_physical_units():
    labels = np.zeros((60, 100), np.int32)
    yy, xx = np.mgrid[:60, :100]
    labels[((yy - 30) / 10.0) ** 2 + ((xx - 50) / 30.0) ** 2 <= 1] = 1
    ring = _disk((60, 100), (30, 12), 8) & ~_disk((60, 100), (30, 12), 3)
    labels[ring] = 2
    image = np.ones((1, 60, 100), np.float32)
    m = measure_objects(image, labels, spacing=(0.5, 0.5))
    assert m.units[m.names.index("area")] == "um^2"
    el = m.column("elongation")
    assert el[0] == pytest.approx(3.0, rel=0.05)
    assert m.column("major_axis_length")[0] == pytest.approx(30.0, rel=0.05)  # 60 px * 0.5 um
    assert m.column("area")[0] == pytest.approx((labels == 1).sum() * 0.25)
    assert m.column("euler_number").tolist() == [1, 0]  # the ring has one hole
    assert m.column("solidity")[1] < 0.9


def test_sphere_volume_and_surface_with_anisotropic_spacing():
    spacing = (2.0, 0.5, 0.5)
    zz, yy, xx = np.mgrid[:24, :80, :80]
    r = 8.0  # physical units
    inside = ((zz - 12) * 2.0) ** 2 + ((yy - 40) * 0.5) ** 2 + ((xx - 40) * 0.5) ** 2 <= r * r
    labels = inside.astype(np.uint16) * 4
    image = np.random.default_rng(0).normal(10, 1, (2, *labels.shape)).astype(np.float32)
    m = measure_objects(image, labels, spacing=spacing)
    assert m.column("volume")[0] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.03)
    assert m.column("equivalent_diameter")[0] == pytest.approx(2 * r, rel=0.02)
    assert m.column("surface_area")[0] == pytest.approx(4 * np.pi * r**2, rel=0.12)
    assert m.column("elongation")[0] == pytest.approx(1.0, abs=0.1)
    assert m.column("solidity")[0] > 0.75  # the hull of thick (2 um) voxel boxes
    assert m.column("euler_number")[0] == 1
    assert "ch1_mean" in m.names and m.column("ch1_mean")[0] == pytest.approx(10, abs=0.2)


def test_centred_spot_and_rim_ring_are_told_apart_by_the_shells():
    labels = np.zeros((40, 80), np.int32)
    labels[_disk(labels.shape, (20, 20), 12)] = 1
    labels[_disk(labels.shape, (20, 60), 12)] = 2
    image = np.full((1, 40, 80), 100, np.float32)
    image[0][_disk(labels.shape, (20, 20), 3)] = 300  # a spot at the centre
    rim = _disk(labels.shape, (20, 60), 12) & ~_disk(labels.shape, (20, 60), 9)
    image[0][rim] = 300  # the same brightness at the rim
    m = measure_objects(image, labels)
    first, last = m.column("ch0_shell1_profile"), m.column(f"ch0_shell{4}_profile")
    assert first[0] > 1.0 and last[0] < 0  # bright centre
    assert first[1] < 0 and last[1] > 0.5  # bright rim
    assert m.column("ch0_shell1_mean")[0] > 250 and m.column("ch0_shell1_mean")[1] < 120


def test_intensity_ring_and_normalised_values():
    rng = np.random.default_rng(1)
    labels = np.zeros((64, 64), np.int32)
    labels[_disk(labels.shape, (32, 32), 10)] = 7
    image = rng.normal(200, 10, (1, 64, 64)).astype(np.float32)
    image[0][labels == 7] = rng.normal(1000, 50, (labels == 7).sum())
    m = measure_objects(image, labels)
    v = image[0][labels == 7]
    assert m.column("ch0_mean")[0] == pytest.approx(v.mean(), rel=1e-5)
    assert m.column("ch0_std")[0] == pytest.approx(v.std(), rel=1e-4)
    assert m.column("ch0_min")[0] == v.min() and m.column("ch0_max")[0] == v.max()
    assert m.column("ch0_median")[0] == pytest.approx(np.median(v), abs=10)
    assert m.column("ch0_ring_mean")[0] == pytest.approx(200, abs=3)
    assert m.column("ch0_ring_ratio")[0] == pytest.approx(v.mean() / 200, rel=0.02)
    # Gain and offset change the raw values, not the normalised ones.
    m2 = measure_objects(image * 3 + 500, labels)
    assert m2.column("ch0_mean")[0] == pytest.approx(3 * v.mean() + 500, rel=1e-5)
    for name in ("ch0_norm_mean", "ch0_ring_contrast", "ch0_gauss_s2_std", "ch0_shell2_profile"):
        assert m2.column(name)[0] == pytest.approx(m.column(name)[0], rel=1e-3, abs=1e-4)


def test_quantiles_of_a_large_object_count_every_pixel():
    """Bin counts above 65,535 pixels (a large object of three intensities) stay exact."""
    labels = np.zeros((420, 420), np.uint16)
    labels[10:410, 10:385] = 1
    labels[2:5, 2:5] = 2
    image = np.full(labels.shape, 50.0, np.float32)
    image[10:410, 10:160] = 100.0  # 60,000 pixels
    image[10:410, 160:335] = 200.0  # 70,000 pixels: the median is here
    image[10:410, 335:385] = 300.0  # 20,000 pixels
    image[2:5, 2:5] = 400.0
    m = measure_objects(image, labels)
    row = m.values[0]
    assert row[m.names.index("ch0_median")] == pytest.approx(200.0, abs=2.0)
    assert row[m.names.index("ch0_q95")] == pytest.approx(300.0, abs=2.0)


def test_texture_tells_stripes_from_flat():
    labels = np.zeros((40, 80), np.int32)
    labels[_disk(labels.shape, (20, 20), 14)] = 1
    labels[_disk(labels.shape, (20, 60), 14)] = 2
    xx = np.arange(80)[None, :]
    image = np.full((1, 40, 80), 100, np.float32)
    image[0] += np.where(xx < 40, 50 * np.sin(2 * np.pi * xx / 4), 0)
    m = measure_objects(image, labels)
    assert m.column("ch0_gradient_s1_mean")[0] > 5 * m.column("ch0_gradient_s1_mean")[1]
    assert m.column("ch0_hessian1_s1_std")[0] > 5 * m.column("ch0_hessian1_s1_std")[1]


def test_bad_pixels_tiny_and_border_objects_give_finite_values():
    labels = np.zeros((30, 30), np.int32)
    labels[0, 0] = 1  # one pixel in a corner
    labels[10:20, 25:30] = 2  # touches the right border
    labels[15, 15] = 3
    image = np.zeros((3, 30, 30), np.float32)
    image[0] = np.random.default_rng(0).normal(0, 1, (30, 30))
    image[0, 10:20, 25:30] = np.nan
    image[0, 0, 0] = np.inf
    image[1] = 5.0  # constant channel
    image[2, 15, 15] = -np.inf
    m = measure_objects(image, labels)
    assert m.values.dtype == np.float32 and np.isfinite(m.values).all()
    assert m.column("area").tolist() == [1, 50, 1]
    assert m.column("ch1_std").tolist() == [0, 0, 0]
    assert m.column("ch1_skewness").tolist() == [0, 0, 0]
    assert m.column("ch1_mean").tolist() == [5, 5, 5]
    assert m.column("euler_number").tolist() == [1, 1, 1]
    assert m.column("solidity").tolist() == [1, 1, 1]


def test_empty_mask_subset_and_errors():
    image = np.zeros((1, 16, 16), np.float32)
    empty = measure_objects(image, np.zeros((16, 16), np.int32))
    assert isinstance(empty, Measurements) and empty.values.shape == (0, len(empty.names))
    labels = np.zeros((16, 16), np.int32)
    labels[2:5, 2:5] = 4
    labels[8:12, 8:12] = 9
    sub = measure_objects(image, labels, ids=[9])
    full = measure_objects(image, labels)
    assert sub.ids.tolist() == [9]
    np.testing.assert_array_equal(sub.values[0], full.values[full.rows([9])[0]])
    with pytest.raises(InputError):
        measure_objects(image, labels, ids=[5])
    with pytest.raises(InputError):
        measure_objects(image[:, :8], labels)
    with pytest.raises(InputError):
        measure_objects(image, labels.astype(np.float32))
    with pytest.raises(InputError):
        measure_objects(image, labels, spacing=(1.0, 0.0))


def test_columns_are_stable_and_documented_units():
    names, units = column_names(2, 2)
    assert len(names) == len(set(names)) == len(units)
    assert names[:2] == ("area", "equivalent_diameter")
    names3, _ = column_names(3, 1, physical=True)
    assert "volume" in names3 and "surface_area" in names3


@pytest.fixture
def project(tmp_path):
    from svetlana.core.project.bundle import Project
    from tests.conftest import blobs, write_pair

    image, labels = blobs()
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    p = Project.create(tmp_path / "p.svetlana", ["a", "b"])
    p.add_image(ip, mp)
    yield p
    p.close()


def test_cache_is_reused_and_rebuilt_when_damaged(project, monkeypatch):
    import svetlana.core.objects.measurement_cache as mod

    first = project_measurements(project, "cells")
    cache = project.path / "measurements" / "cells.npz"
    assert cache.is_file()
    calls = []
    real = mod.measure_objects
    monkeypatch.setattr(mod, "measure_objects", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = project_measurements(project, "cells")
    assert calls == [] and np.array_equal(again.values, first.values)
    cache.write_bytes(b"not a zip")
    rebuilt = project_measurements(project, "cells")
    assert calls == [1] and np.array_equal(rebuilt.values, first.values)
    monkeypatch.setattr(mod, "VERSION", mod.VERSION + 1)  # a new feature set
    project_measurements(project, "cells")
    assert calls == [1, 1]


@pytest.mark.parametrize("scene", ["texture2d", "texture3d_aniso", "marker_uneven"])
def test_measuring_on_two_threads_gives_the_one_thread_values(scene, monkeypatch):
    """Bands measured on two threads (their statistics merged) equal one thread's values."""
    from svetlana.core.objects import measurements as mod
    from svetlana.core.synthetic.hard import SCENES

    s = SCENES[scene](1).images[0]
    image = np.asarray(s.image, np.float32)
    monkeypatch.setattr(mod, "_BAND_PIXELS", 1 << 14)  # many bands, so both threads get some
    monkeypatch.setenv(mod.THREADS_ENV, "1")
    one = measure_objects(image, s.labels, spacing=s.spacing)
    monkeypatch.setenv(mod.THREADS_ENV, "2")
    assert mod.band_workers(100, len(one.ids)) == 2
    two = measure_objects(image, s.labels, spacing=s.spacing)
    assert one.names == two.names and np.array_equal(one.ids, two.ids)
    np.testing.assert_allclose(two.values, one.values, rtol=2e-5, atol=1e-6)


def test_two_threads_give_the_same_values_at_every_run(monkeypatch):
    """The bands are split between the threads by where the objects are (here all in the top
    quarter), the same way every time: the merged sums, hence the values, are identical."""
    from svetlana.core.objects import measurements as mod

    rng = np.random.default_rng(0)
    labels = np.zeros((256, 96), np.int32)
    yy, xx = np.mgrid[:256, :96]
    for k in range(1, 25):
        cy, cx = rng.uniform(6, 58), rng.uniform(6, 90)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(9, 25)] = k
    image = rng.gamma(2.0, 10.0, (1, 256, 96)).astype(np.float32) + 20.0 * (labels > 0)
    monkeypatch.setattr(mod, "_BAND_PIXELS", 1 << 10)
    monkeypatch.setenv(mod.THREADS_ENV, "2")
    first = measure_objects(image, labels)
    parts = mod._split_bands([(a, a + 10) for a in range(0, 250, 10)], (labels > 0).sum(1), 2)
    assert all(parts) and len(parts[0]) < len(parts[1])  # the dense top is one thread's share
    for _ in range(2):
        again = measure_objects(image, labels)
        np.testing.assert_array_equal(again.values, first.values)

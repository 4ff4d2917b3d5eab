"""Object outlines for QuPath: holes, several parts, exact areas (a shapely round trip)."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.usecases.export_geojson import _geometry, outline_polygons

shapely_geometry = pytest.importorskip("shapely.geometry")


def _shape(mask: np.ndarray, origin=(0, 0)):
    polys = outline_polygons(mask, origin)
    return shapely_geometry.shape(_geometry(polys)), polys


def test_ring_keeps_its_hole_and_area_is_within_a_pixel_per_boundary_pixel():
    yy, xx = np.mgrid[:40, :40]
    d2 = (yy - 20) ** 2 + (xx - 20) ** 2
    mask = (d2 <= 15**2) & (d2 > 6**2)
    geom, polys = _shape(mask)
    assert len(polys) == 1 and len(polys[0]) == 2  # exterior + one hole
    assert geom.is_valid and geom.geom_type == "Polygon"
    assert geom.area == mask.sum()  # along the pixels' edges: exact
    assert not geom.contains(shapely_geometry.Point(20.5, 20.5))  # the hole's centre
    assert geom.contains(shapely_geometry.Point(20.5 + 10, 20.5))


def test_parts_pixel_coordinates_and_tiny_objects():
    mask = np.zeros((20, 30), bool)
    mask[2:6, 3:9] = True  # 4 x 6 rectangle
    mask[12:15, 20:28] = True  # a second part
    geom, polys = _shape(mask, origin=(100, 200))
    assert geom.geom_type == "MultiPolygon" and len(polys) == 2 and geom.is_valid
    assert geom.area == mask.sum()
    # Pixel (row, col) covers [col, col+1) x [row, row+1).
    assert geom.bounds == (200 + 3, 100 + 2, 200 + 28, 100 + 15)
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    geom1, _ = _shape(one)
    assert geom1.is_valid and geom1.area == 1 and geom1.bounds == (1, 1, 2, 2)


def test_hole_with_an_object_inside_is_a_separate_part():
    mask = np.zeros((30, 30), bool)
    mask[2:28, 2:28] = True
    mask[8:22, 8:22] = False  # a hole
    mask[12:18, 12:18] = True  # an island of the same object inside the hole
    geom, polys = _shape(mask)
    assert geom.is_valid and len(polys) == 2
    assert sorted(len(p) for p in polys) == [1, 2]
    assert geom.area == mask.sum()


def test_every_object_of_a_label_image_once_with_its_exact_area():
    from skimage.measure import label

    from svetlana.core.usecases.export_geojson import pixel_outlines

    rng = np.random.default_rng(0)
    labels = label(rng.random((60, 60)) < 0.45, connectivity=1) * 3  # sparse ids, touching
    labels[labels == 6] = 0
    ids = np.unique(labels)[1:]
    outlines = pixel_outlines(labels, ids)
    assert sorted(outlines) == ids.tolist()
    for obj, polys in outlines.items():
        geom = shapely_geometry.shape(_geometry(polys))
        assert geom.area == (labels == obj).sum()
        assert geom.buffer(-0.01).within(shapely_geometry.box(0, 0, 60, 60))


def test_3d_images_are_refused_with_a_clear_message(tmp_path):
    from svetlana.core.project.bundle import Project
    from svetlana.core.usecases.export_geojson import export_objects
    from tests.conftest import write_pair

    labels = np.zeros((4, 16, 16), np.int32)
    labels[1:3, 4:8, 4:8] = 5
    ip, mp = write_pair(tmp_path / "in", "vol", np.ones((4, 16, 16), np.float32), labels)
    with Project.create(tmp_path / "p.svetlana", ["a"]) as p:
        p.add_image(ip, mp)
        with pytest.raises(InputError, match="2D and 'vol' is 3D"):
            export_objects(p, tmp_path / "out")
    assert not (tmp_path / "out").exists()

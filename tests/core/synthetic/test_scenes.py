"""The hard benchmark scenes: reproducible, truthful ground truth, and hard in the stated way."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.synthetic.hard import (
    SCENES,
    SceneSet,
    marker_uneven,
    rare_class,
    size_gain,
    texture2d,
)


@pytest.fixture(scope="module", params=sorted(SCENES))
def small_scene(request) -> SceneSet:
    return SCENES[request.param](seed=0, scale=0.2)


def test_every_object_of_every_image_has_a_true_class(small_scene: SceneSet) -> None:
    for im in small_scene.images:
        ids = set(np.unique(im.labels).tolist()) - {0}
        assert ids == set(im.classes)
        assert set(im.classes.values()) <= set(range(len(small_scene.class_names)))
        assert im.image.dtype == np.uint16 and im.image.shape[1:] == im.labels.shape
    assert all(0 <= i < len(small_scene.images) for i in small_scene.label_images)


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a, b, c = texture2d(3, scale=0.1), texture2d(3, scale=0.1), texture2d(4, scale=0.1)
    assert np.array_equal(a.images[0].image, b.images[0].image)
    assert a.images[0].classes == b.images[0].classes
    assert not np.array_equal(a.images[0].image, c.images[0].image)


def _object_means(im, channel: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(sorted(im.classes))
    sums = np.bincount(im.labels.ravel(), im.image[channel].ravel().astype(float))
    counts = np.bincount(im.labels.ravel())
    return sums[ids] / counts[ids], np.array([im.classes[i] for i in ids])


def test_texture_classes_cannot_be_told_apart_by_mean_brightness() -> None:
    means, cls = _object_means(texture2d(0).images[0])
    # Per-object brightness spread dwarfs any difference of the class means.
    gap = abs(means[cls == 0].mean() - means[cls == 1].mean())
    assert gap < 0.25 * means.std()


def test_size_scene_images_differ_in_gain_and_offset_and_labels_come_from_two() -> None:
    scene = size_gain(0, scale=0.5)
    backgrounds = [float(np.median(im.image[0][im.labels == 0])) for im in scene.images]
    assert len(scene.images) == 4 and scene.label_images == (0, 1)
    assert backgrounds == sorted(backgrounds) and backgrounds[-1] > 5 * backgrounds[0]


def test_marker_alone_overlaps_between_classes_under_uneven_light() -> None:
    im = marker_uneven(0).images[0]
    marker, cls = _object_means(im, channel=1)
    # Some negatives are brighter in the marker channel than some positives.
    assert marker[cls == 0].max() > marker[cls == 1].min()


def test_rare_class_is_about_five_percent() -> None:
    cls = np.array(list(rare_class(0).images[0].classes.values()))
    assert 0.03 < cls.mean() < 0.07


def test_anisotropic_scene_records_its_spacing() -> None:
    im = SCENES["texture3d_aniso"](0, scale=0.2).images[0]
    assert im.spacing == (3.0, 1.0, 1.0) and im.labels.ndim == 3

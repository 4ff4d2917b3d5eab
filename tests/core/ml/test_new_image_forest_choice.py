"""The forest for new images (per-image scaled measurements) is kept where the images differ by
a gain and share their mix of classes, and left out where scaling would remove the class itself:
images that each hold mostly one class (a screen's movies), judged by a cross-validation
grouped by image from 3 images on, by the labels' class mixes with 2."""

from __future__ import annotations

import numpy as np

from svetlana.core.ml.forest import fit_forest
from svetlana.core.objects.image_stats import reference_stats

CLASSES = ("a", "b")
NAMES = ("m0", "m1", "m2", "m3")


def _images(shares, gains, n=60, seed=0):
    """Per image: ``n`` objects, a share of class b, the class in column 0 times the gain."""
    rng = np.random.default_rng(seed)
    xs, ys, ims = [], [], []
    for k, (share, gain) in enumerate(zip(shares, gains, strict=True)):
        y = (rng.random(n) < share).astype(np.int64)
        x = rng.normal(size=(n, len(NAMES)))
        x[:, 0] = gain * (10 + 3 * y + rng.normal(0, 0.5, n))
        xs.append(x.astype(np.float32))
        ys.append(y)
        ims += [f"im{k}"] * n
    return np.concatenate(xs), np.concatenate(ys), np.array(ims)


def _fit(x, y, images):
    from svetlana.core.ml.forest import add_new_image_forest

    stats = {im: reference_stats(x[images == im]) for im in np.unique(images)}
    model = fit_forest(x, y, CLASSES, NAMES)
    return add_new_image_forest(model, x, y, images, stats, reference_objects=500)


def test_images_at_different_gains_get_the_scaled_forest_and_it_travels():
    x, y, images = _images([0.5, 0.4, 0.5], [1.0, 1.5, 2.2])
    model = _fit(x, y, images)
    assert model.new_images is not None and "scaled per image" in model.note
    new_x, new_y, _ = _images([0.5], [3.0], n=200, seed=5)  # a new image, brighter still
    ids = np.arange(1, 201)
    scaled = model.predict_image(new_x, "new", ids).argmax(1)
    raw = model.predict_proba(new_x).argmax(1)
    assert np.mean(scaled == new_y) > 0.9 > np.mean(raw == new_y)
    # an image without objects: no statistics to take, and nothing to predict
    assert model.predict_image(new_x[:0], "empty", ids[:0]).shape == (0, 2)
    # an image of the labels keeps the raw forest
    np.testing.assert_array_equal(model.predict_image(x[:60], "im0", np.arange(60)),
                                  model.predict_proba(x[:60]))  # fmt: skip


def test_images_of_one_class_each_keep_the_raw_forest_by_cross_validation():
    x, y, images = _images([0.05, 0.95, 0.05, 0.95], [1.0, 1.0, 1.0, 1.0])
    model = _fit(x, y, images)
    assert model.new_images is None and "images left out: raw" in model.note


def test_two_images_of_different_class_mixes_keep_the_raw_forest():
    x, y, images = _images([0.05, 0.95], [1.0, 1.0])
    model = _fit(x, y, images)
    assert model.new_images is None and "too different to scale per image" in model.note

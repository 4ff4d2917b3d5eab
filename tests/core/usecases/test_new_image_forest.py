"""A forest trained on labels from several images carries a second forest, on measurements
scaled per image, for images that hold no labels: each image's reference statistics come from
the same objects at training and at prediction, the saved model predicts the same once the
bundle is opened again, and a damaged card field is refused with the card named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svetlana.core.errors import ModelError
from svetlana.core.ml.forest import select_features
from svetlana.core.objects import image_stats
from svetlana.core.objects.measurements import measure_objects
from svetlana.core.project.bundle import Project
from svetlana.core.project.images import LoadedImage
from svetlana.core.usecases.predict import load_model, predict_loaded, predict_project
from svetlana.core.usecases.train import (
    measure_training_set_with_stats,
    prepare_training,
    run_training,
)
from tests.conftest import blobs, ok, write_pair


def _bundle(tmp_path, gains=(1.0, 1.6, 2.5), labelled=("a", "b"), n=16):
    """Images a, b, c (``n`` discs each, bright even / dim odd, each image at its own gain);
    half the objects of the ``labelled`` images labelled (2 of every 4), c never."""
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "bright,dim")
    rows = ["image,object,class"]
    for k, (name, gain) in enumerate(zip("abc", gains, strict=False)):
        image, labels = blobs(n=n, seed=k)
        image = (image.astype(np.float32) * gain).astype(np.uint16)
        ip, mp = write_pair(tmp_path / "in" / name, "img", image, labels)
        ok("add", bundle, ip, mp, "--name", name)
        if name in labelled:
            rows += [
                f"{name},{10 + 7 * j},{'bright' if j % 2 == 0 else 'dim'}"
                for j in range(n)
                if j % 4 < 2
            ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "labels.csv")
    return bundle


def test_reference_statistics_are_the_same_at_training_and_prediction(tmp_path, monkeypatch):
    # A reference sample smaller than the image: some labelled objects are outside it and some
    # of its objects are unlabelled (measured at training only for the statistics).
    monkeypatch.setattr(image_stats, "REFERENCE_OBJECTS", 7)
    bundle = _bundle(tmp_path, n=16)
    with Project.open(bundle, readonly=True) as project:
        job = prepare_training(project, kind="forest")
        _, _, _, stats = measure_training_set_with_stats(job)
        assert sorted(stats) == ["a", "b"]
        for name in ("a", "b"):
            loaded = project.load(name)
            ids = loaded.table.ids
            ref = image_stats.reference_ids(project.sampling_seed, name, ids, 7)
            labelled = {o for im, o in job.data.keys if im == name}
            assert len(ref) == 7 and set(ref) - labelled and labelled - set(ref)
            # prediction measures every object of the image, then takes the same sample
            m = measure_objects(loaded.image, loaded.labels, spacing=loaded.spacing)
            centre, spread = image_stats.reference_stats(m.values[np.isin(m.ids, ref)])
            np.testing.assert_allclose(stats[name][0], centre, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(stats[name][1], spread, rtol=1e-5, atol=1e-4)


def test_one_labelled_image_gives_no_second_forest(tmp_path):
    bundle = _bundle(tmp_path, labelled=("a",))
    ok("train", bundle, "--arch", "forest")
    with Project.open(bundle, readonly=True) as project:
        model, card = load_model(project)
    assert "new_images" not in card and model.new_images is None


def test_saved_model_predicts_a_new_image_the_same_after_reopening(tmp_path):
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    with Project.open(bundle, readonly=True) as project:
        model, card = load_model(project)
        assert card["new_images"]["reference_seed"] == project.sampling_seed
        assert "new images: measurements scaled per image" in card["measurements_chosen"]
        assert model.uses_scaled("c") and not model.uses_scaled("a")
        first = predict_project(project, images=["a", "c"], out_dir=tmp_path / "out1")
    with Project.open(bundle, readonly=True) as project:
        again = predict_project(project, images=["a", "c"], out_dir=tmp_path / "out2")
    for name in ("a", "c"):
        p1, p2 = first.predictions[name], again.predictions[name]
        np.testing.assert_array_equal(p1.ids, p2.ids)
        np.testing.assert_allclose(p1.probs, p2.probs, atol=1e-6)
    # the same as the forest as fitted, before it was saved: c through its scaled forest
    with Project.open(bundle, readonly=True) as project:
        fitted = run_training(prepare_training(project, kind="forest")).model
        loaded = project.load("c")
        m = measure_objects(loaded.image, loaded.labels, spacing=loaded.spacing)
    x = select_features(m.names, m.values, fitted.feature_names)
    np.testing.assert_array_equal(m.ids, first.predictions["c"].ids)
    np.testing.assert_allclose(
        fitted.predict_image(x, "c", m.ids), first.predictions["c"].probs, atol=1e-6
    )
    assert not np.allclose(fitted.predict_proba(x), first.predictions["c"].probs, atol=1e-3)
    # the never-labelled image at 2.5x the gain: bright (even) and dim (odd) told apart
    c = first.predictions["c"]
    truth = np.array(["bright" if (o - 10) // 7 % 2 == 0 else "dim" for o in c.ids])
    names = np.array(c.class_names)[c.probs.argmax(1)]
    assert np.mean(names == truth) >= 0.9


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c["new_images"].update(reference_seed="seven"),
        lambda c: c["new_images"].update(reference_seed=-1),
        lambda c: c["new_images"].update(reference_objects=0),
        lambda c: c["new_images"].update(reference_objects=True),
        lambda c: c.update(new_images=[1, 2]),
        lambda c: c.pop("images"),
        lambda c: c.update(images=["a", 3]),
        lambda c: c["new_images"].update(image_identities=["not a sha256"]),
        lambda c: c["new_images"].update(image_identities=["0" * 64] * 3),  # 3 for 2 images
        lambda c: c["new_images"].update(image_identities="0" * 64),
    ],
)
def test_a_damaged_new_images_card_field_is_refused_naming_the_card(tmp_path, damage):
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    path = bundle / "models" / "model-1" / "card.json"
    card = json.loads(path.read_text())
    damage(card)
    path.write_text(json.dumps(card))
    with Project.open(bundle, readonly=True) as project, pytest.raises(ModelError) as err:
        load_model(project)
    assert "card" in str(err.value) and "card.json" in str(err.value.path)


def test_a_card_naming_a_second_forest_the_file_lacks_is_refused(tmp_path):
    bundle = _bundle(tmp_path, labelled=("a",))
    ok("train", bundle, "--arch", "forest")  # one image: no second forest in forest.npz
    path = bundle / "models" / "model-1" / "card.json"
    card = json.loads(path.read_text())
    card["new_images"] = {"reference_seed": 1, "reference_objects": 500}
    path.write_text(json.dumps(card))
    with Project.open(bundle, readonly=True) as project, pytest.raises(ModelError) as err:
        load_model(project)
    assert "new_images_" in str(err.value)


def test_a_new_image_named_like_a_labelled_one_goes_to_the_forest_for_new_images(tmp_path):
    # predict --folder and other projects name images by their files: "a" there may be another
    # image; the labels' images are known by their content, whatever they are called
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    with Project.open(bundle, readonly=True) as project:
        model, card = load_model(project)
        assert len(card["new_images"]["image_identities"]) == 2
        a, c = project.load("a"), project.load("c")
        c_named_a = LoadedImage("a", c.image, c.labels, c.spacing)
        a_renamed = LoadedImage("renamed", a.image, a.labels, a.spacing)
        by = {
            "a": predict_loaded(model, card, a),
            "c": predict_loaded(model, card, c),
            "c named a": predict_loaded(model, card, c_named_a),
            "a renamed": predict_loaded(model, card, a_renamed),
        }
    np.testing.assert_allclose(by["c named a"].probs, by["c"].probs, atol=1e-6)
    np.testing.assert_allclose(by["a renamed"].probs, by["a"].probs, atol=1e-6)
    # and the two forests do differ on c, so the routing is what the comparison sees
    x = select_features(*_measured(c), model.feature_names)
    assert not np.allclose(model.predict_proba(x), by["c"].probs, atol=1e-3)


def test_a_card_without_image_identities_routes_by_name(tmp_path):
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    path = bundle / "models" / "model-1" / "card.json"
    card = json.loads(path.read_text())
    del card["new_images"]["image_identities"]
    path.write_text(json.dumps(card))
    with Project.open(bundle, readonly=True) as project:
        model, _ = load_model(project)
    assert model.seen_identities == ()
    assert not model.uses_scaled("a", "0" * 64) and model.uses_scaled("c", "0" * 64)


def _measured(loaded):
    m = measure_objects(loaded.image, loaded.labels, spacing=loaded.spacing)
    return m.names, m.values


def test_a_damaged_forest_for_new_images_is_refused_naming_the_forest_file(tmp_path):
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    path = bundle / "models" / "model-1" / "forest.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    split = arrays["new_images_left"] >= 0
    arrays["new_images_feature"] = np.where(split, 10**6, arrays["new_images_feature"])
    np.savez_compressed(path, **arrays)
    with Project.open(bundle, readonly=True) as project, pytest.raises(ModelError) as err:
        load_model(project)
    assert "forest for new images" in str(err.value) and err.value.path.name == "forest.npz"


def test_a_model_of_the_version_before_opens_and_predicts_every_image_with_its_one_forest(tmp_path):
    # what the version before wrote for labels from 2 images: no new_images in the card, no
    # new_images_* arrays in forest.npz
    bundle = _bundle(tmp_path)
    ok("train", bundle, "--arch", "forest")
    folder = bundle / "models" / "model-1"
    card = json.loads((folder / "card.json").read_text())
    del card["new_images"]
    (folder / "card.json").write_text(json.dumps(card))
    with np.load(folder / "forest.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("new_images_")}
    np.savez_compressed(folder / "forest.npz", **arrays)
    with Project.open(bundle, readonly=True) as project:
        model, _ = load_model(project)
        assert model.new_images is None and not model.uses_scaled("c")
        result = predict_project(project, images=["c"], out_dir=tmp_path / "out")
        x = select_features(*_measured(project.load("c")), model.feature_names)
    np.testing.assert_allclose(result.predictions["c"].probs, model.predict_proba(x), atol=1e-6)


def test_the_linear_part_blends_on_the_labelled_image_only(tmp_path, monkeypatch):
    """Labels on one image (so no forest for new images): predicting that image uses the
    forest with its linear part, predicting an image without labels the forest alone (raw
    values do not travel between images), also after the bundle is opened again."""
    from dataclasses import replace

    from svetlana.core.ml import linear

    chosen = linear.choose_weight
    monkeypatch.setattr(linear, "choose_weight", lambda *a: (0.5, chosen(*a)[1]))  # kept
    bundle = _bundle(tmp_path, labelled=("a",), n=64)  # 32 labels on a
    ok("train", bundle, "--arch", "forest")
    with Project.open(bundle, readonly=True) as project:
        model, card = load_model(project)
        assert model.linear is not None and model.new_images is None
        ident = {n: image_stats.image_identity(project.load(n).table) for n in "ac"}
        assert card["linear"]["image_identities"] == [ident["a"]]
        out = predict_project(project, images=["a", "c"], out_dir=tmp_path / "out")
        for name, blended in (("a", True), ("c", False)):
            loaded = project.load(name)
            m = measure_objects(loaded.image, loaded.labels, spacing=loaded.spacing)
            x = select_features(m.names, m.values, model.feature_names)
            alone = replace(model, linear=None, linear_weight=0.0).predict_proba(x)
            want = model.predict_proba(x) if blended else alone
            np.testing.assert_allclose(out.predictions[name].probs, want, atol=1e-6)
            assert np.allclose(out.predictions[name].probs, alone, atol=1e-4) != blended

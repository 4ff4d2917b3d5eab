"""Exports: filtered / per-class masks keep original ids and dtype; patches and ONNX round trip."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image

from svetlana.core.errors import InputError
from svetlana.core.ml.training import TrainingConfig
from svetlana.core.project.bundle import Project
from svetlana.core.usecases.export_masks import (
    export_filtered,
    keep_preview,
    project_predictions,
    write_filtered_masks,
)
from svetlana.core.usecases.export_model import export_model
from svetlana.core.usecases.export_patches import export_patches, load_patches
from svetlana.core.usecases.predict import predict_project
from svetlana.core.usecases.train import train_project, training_set
from tests.conftest import STARDIST, blobs, write_pair

FAST = TrainingConfig(epochs=3, val_fraction=0.0, seed=0)
IDS = [10 + 7 * k for k in range(12)]


def _label_bright_dim(project: Project, image: str, ids) -> None:
    changes = [(image, int(i), "bright" if k % 2 == 0 else "dim") for k, i in enumerate(ids)]
    project.annotations.apply_labels(changes, source="import")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> dict:
    """A 2D project with three images whose masks were a uint16 TIFF, a uint16 PNG and a
    binary uint8 TIFF; all objects of the first labelled; one model trained."""
    tmp = tmp_path_factory.mktemp("exports")
    image, labels = blobs(n=12)
    ip, mp = write_pair(tmp / "in", "cells", image, labels.astype(np.uint16))
    png_image, png_labels = blobs(n=9, seed=1)
    pip = tmp / "in" / "png.tif"
    tifffile.imwrite(pip, png_image)
    pmp = tmp / "in" / "png_cp_masks.png"
    Image.fromarray(png_labels.astype(np.uint16)).save(pmp)
    bin_image, bin_labels = blobs(n=9, seed=2)
    bip, bmp = write_pair(tmp / "in", "binary", bin_image, (bin_labels > 0).astype(np.uint8) * 255)
    gone_image, gone_labels = blobs(n=4, seed=3)
    gip, gmp = write_pair(tmp / "gone", "gone", gone_image, gone_labels.astype(np.uint8))
    project = Project.create(tmp / "p.svetlana", classes=["bright", "dim"])
    project.add_image(ip, mp)
    project.add_image(pip, pmp, name="png")
    project.add_image(bip, bmp)
    project.add_image(gip, gmp)
    shutil.rmtree(tmp / "gone")  # the user's file moved away: the stored dtype is used
    _label_bright_dim(project, "cells", IDS)
    project.save()
    trained = train_project(project, FAST)
    yield {"project": project, "tmp": tmp, "model": trained.id, "labels": labels}
    project.close()


def _assert_filtered(result: np.ndarray, labels: np.ndarray, kept_ids: np.ndarray) -> None:
    kept = np.isin(labels, kept_ids)
    assert np.array_equal(result[kept], labels[kept])  # original ids, every pixel
    assert (result[~kept] == 0).all()
    assert set(np.unique(result)) - {0} == {int(i) for i in kept_ids}


def test_keep_preview_partitions_the_objects_by_class_and_confidence(bundle):
    project = bundle["project"]
    _, preds = project_predictions(project, bundle["model"], ["cells"])
    pred = preds["cells"]
    kept, removed = keep_preview(pred, {"bright"})
    assert sorted([*kept, *removed]) == IDS
    names = np.array(pred.class_names)[pred.class_index - 1]
    assert {int(i) for i in kept} == {
        int(i) for i, n in zip(pred.ids, names, strict=True) if n == "bright"
    }
    everything, none = keep_preview(pred, {"bright", "dim"})
    assert len(everything) == 12 and len(none) == 0
    # A threshold only removes objects, and exactly the less confident ones.
    cut = float(np.median(pred.confidence))
    sure, _ = keep_preview(pred, {"bright", "dim"}, cut)
    assert {int(i) for i in sure} == {
        int(i) for i, c in zip(pred.ids, pred.confidence, strict=True) if c >= cut
    }
    with pytest.raises(InputError, match="bright, dim"):
        keep_preview(pred, {"round"})
    with pytest.raises(InputError, match="between 0 and 1"):
        keep_preview(pred, {"dim"}, 1.5)


def test_filtered_masks_keep_original_ids_and_the_users_format(bundle, tmp_path):
    project = bundle["project"]
    _, preds = project_predictions(project, bundle["model"])
    out = tmp_path / "out"
    summary = write_filtered_masks(project, preds, {"bright"}, 0.0, out, model_id=bundle["model"])
    # One folder, one summary for every image.
    rows = list(csv.DictReader((out / "filter_summary.csv").open()))
    assert [r["image"] for r in rows] == ["cells", "png", "binary", "gone"]
    files = {p.name for p in out.iterdir()}
    assert files == {
        "cells_filtered.tif",
        "png_filtered.png",
        "binary_filtered.tif",
        "gone_filtered.tif",
        "filter_summary.csv",
        "run.json",
    }
    for r, s in zip(rows, summary.images, strict=True):
        pred = preds[r["image"]]
        kept, removed = keep_preview(pred, {"bright"})
        assert int(r["kept"]) == s.kept == len(kept)
        assert int(r["removed"]) == s.removed == len(removed)
        assert int(r["n_bright"]) + int(r["n_dim"]) == int(r["objects"]) == len(pred.ids)
        stored = project.load(r["image"]).labels
        path = out / r["files"]
        result = np.asarray(Image.open(path)) if path.suffix == ".png" else tifffile.imread(path)
        _assert_filtered(result, stored, kept)
        assert result.shape == stored.shape
    # dtypes: uint16 TIFF and PNG as given; the binary uint8 mask stays uint8 with the component
    # ids of the bundle; a source file that is gone gives the stored (int32) dtype.
    assert tifffile.imread(out / "cells_filtered.tif").dtype == np.uint16
    with Image.open(out / "png_filtered.png") as im:
        assert im.mode.startswith("I;16")
    assert tifffile.imread(out / "binary_filtered.tif").dtype == np.uint8
    assert project.image("binary").was_binary
    assert tifffile.imread(out / "gone_filtered.tif").dtype == np.int32
    # The ids are the ones of the user's own file.
    original = tifffile.imread(bundle["tmp"] / "in" / "cells_masks.tif")
    kept, _ = keep_preview(preds["cells"], {"bright"})
    _assert_filtered(tifffile.imread(out / "cells_filtered.tif"), original, kept)


def test_per_class_masks_split_the_segmentation(bundle, tmp_path):
    project = bundle["project"]
    summary = export_filtered(
        project, [], tmp_path, model_id=bundle["model"], images=["cells"], per_class=True
    )
    assert summary.per_class == ("bright", "dim")
    labels = project.load("cells").labels
    bright = tifffile.imread(tmp_path / "cells_bright.tif")
    dim = tifffile.imread(tmp_path / "cells_dim.tif")
    assert bright.dtype == dim.dtype == np.uint16
    assert not ((bright > 0) & (dim > 0)).any()
    assert np.array_equal(bright + dim, labels)  # every object in exactly one class mask
    assert not (tmp_path / "cells_filtered.tif").exists()  # nothing to keep was asked


def test_a_confidence_threshold_removes_the_unsure_objects(bundle, tmp_path):
    project = bundle["project"]
    _, preds = project_predictions(project, bundle["model"], ["png"])  # no labels there
    conf = preds["png"].confidence
    cut = float(np.sort(conf)[len(conf) // 2])
    s = write_filtered_masks(project, preds, {"bright", "dim"}, cut, tmp_path)
    row = s.images[0]
    assert row.kept == int((conf >= cut).sum()) and row.low_confidence == row.removed > 0


def test_a_class_a_person_gave_is_never_dropped_for_the_models_confidence(bundle, tmp_path):
    project = bundle["project"]
    _, preds = project_predictions(project, bundle["model"], ["cells"])  # every object labelled
    s = write_filtered_masks(project, preds, {"bright", "dim"}, 1.0, tmp_path)
    assert s.images[0].kept == len(IDS) and s.images[0].removed == 0


def test_bad_requests_write_nothing(bundle, tmp_path):
    project = bundle["project"]
    out = tmp_path / "never"
    with pytest.raises(InputError, match="unknown class 'alive'.*bright, dim"):
        export_filtered(project, ["alive"], out)
    with pytest.raises(InputError, match="choose the classes to keep"):
        export_filtered(project, [], out)
    with pytest.raises(InputError, match="no image named"):
        export_filtered(project, ["dim"], out, images=["nope"])
    with pytest.raises(InputError, match="no model named"):
        export_filtered(project, ["dim"], out, model_id="nope")
    assert not out.exists()


def test_saved_predictions_are_used_when_complete(bundle, monkeypatch):
    project = bundle["project"]
    run = predict_project(project, bundle["model"])
    from svetlana.core.ml import models

    def no_model(*a, **k):
        raise AssertionError("the model should not be needed")

    monkeypatch.setattr(models, "load_checkpoint", no_model)
    _, preds = project_predictions(project, bundle["model"])
    for name, pred in preds.items():
        assert np.array_equal(pred.class_index, run.predictions[name].class_index)
        np.testing.assert_allclose(pred.probs, run.predictions[name].probs, atol=1e-5)


def test_exported_patches_reload_identical(bundle, tmp_path):
    project = bundle["project"]
    r = export_patches(project, tmp_path, 16, tiff=True)
    data = training_set(project, 16)
    back = load_patches(tmp_path / "patches.npz")
    assert back.patches.dtype == np.float32 and back.patches.shape == (12, 2, 16, 16)
    assert np.array_equal(back.patches, data.patches)
    assert np.array_equal(back.labels, data.labels)
    assert back.class_names == ("bright", "dim") and back.patch_size == 16 == r.patch_size
    assert [(str(i), int(o)) for i, o in zip(back.images, back.object_ids, strict=True)] == list(
        data.keys
    )
    for i, o, y in zip(back.images, back.object_ids, back.labels, strict=True):
        assert project.annotations.get(str(i), int(o)).class_name == back.class_names[y]
    rows = list(csv.DictReader((tmp_path / "patches.csv").open()))
    assert [(r["image"], int(r["object"]), r["class"]) for r in rows] == [
        (str(i), int(o), back.class_names[y])
        for i, o, y in zip(back.images, back.object_ids, back.labels, strict=True)
    ]
    assert {r["source"] for r in rows} == {"import"}
    first = tifffile.imread(tmp_path / rows[0]["class"] / f"cells_{rows[0]['object']}.tif")
    assert np.array_equal(first, back.patches[0])
    assert r.tiff_files == 12 and r.class_counts == {"bright": 6, "dim": 6}


def _onnx_logits(path, patches: np.ndarray) -> np.ndarray:
    """Run an exported model as a user would, with onnxruntime alone (no torch, no Svetlana)."""
    ort = pytest.importorskip("onnxruntime")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"patches": np.ascontiguousarray(patches, np.float32)})[0]


def _torch_logits(model, patches: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.eval()(torch.from_numpy(patches)).numpy()


def test_onnx_export_gives_the_torch_outputs_and_the_weights_fine_tune(bundle, tmp_path):
    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.models import load_checkpoint
    from svetlana.core.usecases.predict import load_model

    project = bundle["project"]
    model, card = load_model(project, bundle["model"])
    r = export_model(project, tmp_path, bundle["model"])
    assert {p.name for p in r.files} == {"model.onnx", "weights.pt", "card.json", "README.txt"}
    data = training_set(project, card["patch_size"])  # the real patches of the labelled objects
    for batch in (data.patches[:1], data.patches):  # the batch size is free in the file
        np.testing.assert_allclose(
            _onnx_logits(tmp_path / "model.onnx", batch), _torch_logits(model, batch), atol=1e-4
        )
    readme = (tmp_path / "README.txt").read_text()
    assert "onnxruntime" in readme and "99.8th percentiles" in readme
    # The folder is a model Svetlana loads as it is (weights only), with the card's classes.
    again, card2 = load_checkpoint(tmp_path)
    assert card2["classes"] == ["bright", "dim"] and card2["architecture"] == card["architecture"]
    assert card2["onnx"]["input"] == "patches"
    expected = predict_probabilities(model, data.patches)
    np.testing.assert_allclose(predict_probabilities(again, data.patches), expected, atol=1e-5)
    # ... and weights.pt a network to fine-tune (svetlana train --arch DIR/weights.pt).
    tuned = train_project(project, FAST, arch_file=tmp_path / "weights.pt", name="tuned")
    assert tuned.card["architecture"] == card["architecture"]
    _, preds = project_predictions(project, "tuned", ["cells"])
    assert preds["cells"].probs.shape == (12, 2)


def test_onnx_export_of_a_3d_model_gives_the_torch_outputs(tmp_path):
    from svetlana.core.synthetic.easy import sphere_scene
    from svetlana.core.usecases.predict import load_model

    scene = sphere_scene(n_objects=12, seed=0)
    ip, mp = tmp_path / "s.tif", tmp_path / "s_masks.tif"
    tifffile.imwrite(ip, scene.image[0])
    tifffile.imwrite(mp, scene.labels)
    with Project.create(tmp_path / "p.svetlana", list(scene.class_names)) as project:
        project.add_image(ip, mp, spacing=(2.0, 1.0, 1.0))
        project.annotations.apply_labels(
            [("s", i, scene.class_names[c]) for i, c in scene.classes.items()], source="import"
        )
        trained = train_project(project, TrainingConfig(epochs=2, val_fraction=0.0, seed=0))
        model, card = load_model(project, trained.id)
        export_model(project, tmp_path / "out", trained.id)
        data = training_set(project, card["patch_size"])
    assert data.patches.ndim == 5
    np.testing.assert_allclose(
        _onnx_logits(tmp_path / "out" / "model.onnx", data.patches),
        _torch_logits(model, data.patches),
        atol=1e-4,
    )


def test_stardist_3d_filtered_mask_keeps_the_input_ids(tmp_path):
    """Real 3D data: label by size, train, keep the large nuclei; ids and dtype as in the file."""
    d = STARDIST
    with Project.create(tmp_path / "p.svetlana") as project:
        project.add_image(d / "img3d.tif", d / "mask3d.tif", name="nuclei")
        table = project.load("nuclei").table
        median = np.median(table.area)
        for c in ("large", "small"):
            project.annotations.add_class(c)
        project.annotations.apply_labels(
            [
                ("nuclei", int(i), "large" if a >= median else "small")
                for i, a in zip(table.ids, table.area, strict=True)
            ][:30]
        )
        trained = train_project(project, FAST, patch_size=16)
        s = export_filtered(project, ["large"], tmp_path / "out", model_id=trained.id)
        _, preds = project_predictions(project, trained.id)
        labels = project.annotations.for_image("nuclei")
    original = tifffile.imread(d / "mask3d.tif")
    result = tifffile.imread(tmp_path / "out" / "nuclei_filtered.tif")
    assert result.dtype == original.dtype and result.shape == original.shape
    kept, removed = keep_preview(preds["nuclei"], {"large"}, labels=labels)
    # The 30 labelled objects are kept or removed by their label, whatever the model says.
    by_label = {i for i, lab in labels.items() if lab.class_name == "large"}
    assert by_label <= set(kept.tolist()) and not (set(labels) - by_label) & set(kept.tolist())
    _assert_filtered(result, original, kept)
    assert (
        s.kept == len(kept) and s.removed == len(removed) and s.kept + s.removed == len(table.ids)
    )


def test_3d_filtered_and_per_class_masks_without_training(tmp_path):
    """Any prediction (here made up) filters a 3D int16 mask; ids, dtype and Z kept."""
    from svetlana.core.usecases.predict import ImagePrediction

    labels = np.zeros((6, 32, 32), np.int16)
    ids = [3, 40, 41, 300]
    for k, i in enumerate(ids):
        labels[1:5, 2 + 7 * k : 6 + 7 * k, 4:12] = i
    image = (labels > 0).astype(np.uint16) * 100 + 10
    ip, mp = write_pair(tmp_path / "in", "stack", image, labels)
    with Project.create(tmp_path / "p.svetlana", classes=["keep", "drop"]) as project:
        project.add_image(ip, mp)
        table = project.load("stack").table
        probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]], np.float32)
        pred = ImagePrediction("stack", table, probs, ("keep", "drop"))
        s = write_filtered_masks(project, [pred], {"keep"}, 0.65, tmp_path / "out", per_class=True)
    assert (s.images[0].kept, s.images[0].removed, s.images[0].low_confidence) == (2, 2, 1)
    result = tifffile.imread(tmp_path / "out" / "stack_filtered.tif")
    assert result.dtype == np.int16 and result.shape == labels.shape
    _assert_filtered(result, labels, np.array([3, 300]))
    _assert_filtered(tifffile.imread(tmp_path / "out" / "stack_drop.tif"), labels, np.array([40]))

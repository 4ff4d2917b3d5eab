"""`svetlana export-model --format bioimageio`: a package that bioimage.io's own tools validate
and run offline (bioimageio.spec + bioimageio.core), in 2D and 3D; forests refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import blobs, run_cli, snapshot, write_pair

FAST = ["--arch", "minimal", "--epochs", "3", "--val-fraction", "0"]
IDS = [10 + 7 * k for k in range(12)]

pytestmark = pytest.mark.slow


def run(*args) -> tuple[int, str, str]:
    return run_cli("-q", *args)


def ok(*args) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


def bioimageio_test(rdf: Path):
    """bioimageio.core's own test (the `bioimageio test` command), offline."""
    core = pytest.importorskip(
        "bioimageio.core", reason="bioimageio.core is a test dependency (pip install -e .[test])"
    )
    pytest.importorskip("onnxruntime", reason="bioimageio.core runs ONNX weights with onnxruntime")
    return core.test_model(str(rdf))


def _failures(summary) -> list[str]:
    return [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors if d.status == "failed"]


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "p.svetlana"
    ok("init", b, "--classes", "bright,dim")
    image, labels = blobs(n=12, seed=0)
    ok("add", b, *write_pair(tmp_path / "in", "cells", image, labels.astype(np.uint16)))
    lab = tmp_path / "labels.csv"
    lab.write_text(
        "image,object,class\n"
        + "".join(f"cells,{i},{'bright' if k % 2 == 0 else 'dim'}\n" for k, i in enumerate(IDS))
    )
    ok("import-labels", b, lab)
    return b


def test_package_passes_bioimageio_test_and_gives_the_project_predictions(bundle, tmp_path):
    import yaml

    code, out, err = run("export-model", bundle, "--format", "bioimageio", "--out", tmp_path / "b")
    assert code == 1 and "no trained model" in err and not (tmp_path / "b").exists()
    ok("train", bundle, *FAST)
    before = snapshot(bundle)
    out = ok(
        "export-model", bundle, "--format", "bioimageio", "--out", tmp_path / "b",
        "--author", "Ada Lovelace", "--author", "Pierre Weiss", "--license", "MIT",
        "--cite", "Our lab's paper", "10.1000/xyz123", "--name", "Nuclei brightness",
    )  # fmt: skip
    assert snapshot(bundle) == before  # an export never changes the project
    folder = tmp_path / "b" / "Nuclei_brightness"
    rdf_path = folder / "rdf.yaml"
    assert str(rdf_path) in out and "note: author" not in out
    rdf = yaml.safe_load(rdf_path.read_text())
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace", "Pierre Weiss"]
    assert rdf["license"] == "MIT" and rdf["name"] == "Nuclei brightness"
    assert {c.get("doi") for c in rdf["cite"]} == {"10.1038/s41598-024-60916-8", "10.1000/xyz123"}
    axes = rdf["inputs"][0]["axes"]
    assert axes[1]["channel_names"] == ["channel0", "object_mask"]
    card = next((bundle / "models").glob("*/card.json"))
    import json

    size = json.loads(card.read_text())["patch_size"]
    assert [a.get("size") for a in axes[2:]] == [size, size]
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == ["bright", "dim"]
    assert rdf["outputs"][0]["postprocessing"] == [{"id": "softmax", "kwargs": {"axis": "channel"}}]
    readme = (folder / "README.md").read_text()
    assert "## Validation" in readme and "99.8th percentiles" in readme

    # The test patches are real patches of the project, and the expected outputs are what the
    # project's own predictions give for those objects.
    x = np.load(folder / "test_input.npy")
    y = np.load(folder / "test_output.npy")
    assert x.shape == (2, 2, size, size) and x[:, 1].sum() > 0 and y.shape == (2, 2)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    ok("predict", bundle, "--out", tmp_path / "pred")
    import csv

    rows = list(csv.DictReader((tmp_path / "pred" / "predictions.csv").open()))
    p_bright = sorted(float(r["p_bright"]) for r in rows)
    for value in y[:, 0]:  # every expected output is the probability of some object
        assert min(abs(v - value) for v in p_bright) < 1e-4

    summary = bioimageio_test(rdf_path)
    assert summary.status == "passed", _failures(summary)
    # The zip is the same package (what one uploads or shares).
    with zipfile.ZipFile(tmp_path / "b" / "Nuclei_brightness.zip") as z:
        assert set(z.namelist()) == {p.name for p in folder.iterdir()}
    summary = bioimageio_test(tmp_path / "b" / "Nuclei_brightness.zip")
    assert summary.status == "passed", _failures(summary)


def test_3d_package_passes_bioimageio_test(tmp_path):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.project.bundle import Project
    from svetlana.core.synthetic.easy import sphere_scene
    from svetlana.core.usecases.export_bioimageio import export_bioimageio
    from svetlana.core.usecases.train import train_project

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
        r = export_bioimageio(project, tmp_path / "out", trained.id)
        shape = tuple(trained.card["patch_shape"])
    x = np.load(r.folder / "test_input.npy")
    assert x.shape[1:] == (2, *shape) and len(shape) == 3
    summary = bioimageio_test(r.rdf)
    assert summary.status == "passed", _failures(summary)


def test_bad_output_is_one_line_and_writes_nothing(bundle, tmp_path):
    ok("train", bundle, *FAST)
    target = tmp_path / "a_file"
    target.write_text("x")
    code, out, err = run("export-model", bundle, "--format", "bioimageio", "--out", target)
    assert code == 1 and out == "" and err.count("\n") == 1 and "must be a folder" in err
    assert target.read_text() == "x"


def test_a_forest_is_refused_with_the_formats_that_exist(bundle, tmp_path):
    ok("train", bundle, "--arch", "forest")
    code, out, err = run("export-model", bundle, "--format", "bioimageio", "--out", tmp_path / "b")
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "forest" in err and "forest file" in err and "export-table" in err
    assert not (tmp_path / "b").exists()
    ok("export-model", bundle, "--out", tmp_path / "m")  # the default format exists for it
    assert (tmp_path / "m" / "forest.npz").exists()


def _disk_full_after(monkeypatch, n_files: int) -> None:
    """The disk fills up after ``n_files`` files of the package were written."""
    from svetlana.core.errors import ResourceError
    from svetlana.core.usecases import export_bioimageio as bioimageio_export

    real = bioimageio_export.atomic_write_bytes
    calls = []

    def write(path, data):
        calls.append(path)
        if len(calls) > n_files:
            raise ResourceError("the disk is full; nothing was changed", path)
        real(path, data)

    monkeypatch.setattr(bioimageio_export, "atomic_write_bytes", write)


def test_a_failed_export_leaves_no_half_written_package(bundle, tmp_path, monkeypatch):
    ok("train", bundle, *FAST)
    out = tmp_path / "zoo"
    args = ("export-model", bundle, "--format", "bioimageio", "--name", "pkg", "--out", out)
    with monkeypatch.context() as m:
        _disk_full_after(m, 3)  # rdf.yaml, model.onnx and test_input.npy written, then full
        code, _out, err = run(*args)
    assert code == 1 and "disk is full" in err
    assert sorted(p.name for p in out.iterdir()) == []  # no folder, no zip, no leftovers
    ok(*args)
    before = {p.name: p.read_bytes() for p in (out / "pkg").iterdir()}
    zip_before = (out / "pkg.zip").read_bytes()
    assert set(before) == {"rdf.yaml", "model.onnx", "test_input.npy", "test_output.npy",
                           "cover.png", "README.md"}  # fmt: skip
    # Exporting again fails half way: the earlier package is still there, whole.
    with monkeypatch.context() as m:
        _disk_full_after(m, 5)
        assert run(*args)[0] == 1
    assert {p.name: p.read_bytes() for p in (out / "pkg").iterdir()} == before
    assert (out / "pkg.zip").read_bytes() == zip_before
    assert sorted(p.name for p in out.iterdir()) == ["pkg", "pkg.zip"]
    # ... and when it succeeds it replaces it, folder and zip.
    ok(*args, "--license", "MIT")
    assert sorted(p.name for p in out.iterdir()) == ["pkg", "pkg.zip"]
    assert "license: MIT" in (out / "pkg" / "rdf.yaml").read_text()
    with zipfile.ZipFile(out / "pkg.zip") as z:
        assert "license: MIT" in z.read("rdf.yaml").decode()


def test_a_folder_of_the_users_at_the_package_place_is_left_alone(bundle, tmp_path):
    ok("train", bundle, *FAST)
    mine = tmp_path / "zoo" / "pkg"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    code, out, err = run(
        "export-model", bundle, "--format", "bioimageio", "--name", "pkg", "--out", tmp_path / "zoo"
    )
    assert code == 1 and "not a bioimage.io package" in err and err.count("\n") == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["pkg"]

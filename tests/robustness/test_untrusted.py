"""Files that would run code when loaded, and manifests pointing outside the bundle, are refused."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from svetlana.core.errors import ProjectError
from svetlana.core.project.bundle import Project
from tests.conftest import blobs, write_pair
from tests.robustness.helpers import assert_clear_error, make_bundle, ok, run_cli, snapshot


class _Evil:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _EvilSystem:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(folder, marker):
    """The ways a malicious network file reaches us: raw pickle, torch zip, nested in a dict."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    p = folder / "raw.pth"
    p.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    files.append(p)
    p = folder / "system.pt"
    p.write_bytes(pickle.dumps(_EvilSystem(str(marker))))
    files.append(p)
    p = folder / "zipped.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _Evil(str(marker))}, p)
    files.append(p)
    p = folder / "legacy.pt"
    torch.save(_Evil(str(marker)), p, _use_new_zipfile_serialization=False)
    files.append(p)
    return files


def test_train_refuses_a_network_file_that_runs_code(tmp_path):
    bundle = make_bundle(tmp_path)
    marker = tmp_path / "PWNED"
    before = snapshot(bundle)
    for f in _evil_files(tmp_path / "nets", marker):
        code, out, err = run_cli("-q", "train", bundle, "--arch", f, "--epochs", "1")
        assert_clear_error(code, err)
        assert "running code" in err and "torch.save(model.state_dict()" in err, err
        assert not marker.exists(), f.name
    assert snapshot(bundle) == before


def test_predict_refuses_weights_replaced_by_a_code_pickle(tmp_path):
    bundle = make_bundle(tmp_path)
    ok(
        "-q",
        "train",
        bundle,
        "--arch",
        "minimal",
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--device",
        "cpu",
    )
    marker = tmp_path / "PWNED"
    weights = bundle / "models" / "model-1" / "weights.pt"
    for f in _evil_files(tmp_path / "nets", marker):
        shutil.copyfile(f, weights)
        before = snapshot(bundle)
        code, _, err = run_cli("-q", "predict", bundle, "--device", "cpu")
        assert_clear_error(code, err)
        assert "refused" in err or "cannot load weights" in err, err
        assert not marker.exists(), f.name
        assert snapshot(bundle) == before
        code, _, err = run_cli(
            "-q", "predict", bundle, "--folder", tmp_path / "in", "--out", tmp_path / "o"
        )
        assert_clear_error(code, err)
        assert not marker.exists()


def test_add_refuses_a_seg_npy_that_needs_code(tmp_path):
    bundle = make_bundle(tmp_path)
    marker = tmp_path / "PWNED"
    image, labels = blobs(seed=4)
    ip, _ = write_pair(tmp_path / "in2", "more", image, labels)
    before = snapshot(bundle)
    payloads = {
        "more_seg.npy": {"masks": labels, "hook": _Evil(str(marker))},
        "sys_seg.npy": {"masks": labels, "hook": _EvilSystem(str(marker))},
        "plain.npy": np.array([_Evil(str(marker))], dtype=object),  # not even a _seg file
    }
    for name, obj in payloads.items():
        path = tmp_path / "in2" / name
        np.save(
            path, np.array(obj, dtype=object) if isinstance(obj, dict) else obj, allow_pickle=True
        )
        code, _, err = run_cli("add", bundle, ip, path, "--name", name.replace(".", "_"))
        assert_clear_error(code, err)
        assert "refused for safety" in err, err
        assert not marker.exists(), name
    # A genuine Cellpose file (plain arrays in a dict) is accepted.
    np.save(
        tmp_path / "in2" / "good_seg.npy",
        np.array({"masks": labels, "outlines": labels > 0}, dtype=object),
    )
    ok("add", bundle, ip, tmp_path / "in2" / "good_seg.npy", "--name", "good")
    assert set(snapshot(bundle)) >= set(before)


@pytest.mark.parametrize(
    "field,value",
    [
        ("image_file", "../../etc/passwd"),
        ("image_file", "/etc/passwd"),
        ("mask_file", "images/../../outside.tif"),
        ("mask_file", "..\\..\\x.tif"),
    ],
)
def test_manifest_paths_outside_the_bundle_are_refused(tmp_path, field, value):
    bundle = make_bundle(tmp_path)
    m = json.loads((bundle / "project.json").read_text())
    m["images"][0][field] = value
    (bundle / "project.json").write_text(json.dumps(m))
    before = snapshot(bundle)
    if "\\" in value:  # a Windows-style path is just a strange file name on POSIX: it must not load
        with Project.open(bundle, readonly=True) as p, pytest.raises(ProjectError):
            p.load("cells")
        return
    with pytest.raises(ProjectError, match="outside the project"):
        Project.open(bundle)
    for cmd in (["info", bundle], ["-q", "train", bundle, "--epochs", "1"]):
        code, _, err = run_cli(*cmd)
        assert_clear_error(code, err)
        assert "outside the project" in err
    assert snapshot(bundle) == before


def test_a_symlink_out_of_the_bundle_is_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    secret = tmp_path / "secret.tif"
    shutil.copyfile(bundle / "images" / "cells.tif", secret)
    (bundle / "images" / "cells.tif").unlink()
    (bundle / "images" / "cells.tif").symlink_to(secret)
    with pytest.raises(ProjectError, match="outside the project"):
        Project.open(bundle)


@pytest.mark.parametrize("model_id", ["../x", "/tmp/x", "..", "a/b", ""])
def test_manifest_model_ids_that_escape_are_refused(tmp_path, model_id):
    bundle = make_bundle(tmp_path)
    m = json.loads((bundle / "project.json").read_text())
    m["models"] = [{"id": model_id}]
    (bundle / "project.json").write_text(json.dumps(m))
    code, _, err = run_cli("-q", "predict", bundle)
    assert_clear_error(code, err)
    assert "malformed model entry" in err
    code, _, err = run_cli(
        "-q", "predict", make_bundle(tmp_path, "q.svetlana"), "--model", model_id
    )
    assert_clear_error(code, err)

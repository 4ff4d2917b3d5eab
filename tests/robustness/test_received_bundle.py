"""A received bundle (zipped and mailed, a colleague's folder) can never touch a file outside
itself: links, FIFOs and devices inside it are refused with one message naming the entry, and
a decoy file outside stays byte-identical. (The attacks of issue 23, items 1-5.)"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from svetlana.core.errors import ModelError, ProjectError
from svetlana.core.project.bundle import Project
from tests.robustness.helpers import (
    IDS,
    assert_clear_error,
    make_bundle,
    ok,
    received_copy,
    run_cli,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links and FIFOs as POSIX makes them")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A bundle with one image, its labels and a forest (model-1), predicted once."""
    bundle = make_bundle(tmp_path_factory.mktemp("trained"))
    ok("-q", "train", bundle, "--arch", "forest")
    ok("-q", "predict", bundle)
    return bundle


@pytest.fixture
def bundle(trained, tmp_path) -> Path:
    return received_copy(trained, tmp_path)


def _decoy(folder: Path, name: str = "report.npz") -> tuple[Path, bytes]:
    """A user's file outside the bundle, with content no command would write."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = os.urandom(4096)
    path.write_bytes(data)
    return path, data


def _refused(args, entry: str) -> str:
    code, _, err = run_cli(*args)
    assert_clear_error(code, err)
    assert entry in err, err
    return err


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "project.json").read_text())


def _write_manifest(bundle: Path, m: dict) -> None:
    (bundle / "project.json").write_text(json.dumps(m))


def test_predictions_linked_to_home_never_move_or_delete_a_users_folder(bundle, tmp_path):
    home = tmp_path / "home"
    documents = home / "Documents"
    thesis, data = _decoy(documents, "thesis.txt")
    shutil.rmtree(bundle / "predictions")
    (bundle / "predictions").symlink_to(home)
    (bundle / "models" / "model-1").rename(bundle / "models" / "Documents")
    m = _manifest(bundle)
    m["models"][0]["id"] = "Documents"
    _write_manifest(bundle, m)
    err = _refused(["-q", "predict", bundle, "--model", "Documents"], "predictions")
    assert "symbolic link" in err
    assert thesis.read_bytes() == data
    assert sorted(p.name for p in home.iterdir()) == ["Documents"]


def test_a_lock_linked_to_a_users_file_is_never_written(bundle, tmp_path):
    decoy, data = _decoy(tmp_path / "user", "notes.txt")
    (bundle / ".lock").symlink_to(decoy)
    for args in (
        ["-q", "predict", bundle],
        ["classes", bundle, "--rename", "dim", "faint"],
        ["-q", "train", bundle, "--arch", "forest"],
    ):
        _refused(args, ".lock")
    with pytest.raises(ProjectError, match="symbolic link") as err:
        Project.open(bundle)  # what a double-click on project.json does in the window
    assert err.value.path == bundle / ".lock"
    assert decoy.read_bytes() == data
    with Project.open(bundle, readonly=True) as p:  # reading needs no lock
        assert len(p.annotations) == len(IDS)


@pytest.mark.parametrize("folder", ["objects", "measurements"])
def test_cache_folders_linked_outside_never_overwrite_a_users_file(bundle, tmp_path, folder):
    data_dir = tmp_path / "data"
    decoy, data = _decoy(data_dir, "report.npz")
    shutil.rmtree(bundle / folder, ignore_errors=True)
    (bundle / folder).symlink_to(data_dir)
    (bundle / "masks" / "cells.tif").rename(bundle / "masks" / "report.tif")
    m = _manifest(bundle)
    m["images"][0]["mask_file"] = "masks/report.tif"
    _write_manifest(bundle, m)
    _refused(["-q", "predict", bundle], folder)
    assert decoy.read_bytes() == data
    assert sorted(p.name for p in data_dir.iterdir()) == ["report.npz"]


def test_a_journal_linked_to_a_users_file_is_never_appended_to(bundle, tmp_path):
    decoy, data = _decoy(tmp_path / "user", "diary.txt")
    (bundle / "annotations.journal").symlink_to(decoy)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,object,class\ncells,10,dim\n")
    _refused(["import-labels", bundle, labels], "annotations.journal")
    _refused(["info", bundle], "annotations.journal")
    assert decoy.read_bytes() == data


def test_a_model_folder_linked_outside_is_not_loaded(bundle, tmp_path):
    outside = tmp_path / "elsewhere" / "model-1"
    shutil.move(bundle / "models" / "model-1", outside)
    (bundle / "models" / "model-1").symlink_to(outside)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    err = _refused(["-q", "predict", bundle], "model-1")
    assert "symbolic link" in err
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before


@pytest.mark.parametrize("name", ["forest.npz", "card.json"])
def test_a_model_file_linked_outside_is_not_opened(bundle, tmp_path, name):
    outside = tmp_path / "elsewhere" / name  # a sound file: only the link is wrong
    outside.parent.mkdir()
    target = bundle / "models" / "model-1" / name
    shutil.move(target, outside)
    target.symlink_to(outside)
    _refused(["-q", "predict", bundle], name)


def test_cnn_weights_linked_to_a_file_or_a_device_are_refused_unread(tmp_path):
    from svetlana.core.ml.models import build_model, load_checkpoint, save_checkpoint

    folder = tmp_path / "model"
    card = {"architecture": "minimal", "in_channels": 2, "n_classes": 2, "ndim": 2,
            "classes": ["a", "b"], "patch_size": 16}  # fmt: skip
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), card)
    load_checkpoint(folder)  # sound: loads
    weights = folder / "weights.pt"
    weights.unlink()
    for target in ("/etc/passwd", "/dev/zero"):
        weights.unlink(missing_ok=True)
        weights.symlink_to(target)
        with pytest.raises(ModelError, match="symbolic link") as err:
            load_checkpoint(folder)
        assert err.value.path == weights


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _in_thread(fn):
    """Run ``fn`` with a deadline: a FIFO or /dev/zero must be refused, not read forever."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "blocked on a special file"
    return box


@pytest.mark.parametrize(
    "entry", ["annotations.csv", "annotations.journal", ".lock", "project.json"]
)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_special_files_are_refused_without_blocking(bundle, entry, kind):
    path = bundle / entry
    path.unlink(missing_ok=True)
    if kind == "fifo":
        _fifo(path)
    else:
        path.symlink_to("/dev/zero")
    box = _in_thread(lambda: run_cli("-q", "predict", bundle))
    code, _, err = box["value"]
    assert_clear_error(code, err)
    assert entry in err, err
    if entry != ".lock":  # info does not lock
        code, _, err = _in_thread(lambda: run_cli("info", bundle))["value"]
        assert_clear_error(code, err)
        assert entry in err, err


def test_a_fifo_as_model_weights_is_refused_without_blocking(bundle):
    target = bundle / "models" / "model-1" / "forest.npz"
    _fifo(target)
    code, _, err = _in_thread(lambda: run_cli("-q", "predict", bundle))["value"]
    assert_clear_error(code, err)
    assert "forest.npz" in err and "FIFO" in err, err


def test_an_oversized_manifest_is_refused_before_it_is_read(bundle):
    with open(bundle / "project.json", "r+b") as f:
        f.truncate(300 << 20)  # sparse: costs no disk
    code, _, err = run_cli("info", bundle)
    assert_clear_error(code, err)
    assert "project.json" in err and "larger than" in err, err


def test_the_users_own_link_to_the_bundle_itself_still_works(trained, tmp_path):
    """The folder the user points at is theirs to choose: only entries inside are checked."""
    link = tmp_path / "shortcut.svetlana"
    link.symlink_to(trained)
    assert "cells" in ok("info", link)


def test_leftover_links_in_the_predictions_folder_are_removed_not_followed(bundle, tmp_path):
    victim = tmp_path / "victim"
    decoy, data = _decoy(victim, "keep.txt")
    (bundle / "predictions" / ".model-1.partial-old").symlink_to(victim)  # a crash leftover
    (bundle / "predictions" / "model-1" / "inside-link").symlink_to(victim)
    ok("-q", "predict", bundle)
    assert decoy.read_bytes() == data
    assert not os.path.lexists(bundle / "predictions" / ".model-1.partial-old")
    rows = (bundle / "predictions" / "model-1" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + len(IDS)


def test_writes_into_a_bundle_refuse_a_linked_folder(tmp_path):
    from svetlana.core.io import bundlefs

    root = tmp_path / "b"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "objects").symlink_to(outside)
    for write in (
        lambda: bundlefs.write_bytes(root, "objects/x.npz", b"x"),
        lambda: bundlefs.write_with(root, "objects/x.npz", lambda p: p.write_bytes(b"x")),
        lambda: bundlefs.append_line(root, "objects/j", "x"),
        lambda: bundlefs.make_dirs(root, "objects/sub"),
        lambda: bundlefs.rename(root, "a", "objects/a"),
    ):
        with pytest.raises(ProjectError, match="symbolic link") as err:
            write()
        assert err.value.path == root / "objects"
    bundlefs.remove(root, "objects")  # removes the link itself
    assert outside.is_dir() and not os.path.lexists(root / "objects")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("folder", ["images", "masks"])
def test_adding_an_image_into_a_linked_folder_writes_nothing_outside(bundle, tmp_path, folder):
    from tests.conftest import blobs, write_pair

    outside = tmp_path / "outside"
    decoy, data = _decoy(outside, "more.tif")
    moved = tmp_path / "moved"
    shutil.move(bundle / folder, moved)
    (bundle / folder).symlink_to(outside)
    image, labels = blobs(seed=3)
    ip, mp = write_pair(tmp_path / "in", "more", image, labels)
    code, _, err = run_cli("add", bundle, ip, mp)
    assert_clear_error(code, err)
    assert folder in err, err
    assert decoy.read_bytes() == data
    assert sorted(p.name for p in outside.iterdir()) == ["more.tif"]


def test_a_bundle_named_by_a_relative_path_works_as_before(bundle, monkeypatch):
    monkeypatch.chdir(bundle.parent)
    ok("-q", "predict", bundle.name)
    ok("classes", bundle.name, "--rename", "dim", "faint")
    monkeypatch.chdir(bundle)
    ok("-q", "predict", ".")
    assert (bundle / "predictions" / "model-1" / "predictions.csv").is_file()

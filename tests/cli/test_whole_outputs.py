"""An output folder holds one whole run: a crash or kill -9 while writing leaves the earlier run
as it was (never files of two runs under one run.json); a folder holding anything else is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.folder_helpers import csv_rows, ok, trained_bundle
from tests.conftest import ROOT, blobs, run_cli, snapshot, write_pair


def _flip_labels_and_train(tmp_path: Path, bundle: Path, names) -> None:
    """model-2: trained on the opposite labels, so its class masks differ from model-1's."""
    rows = ["image,object,class"]
    for name in names:
        rows += [f"{name},{10 + 7 * j},{'dim' if j % 2 == 0 else 'bright'}" for j in range(12)]
    (tmp_path / "flipped.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "flipped.csv")
    ok("train", bundle, "--arch", "forest")


def _crash_on_second_write(monkeypatch):
    import tifffile

    real, calls = tifffile.imwrite, []

    def imwrite(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", imwrite)


@pytest.mark.parametrize("command", ["predict", "export-mask"])
def test_a_crash_mid_write_leaves_the_earlier_run_whole(tmp_path, monkeypatch, command):
    names = ("one", "two", "three")
    bundle = trained_bundle(tmp_path, names=names)
    extra = ["--keep", "bright"] if command == "export-mask" else []
    out = tmp_path / "results"
    ok(command, bundle, *extra, "--out", out)
    before = snapshot(out)
    _flip_labels_and_train(tmp_path, bundle, names)
    _crash_on_second_write(monkeypatch)
    code, _, err = run_cli(command, bundle, *extra, "--model", "model-2", "--out", out)
    assert code != 0, err
    assert snapshot(out) == before  # model-1's run, whole; nothing hidden inside
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".results")) == []
    monkeypatch.undo()
    ok(command, bundle, *extra, "--model", "model-2", "--out", out)  # then replaced whole
    assert json.loads((out / "run.json").read_text())["model"] == "model-2"
    assert snapshot(out) != before


def test_a_folder_run_killed_mid_way_leaves_the_earlier_run_and_resumes(tmp_path):
    bundle = trained_bundle(tmp_path, names=("cells",))
    folder = tmp_path / "plate"
    for k in range(12):
        write_pair(folder, f"img{k:02d}", *blobs(n=12, seed=k))
    out = tmp_path / "results"
    ok("predict", bundle, "--folder", folder, "--out", out)
    before = snapshot(out)
    _flip_labels_and_train(tmp_path, bundle, ("cells",))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'app'}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "svetlana", "-q", "predict", str(bundle), "--folder",
           str(folder), "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    staging = tmp_path / ".results.svetlana-run" / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(staging.glob("*.done.json"))) >= 2:  # some images done, not all
            break
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after = snapshot(out)
    record = json.loads((out / "run.json").read_text())
    models = {r["model"] for r in csv_rows(out / "predictions.csv")}
    assert models == {record["model"]}  # one run under one run.json
    assert set(p.name for p in out.iterdir()) <= {"run.json", *record["files"]}
    if killed:
        assert after == before  # the earlier run, whole
        out_text = ok("predict", bundle, "--folder", folder, "--out", out, "--resume")
        assert "kept from the earlier run" in out_text
        assert json.loads((out / "run.json").read_text())["model"] == "model-2"


def test_an_out_folder_holding_other_files_is_refused_not_replaced(tmp_path):
    bundle = trained_bundle(tmp_path)
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.docx").write_text("months of work")
    before = snapshot(mine)
    for args in (["predict", bundle], ["export-mask", bundle, "--keep", "bright"]):
        code, _, err = run_cli(*args, "--out", mine)
        assert code == 1 and "did not write" in err and "new or empty folder" in err, err
        assert snapshot(mine) == before
    # and the output of one command is not replaced by another's
    ok("predict", bundle, "--out", tmp_path / "r")
    code, _, err = run_cli("export-mask", bundle, "--keep", "bright", "--out", tmp_path / "r")
    assert code == 1 and "another command (predictions)" in err, err
    # a folder of an earlier version (its run.json lists no files): only its kinds of file
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / "run.json").write_text('{"kind": "predictions", "model": "model-1"}')
    (legacy / "cells_classes.tif").write_bytes(b"old")
    (legacy / "notes.docx").write_text("mine")
    code, _, err = run_cli("predict", bundle, "--out", legacy)
    assert code == 1 and "did not write" in err and (legacy / "notes.docx").is_file(), err
    (legacy / "notes.docx").unlink()
    ok("predict", bundle, "--out", legacy)
    assert (legacy / "cells_classes.tif").read_bytes() != b"old"
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    code, _, err = run_cli("predict", bundle, "--out", afile)
    assert code == 1 and "is an existing file" in err and afile.read_text() == "x", err

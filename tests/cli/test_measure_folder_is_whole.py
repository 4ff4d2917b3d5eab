"""`svetlana measure --out DIR` writes its folder beside DIR and swaps it in whole, like the other
exports: DIR must be new, empty or an earlier measure output; a folder holding the user's own
files (or another command's output) is refused with one line and left as it was; a failure or
Ctrl+C mid-write leaves the earlier output byte for byte; a rerun replaces its own output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import blobs, ok, run_cli, snapshot, write_pair


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "p.svetlana"
    ok("-q", "init", b, "--classes", "bright,dim")
    for name, seed in (("one", 0), ("two", 1)):
        image, labels = blobs(n=12, seed=seed)
        ip, mp = write_pair(tmp_path / "in", name, image, labels)
        ok("-q", "add", b, ip, mp, "--name", name)
    return b


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_a_folder_holding_the_users_own_file_is_refused_and_left_alone(bundle, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "measurements.csv").write_text("my own table, typed by hand\n")
    (out / "notes.txt").write_text("my notes\n")
    before = snapshot(out)
    code, stdout, err = run_cli("measure", bundle, "--out", out)
    assert code != 0
    assert str(out) in err and "left alone" in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and stdout == ""
    assert snapshot(out) == before
    assert _leftovers(tmp_path, "mine") == []


def test_another_commands_output_is_refused(bundle, tmp_path):
    out = tmp_path / "table"
    out.mkdir()
    (out / "objects.csv").write_text("image,object,class\n")
    (out / "run.json").write_text(json.dumps({"kind": "table", "files": ["objects.csv"]}))
    before = snapshot(out)
    code, _, err = run_cli("measure", bundle, "--out", out)
    assert code != 0 and "another command (table)" in err, err
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "exc", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["full", "ctrl-c"]
)
def test_a_failure_mid_write_leaves_the_earlier_output_whole(bundle, tmp_path, monkeypatch, exc):
    from svetlana.core.io import fileio

    out = tmp_path / "m"
    ok("-q", "measure", bundle, "--image", "one", "--out", out)
    before = snapshot(out)
    assert {"measurements.csv", "measurements_columns.csv", "run.json"} <= before.keys()
    real, calls = fileio.atomic_write_text, []

    def fail_on_the_second(*args, **kwargs):  # measurements.csv written, then the disk fails
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(fileio, "atomic_write_text", fail_on_the_second)
    code, _, err = run_cli("measure", bundle, "--out", out)  # both images: a larger table
    assert len(calls) == 2 and code != 0, err
    assert snapshot(out) == before
    assert _leftovers(tmp_path, "m") == []
    monkeypatch.undo()
    ok("-q", "measure", bundle, "--out", out)  # its own earlier output: replaced whole
    after = snapshot(out)
    assert after.keys() == before.keys()
    assert after["measurements.csv"].count(b"\n") == 1 + 24  # header + both images' objects


def test_an_earlier_versions_output_without_run_json_is_replaced(bundle, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "measurements.csv").write_text("image,object,area\none,10,81\n")
    (out / "measurements_columns.csv").write_text("column,unit\narea,px^2\n")
    ok("-q", "measure", bundle, "--out", out)
    rows = (out / "measurements.csv").read_text().splitlines()
    assert len(rows) == 1 + 24
    assert json.loads((out / "run.json").read_text())["kind"] == "measurements"

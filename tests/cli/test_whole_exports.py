"""The exports that write a folder of their own (export-table, export-objects, export-patches,
export-model) write it beside --out and swap it in whole: a folder holding the user's own files
is refused and left as it was; a failure or Ctrl+C mid-way leaves an earlier export byte for
byte; a rerun into its own earlier output replaces it."""

from __future__ import annotations

import json

import pytest

from tests.cli.folder_helpers import ok, trained_bundle
from tests.conftest import run_cli, snapshot

EXPORTS = ["export-table", "export-objects", "export-patches"]


@pytest.fixture
def bundle(tmp_path):
    return trained_bundle(tmp_path, names=("one", "two"), predict=True)


@pytest.mark.parametrize("command", EXPORTS)
def test_a_folder_holding_the_users_own_file_is_refused_and_left_alone(bundle, tmp_path, command):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes, not Svetlana's\n")
    code, _, err = run_cli(command, bundle, "--out", out)
    assert code != 0
    assert str(out) in err and "left alone" in err, err
    assert "Traceback" not in err
    assert snapshot(out) == {"notes.txt": b"my notes, not Svetlana's\n"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mine")] == []


def _train_on_flipped_labels(tmp_path, bundle) -> None:
    """model-2: trained on the opposite labels, so its exports differ from model-1's."""
    rows = ["image,object,class"]
    for name in ("one", "two"):
        rows += [f"{name},{10 + 7 * j},{'dim' if j % 2 == 0 else 'bright'}" for j in range(12)]
    (tmp_path / "flipped.csv").write_text("\n".join(rows) + "\n")
    ok("import-labels", bundle, tmp_path / "flipped.csv")
    ok("train", bundle, "--arch", "forest")


def _fail_on_second_text_write(monkeypatch, exc: BaseException):
    from svetlana.core.io import fileio

    real, calls = fileio.atomic_write_text, []

    def atomic_write_text(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(fileio, "atomic_write_text", atomic_write_text)
    return calls


@pytest.mark.parametrize("command", ["export-table", "export-objects"])
@pytest.mark.parametrize(
    "exc", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["full", "ctrl-c"]
)
def test_a_failure_mid_way_leaves_the_earlier_export_byte_for_byte(
    bundle, tmp_path, monkeypatch, command, exc
):
    out = tmp_path / "results"
    ok(command, bundle, "--model", "model-1", "--out", out)
    before = snapshot(out)
    _train_on_flipped_labels(tmp_path, bundle)
    calls = _fail_on_second_text_write(monkeypatch, exc)
    code, _, err = run_cli(command, bundle, "--model", "model-2", "--out", out)
    assert len(calls) == 2  # the first file was written (beside), then the writer failed
    assert code != 0, err
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".results")] == []
    monkeypatch.undo()
    ok(command, bundle, "--model", "model-2", "--out", out)  # then replaced whole
    assert snapshot(out).keys() == before.keys() and snapshot(out) != before


@pytest.mark.parametrize("command", [*EXPORTS, "export-model"])
def test_rerunning_an_export_into_its_own_earlier_output_replaces_it(bundle, tmp_path, command):
    out = tmp_path / "again"
    ok(command, bundle, "--out", out)
    first = sorted(p.name for p in out.iterdir())
    assert "run.json" in first
    ok(command, bundle, "--out", out)
    assert sorted(p.name for p in out.iterdir()) == first
    # but another command's output is not its own: refused, left as it was
    other = "export-objects" if command == "export-table" else "export-table"
    before = snapshot(out)
    code, _, err = run_cli(other, bundle, "--out", out)
    assert code != 0 and "another command" in err and str(out) in err, err
    assert snapshot(out) == before
    assert json.loads((out / "run.json").read_text())["kind"]

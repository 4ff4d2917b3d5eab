"""fileio.atomic_folder: a folder is replaced whole or not at all."""

from __future__ import annotations

import pytest

from svetlana.core.io.fileio import atomic_folder


def _files(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_a_new_folder_appears_only_when_the_block_ends(tmp_path):
    final = tmp_path / "out" / "pkg"
    with atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not final.exists()
    assert _files(final) == {"a.txt": "1"}
    assert [p.name for p in final.parent.iterdir()] == ["pkg"]


def test_a_failure_keeps_the_old_folder_whole_and_leaves_nothing_behind(tmp_path):
    final = tmp_path / "pkg"
    final.mkdir()
    (final / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("crash half way")
    assert _files(final) == {"a.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]
    with atomic_folder(final) as tmp:  # success replaces it: old files do not linger
        (tmp / "b.txt").write_text("new")
    assert _files(final) == {"b.txt": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


def test_leftovers_of_a_crash_are_removed(tmp_path):
    leftover = tmp_path / ".pkg.partial-abc123"
    leftover.mkdir()
    (leftover / "half.onnx").write_text("x")
    with atomic_folder(tmp_path / "pkg") as tmp:
        (tmp / "a.txt").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]

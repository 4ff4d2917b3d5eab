"""The command line keeps its word: the input folder is never written to, the demo never runs
in a real project, a labels CSV that contradicts itself is refused with its line numbers."""

from __future__ import annotations

from tests.cli.folder_helpers import ok, trained_bundle
from tests.conftest import blobs, run_cli, snapshot, write_pair


def test_predict_folder_never_writes_into_its_input_folder(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    write_pair(folder, "x", *blobs(n=9, seed=3))
    before = snapshot(folder)
    for out in (folder, folder / "results"):
        code, _, err = run_cli("predict", bundle, "--folder", folder, "--out", out)
        assert code == 1 and "inside the input folder" in err, err
        assert snapshot(folder) == before and not (folder / "results").exists()


def test_demo_refuses_a_real_project_and_reruns_its_own(tmp_path):
    bundle = trained_bundle(tmp_path)
    before = snapshot(bundle)
    code, _, err = run_cli("demo", "--headless", bundle)
    assert code == 1 and "not the demo's" in err and "nothing was changed" in err, err
    assert snapshot(bundle) == before
    other = tmp_path / "stuff"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run_cli("demo", "--headless", other)
    assert code == 1 and "not a demo project" in err, err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_contradicting_rows_of_a_labels_csv_are_refused_with_their_lines(tmp_path):
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "dotted,striped")
    ip, mp = write_pair(tmp_path / "in", "cells", *blobs(n=12))
    ok("add", bundle, ip, mp)
    csv = tmp_path / "l.csv"
    csv.write_text("image,object,class\ncells,10,dotted\ncells,17,dotted\ncells,10,striped\n")
    before = snapshot(bundle)
    code, _, err = run_cli("import-labels", bundle, csv)
    assert code == 1 and "lines 2 and 4" in err and "'dotted' and 'striped'" in err, err
    assert snapshot(bundle) == before
    csv.write_text("image,object,class\ncells,10,dotted\ncells,10,dotted\n")  # a repeat: fine
    assert "imported 2 labels" in ok("import-labels", bundle, csv)

"""The cluster keeps its word: a wrong scheduler address fails fast with a clear message, every path
sent to a worker is absolute, and --resume knows a changed input by its content."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest
import tifffile

from tests.cli.folder_helpers import csv_rows, ok, trained_bundle
from tests.conftest import blobs, run_cli, write_pair


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (as a web or database server
    would, to Dask's handshake)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
    for c in held:
        c.close()


def test_a_port_that_is_not_a_dask_scheduler_times_out_with_a_message(tmp_path, silent_server,
                                                                      monkeypatch):  # fmt: skip
    from svetlana.core.usecases import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)
    bundle = trained_bundle(tmp_path)
    write_pair(tmp_path / "plate", "x", *blobs(n=9, seed=3))
    t0 = time.monotonic()
    code, _, err = run_cli(
        "predict", bundle, "--folder", tmp_path / "plate", "--out", tmp_path / "o",
        "--scheduler", silent_server,
    )  # fmt: skip
    assert time.monotonic() - t0 < 30
    assert code == 1 and "not a Dask scheduler" in err and "unexpected" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("address", "expect"),
    [("notascheme://x", "unknown address scheme"), ("tcp://127.0.0.1:1", "cannot reach")],
)
def test_a_wrong_scheme_or_a_closed_port_is_one_clear_line(tmp_path, monkeypatch, address, expect):
    from svetlana.core.usecases import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)
    bundle = trained_bundle(tmp_path)
    write_pair(tmp_path / "plate", "x", *blobs(n=9, seed=3))
    code, _, err = run_cli(
        "predict", bundle, "--folder", tmp_path / "plate", "--out", tmp_path / "o",
        "--scheduler", address,
    )  # fmt: skip
    assert code == 1 and expect in err and "unexpected" not in err, err


def test_every_path_sent_to_a_worker_is_absolute(tmp_path, monkeypatch):
    from svetlana.core.usecases.batch import plan_folder

    bundle = trained_bundle(tmp_path)
    write_pair(tmp_path / "plate", "x", *blobs(n=9, seed=3))
    (tmp_path / "plate" / "y.tif").write_bytes((tmp_path / "plate" / "x.tif").read_bytes())
    monkeypatch.chdir(tmp_path)
    tasks = plan_folder(bundle / "models" / "model-1", "plate", "out")
    assert len(tasks) == 2
    for t in tasks:
        paths = [t.image_path, t.out_dir, t.model.folder] + ([t.mask_path] if t.mask_path else [])
        assert all(os.path.isabs(p) for p in paths), t


def test_resume_knows_an_input_changed_with_the_same_size_and_time(tmp_path):
    bundle = trained_bundle(tmp_path)
    folder = tmp_path / "plate"
    image, labels = blobs(n=9, seed=3)
    write_pair(folder, "a", image, labels)
    write_pair(folder, "b", image, labels)
    ok("predict", bundle, "--folder", folder, "--out", tmp_path / "o")
    mask = folder / "b_masks.tif"
    st = os.stat(mask)
    moved = np.where(labels > 0, labels + 1, 0).astype(labels.dtype)  # other ids, same bytes count
    tifffile.imwrite(mask, moved)
    os.utime(mask, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(mask).st_size == st.st_size
    out = ok("predict", bundle, "--folder", folder, "--out", tmp_path / "o", "--resume")
    assert "(1 kept from the earlier run)" in out, out
    ids = sorted(int(r["object"]) for r in csv_rows(tmp_path / "o" / "predictions.csv")
                 if r["image"] == "b")  # fmt: skip
    assert ids == sorted((np.unique(moved)[1:]).tolist())

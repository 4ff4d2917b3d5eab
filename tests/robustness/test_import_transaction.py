"""import-labels is one transaction: killed at any moment, a project holds none or all of a file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from svetlana.core.annotations.store import Annotations
from svetlana.core.project.bundle import Project
from tests.robustness.helpers import REPO

N_LABELS = 8000


def _store(tmp_path) -> Annotations:
    store = Annotations(journal=tmp_path / "annotations.journal")
    store.add_class("a")
    return store


def test_a_torn_or_damaged_batch_is_ignored_whole(tmp_path):
    store = _store(tmp_path)
    with store.transaction():
        store.add_class("=new")
        store.apply_labels([("img", i, "=new" if i % 2 else "a") for i in range(60)], "import")
    lines = (tmp_path / "annotations.journal").read_bytes().splitlines(keepends=True)
    head, batch = b"".join(lines[:-1]), lines[-1]
    assert len(lines) == 2 and json.loads(batch)["n"] == 61  # one record for the whole import

    def replayed(tail: bytes) -> int:
        journal = tmp_path / "replay.journal"
        journal.write_bytes(head + tail)
        fresh = Annotations(journal=journal)
        fresh.replay_journal()
        return len(fresh)

    for cut in range(0, len(batch) - 1, 7):  # every torn tail a crash can leave
        assert replayed(batch[:cut]) == 0, cut
    assert replayed(batch) == 60 and replayed(batch.rstrip(b"\n")) == 60
    damaged = batch.replace(b'"object":17', b'"object":71')  # still JSON, wrong checksum
    assert damaged != batch and replayed(damaged) == 0


def test_a_failed_transaction_changes_nothing(tmp_path):
    store = _store(tmp_path)
    before = (tmp_path / "annotations.journal").read_bytes()
    with pytest.raises(RuntimeError), store.transaction():
        store.add_class("b")
        store.apply_labels([("img", 1, "b"), ("img", 2, "a")])
        raise RuntimeError("disk gone")
    assert store.class_names == ("a",) and len(store) == 0
    assert (tmp_path / "annotations.journal").read_bytes() == before


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory):
    """A project of one image with 10,000 objects and a CSV labelling 8,000 of them."""
    tmp = tmp_path_factory.mktemp("big")
    labels = np.zeros((500, 500), np.int32)
    ids = np.arange(1, 10001, dtype=np.int32).reshape(100, 100)
    labels.reshape(100, 5, 100, 5)[:, 1:4, :, 1:4] = ids[:, None, :, None]
    image = (labels > 0).astype(np.uint16) * 500 + 100
    tifffile.imwrite(tmp / "big.tif", image)
    tifffile.imwrite(tmp / "big_masks.tif", labels)
    bundle = tmp / "p.svetlana"
    with Project.create(bundle, ["x"]) as project:
        project.add_image(tmp / "big.tif", tmp / "big_masks.tif", name="big")
    rng = np.random.default_rng(0)
    chosen = rng.choice(ids.ravel(), N_LABELS, replace=False)
    csv_path = tmp / "labels.csv"
    csv_path.write_text(
        "image,object,class\n"
        + "".join(f"big,{o},{'=one' if k % 3 else 'two'}\n" for k, o in enumerate(chosen))
    )
    return bundle, csv_path


def _import(bundle, csv_path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "app"), str(REPO)]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(
        [sys.executable, "-m", "svetlana", "-q", "import-labels", str(bundle), str(csv_path)]
        + ["--add-classes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _labels_after_reopening(bundle) -> int:
    with Project.open(bundle) as project:  # replays the journal, as the app would
        n = len(project.annotations)
        classes = set(project.annotations.class_names)
    assert classes in ({"x"}, {"x", "=one", "two"}), classes
    assert (n == 0) == (classes == {"x"}), (n, classes)  # new classes come with their labels
    return n


@pytest.mark.timeout(900)
def test_import_killed_at_random_moments_leaves_none_or_all(big_bundle, tmp_path):
    bundle, csv_path = big_bundle
    whole = tmp_path / "whole.svetlana"
    shutil.copytree(bundle, whole)
    t0 = time.monotonic()
    proc = _import(whole, csv_path)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    duration = time.monotonic() - t0
    proc.stderr.close()
    assert _labels_after_reopening(whole) == N_LABELS
    outcomes = []
    rng = np.random.default_rng(1)
    for k, when in enumerate(sorted(rng.uniform(0.2, 1.1, 10) * duration)):
        copy = tmp_path / f"k{k}.svetlana"
        shutil.copytree(bundle, copy)
        proc = _import(copy, csv_path)
        time.sleep(when)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
        n = _labels_after_reopening(copy)
        assert n in (0, N_LABELS), (when, n)
        outcomes.append(n)
    print(f"import of {N_LABELS} labels: {duration:.1f} s; outcomes after kills: {outcomes}")

"""Two processes on one bundle; stale locks; cancelling training or prediction changes nothing."""

from __future__ import annotations

import json
import socket

import pytest

from svetlana.core.errors import Cancelled, ProjectLockedError
from svetlana.core.jobs import CancelToken
from svetlana.core.project.bundle import Project
from tests.robustness.helpers import (
    assert_clear_error,
    child,
    kill9,
    make_bundle,
    ok,
    run_cli,
    snapshot,
    wait_for,
)

HOLDER = """
import sys, time
from svetlana.core.project.bundle import Project
p = Project.open(sys.argv[1])
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(60)
def test_second_writer_is_refused_readers_work_and_a_killed_holder_is_recovered(tmp_path):
    bundle = make_bundle(tmp_path)
    proc = child(HOLDER, bundle)
    try:
        wait_for(proc, "ready")
        with pytest.raises(ProjectLockedError, match=f"process {proc.pid}"):
            Project.open(bundle)
        code, _, err = run_cli("import-labels", bundle, tmp_path / "none.csv")
        assert_clear_error(code, err)
        assert "is open in another Svetlana" in err and "close it there first" in err
        assert "cells" in ok("info", bundle)  # read-only commands still work
        with Project.open(bundle, readonly=True) as p:
            assert len(p.annotations) == 12
    finally:
        kill9(proc)
    # The holder died without releasing its lock: the next open sees it is stale.
    with Project.open(bundle) as p:
        p.annotations.apply_labels([("cells", 10, "dim")])
    assert not (bundle / ".lock").exists()


def test_a_lock_from_another_machine_is_respected(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "time": "t"}))
    with pytest.raises(ProjectLockedError, match="elsewhere"):
        Project.open(bundle)
    assert (bundle / ".lock").exists()


@pytest.mark.parametrize("content", ["", "garbage{", "[1, 2]", '"x"', "7", '{"pid": "x"}'])
def test_a_damaged_lock_gives_a_clear_answer(tmp_path, content):
    bundle = make_bundle(tmp_path)
    (bundle / ".lock").write_text(content)
    code, _, err = run_cli("import-labels", bundle, tmp_path / "none.csv")
    assert_clear_error(code, err)  # the CSV is missing: the lock itself did not crash anything


def test_own_live_process_lock_on_this_host_is_not_stolen(tmp_path):
    bundle = make_bundle(tmp_path)
    with Project.open(bundle):
        with pytest.raises(ProjectLockedError):
            Project.open(bundle)
        info = json.loads((bundle / ".lock").read_text())
        assert info["host"] == socket.gethostname()


# ---- cancel ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.predict import predict_project
    from svetlana.core.usecases.train import train_project

    bundle = make_bundle(tmp_path_factory.mktemp("cancel"), n_images=3)
    with Project.open(bundle) as p:
        train_project(p, TrainingConfig(epochs=1, val_fraction=0.0, device="cpu"))
        predict_project(p, device="cpu")
    return bundle


@pytest.mark.parametrize("at_epoch", [1, 2, 3])
def test_cancel_training_at_any_epoch_changes_nothing(trained, at_epoch):
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import train_project

    before = snapshot(trained)
    token = CancelToken()
    seen = []

    def progress(p):
        if p.stage == "train":
            seen.append(p.done)
            if p.done == at_epoch:
                token.cancel()

    with Project.open(trained) as p, pytest.raises(Cancelled):
        cfg = TrainingConfig(epochs=3, val_fraction=0.25, device="cpu", batch_size=8)
        train_project(p, cfg, progress=progress, cancel=token)
    assert seen[-1] == at_epoch
    assert snapshot(trained) == before


@pytest.mark.parametrize("at_call", [0, 1, 2, 3])
def test_cancel_prediction_at_any_batch_changes_nothing(trained, at_call):
    from svetlana.core.usecases.predict import predict_project

    before = snapshot(trained)
    token = CancelToken()
    calls = []

    def progress(p):
        calls.append(p)
        if len(calls) == at_call:
            token.cancel()

    if at_call == 0:
        token.cancel()
    with Project.open(trained) as p, pytest.raises(Cancelled):
        predict_project(p, device="cpu", progress=progress, cancel=token)
    assert snapshot(trained) == before
    assert not [f for f in (trained / "predictions").iterdir() if f.name.startswith(".")]

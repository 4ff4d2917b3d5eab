"""A cluster that costs nothing: local workers share the cores instead of oversubscribing them,
load the model once each, never import torch for a forest, and the terminal of a
``predict --folder --workers`` run shows the progress and the summary, not Dask's logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.folder_helpers import trained_bundle
from tests.conftest import blobs, write_pair

REPO = Path(__file__).resolve().parents[3]


N_SCREEN = 20  # enough small images for a few per cluster task on 2 cores


@pytest.fixture(scope="module")
def screen(tmp_path_factory) -> tuple[Path, Path]:
    """A project with a trained forest and a folder of ``N_SCREEN`` image/mask pairs."""
    tmp = tmp_path_factory.mktemp("screen")
    bundle = trained_bundle(tmp)
    for k in range(N_SCREEN):
        write_pair(tmp / "plate", f"well{k:02d}", *blobs(n=6 + k % 7, seed=20 + k))
    return bundle, tmp / "plate"


def _model_dir(bundle: Path) -> Path:
    (folder,) = [p for p in (bundle / "models").iterdir() if p.is_dir()]
    return folder


def _in_worker_state():
    import logging as _logging
    import os as _os
    import sys as _sys

    from svetlana.core.usecases import batch

    return {
        "torch": "torch" in _sys.modules,
        "loads": batch.loads,
        "quiet": any(
            type(f).__name__ == "_ShutdownNoise"
            for f in _logging.getLogger("distributed.worker").filters
        ),
        "env": {k: _os.environ.get(k) for k in ("OMP_NUM_THREADS", "SVETLANA_MEASURE_THREADS")},
    }


def test_workers_share_the_cores_load_the_forest_once_and_never_import_torch(screen, tmp_path):
    from svetlana.core.usecases import batch
    from svetlana.core.usecases.cluster import dask_client, run_on_client, worker_threads

    bundle, plate = screen
    tasks = batch.plan_folder(_model_dir(bundle), plate, tmp_path / "out", device="cpu")
    here = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "SVETLANA_MEASURE_THREADS")}
    with dask_client(2) as client:
        results = list(run_on_client(client, tasks))
        states = client.run(_in_worker_state)
        nthreads = client.nthreads()
    assert sorted(r.image for r in results) == sorted(t.image for t in tasks)
    assert len(results) == N_SCREEN and all(r.ok for r in results), results
    threads = worker_threads(2)
    assert threads == max(1, (os.cpu_count() or 1) // 2)
    assert sorted(nthreads.values()) == [threads, threads]
    for state in states.values():
        assert state["torch"] is False
        assert state["quiet"]  # a heartbeat that finds the scheduler gone prints no traceback
        assert state["loads"] <= 1  # 20 images on 2 workers: the model read once per worker
        assert state["env"] == {"OMP_NUM_THREADS": str(threads),
                                "SVETLANA_MEASURE_THREADS": str(threads)}  # fmt: skip
    assert sum(s["loads"] for s in states.values()) >= 1
    # this process (the window) measures on its own threads again after the run
    assert {k: os.environ.get(k) for k in here} == here


def test_small_images_go_a_few_per_cluster_task_and_the_last_tasks_shrink(tmp_path):
    """A cluster task costs ~10 ms of CPU around the scheduler: 200 small images are far fewer
    tasks, every image in exactly one, in the folder's order; the tasks shrink towards the end
    (the workers finish together) and a large image goes alone."""
    from svetlana.core.usecases import batch
    from svetlana.core.usecases.cluster import CHUNK_BYTES, chunks

    plate = tmp_path / "plate"
    image, labels = blobs(n=6, seed=1)
    write_pair(plate, "big", np.tile(image, (24, 24)), np.tile(labels, (24, 24)))
    for k in range(60):
        write_pair(plate, f"w{k:03d}", image, labels)
    model = tmp_path / "model"
    model.mkdir()
    (model / "card.json").write_text("{}")
    tasks = batch.plan_folder(model, plate, tmp_path / "out")
    groups = chunks(tasks, threads=2)
    assert [t for g in groups for t in g] == tasks  # every image once, in order
    assert len(groups) <= len(tasks) // 2
    sizes = [len(g) for g in groups[1:]]  # after the large image
    assert sizes[0] > 1 and sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)
    (big,) = [g for g in groups if any(t.image == "big" for t in g)]
    assert len(big) == 1  # its files alone are above CHUNK_BYTES
    for g in groups:
        read = sum(os.path.getsize(p) for t in g for p in (t.image_path, t.mask_path))
        assert len(g) == 1 or read <= CHUNK_BYTES
    assert [len(g) for g in chunks(tasks[:8], threads=2)] == [1] * 8  # few images: one each


def test_distributed_logs_at_warning_and_more_with_verbose():
    from svetlana.core.usecases.cluster import quiet_distributed

    root = logging.getLogger()
    dist = logging.getLogger("distributed")
    saved = root.level
    try:
        root.setLevel(logging.WARNING)
        with quiet_distributed():
            assert dist.getEffectiveLevel() == logging.WARNING and dist.propagate
        root.setLevel(logging.DEBUG)  # -v
        with quiet_distributed():
            assert dist.getEffectiveLevel() == logging.INFO and dist.propagate
    finally:
        root.setLevel(saved)


def test_a_folder_run_on_workers_prints_no_dask_log_nor_traceback(screen, tmp_path):
    """The command as a user runs it (a real terminal: workers' output included)."""
    bundle, plate = screen
    env = dict(os.environ, PYTHONPATH=str(REPO / "app"))

    def predict(*extra):
        out = tmp_path / f"out{len(extra)}"
        args = [sys.executable, "-m", "svetlana", "predict", str(bundle), "--folder", str(plate)]
        p = subprocess.run([*args, "--out", str(out), *extra], env=env, capture_output=True,
                           text=True, timeout=300, check=False)  # fmt: skip
        assert p.returncode == 0, p.stderr
        return out, p.stderr

    one, _ = predict()
    two, err = predict("--workers", "2")
    for word in ("INFO", "Traceback", "CommClosedError", "distributed"):
        assert word not in err, err
    assert "predict:" in err  # the progress is still there
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for name in files:
        if name.name != "run.json":  # its date differs
            assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_a_closed_connection_at_shutdown_is_not_reported_but_a_real_error_is(caplog):
    import distributed  # noqa: F401 - its loggers exist, as in a run
    from distributed.comm.core import CommClosedError

    from svetlana.core.usecases.cluster import quiet_distributed

    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING), quiet_distributed():
            core = logging.getLogger("distributed.core")
            try:
                raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker local>")
            except CommClosedError:
                core.exception("failed during shutdown")
            core.error("a worker ran out of disk space")
    finally:
        root.setLevel(saved)
    text = caplog.text
    assert "CommClosedError" not in text and "failed during shutdown" not in text
    assert "a worker ran out of disk space" in text


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every run has one thread")
def test_a_second_run_with_another_number_of_workers_gets_its_own_thread_count():
    """The app keeps one fork server for every run: the workers of a run with 2 workers must
    not keep the numerical libraries' thread pools of an earlier run with 1 (which would run
    2 x 2 threads on 2 cores), nor the reverse (half the cores idle)."""
    from svetlana.core.usecases.cluster import dask_client, worker_threads

    for workers in (1, 2, 1):
        with dask_client(workers) as client:
            pools = client.run(_blas_threads)
        assert pools and all(p == [worker_threads(workers)] * len(p) for p in pools.values()), (
            workers,
            pools,
        )

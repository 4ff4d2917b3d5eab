"""Run folder-prediction tasks on a Dask cluster: a local one of N workers, or one at an address."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator, Sequence

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, ensure_token
from svetlana.core.usecases.batch import PairResult, PairTask, predict_pairs

log = logging.getLogger(__name__)

# A task whose worker dies is re-run by the scheduler (up to distributed's allowed-failures);
# retries= re-runs a task that raised (a file system hiccup): user-data errors are results.
RETRIES = 2


# Thread-count variables of the numerical libraries, set in each worker before it starts.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "SVETLANA_MEASURE_THREADS",
)


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Threads of each of ``workers`` local workers: the cores shared out (at least 1), so that
    N workers together use the cores one process would, no more."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


# Imported once by the fork server that local workers are forked from (``_fork_server``): a
# worker starts with them loaded instead of importing them itself. Nothing of torch: a worker
# predicting with a forest never imports it (a CNN's worker imports it on its first task).
WORKER_MODULES = (
    "distributed",
    "numpy",
    "scipy.ndimage",
    "scipy.spatial",
    "tifffile",
    "skimage.measure._label",
    "svetlana.core.io.mask_checks",
    "svetlana.core.usecases.batch",
    "svetlana.core.usecases.predict",
    "svetlana.core.usecases.results",
    "svetlana.core.annotations.final_class",
    "svetlana.core.io.images",
    "svetlana.core.objects.lazy",
    "svetlana.core.objects.measurements",
    "svetlana.core.objects.families",
    "svetlana.core.project.images",
    "svetlana.core.ml.models",
    "svetlana.core.ml.forest",
    "svetlana.core.ml.hybrid",
    "svetlana.core.ml.inference",
    "svetlana.core.ml.training",
    "svetlana.core.objects.neighbours",
)


# A worker's own bookkeeping that would take the interpreter lock from the tasks every few
# milliseconds (a statistical profiler at 10 ms, a GIL monitor at 1 ms): off. The event loops'
# tick (every 20 ms), the machine's statistics for a dashboard nobody looks at (500 ms) and each
# nanny's look at its worker's memory (100 ms) less often: an idle local cluster of 2 workers
# used 0.08 CPU s per wall second with the defaults, 0.015 with these.
QUIET_WORKER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


def _fork_server(env: dict[str, str]) -> dict:
    """The dask config that starts local workers by forking a fork server that imported
    ``WORKER_MODULES`` once (a clean single-threaded process, not this one), where the platform
    has one; spawned fresh processes elsewhere (each imports everything again). The fork server
    starts now, with the workers' ``env`` (set here, see ``_environ_kept``): it imports while this
    process imports distributed and starts the scheduler."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return {}
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(WORKER_MODULES))
    os.environ.update(env)  # numpy's thread pools are sized as the fork server imports it
    forkserver.ensure_running()
    import distributed.utils

    # distributed's first call of get_mp_context would import every package it knows of (pandas,
    # ~0.3 s of CPU) into this process to preload them: the list above replaces its list.
    distributed.utils._forkserver_preload_set = True
    return {"distributed.worker.multiprocessing-method": "forkserver"}


class _ShutdownNoise(logging.Filter):
    """Drops the closed-connection errors a normal shutdown of a cluster logs (kept at -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        names = ("CommClosedError", "StreamClosedError")
        if any(n in text for n in names) or (exc is not None and type(exc).__name__ in names):
            return logging.getLogger().getEffectiveLevel() <= logging.DEBUG
        return True


def _noisy_loggers() -> list[logging.Logger]:
    """A filter sees only its own logger's records: every logger of distributed (imported by
    now), and those that report an asyncio or tornado callback's error."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    return [logging.getLogger(n) for n in ("distributed", *names, "asyncio", "tornado.application")]


def dask_setup(worker=None) -> None:
    """Run by each local worker as it starts (this module is its ``preload``): a worker's own
    terminal output drops the closed connections of a normal shutdown too (a heartbeat that
    finds the scheduler gone), and the numerical libraries' thread pools take this run's share of
    the cores: they were sized when the fork server imported them, for the first run of the
    process (the window keeps one fork server: a run with 2 workers after one with 1 would
    otherwise run 2 x 2 threads on 2 cores)."""
    noise = _ShutdownNoise()
    for lg in _noisy_loggers():
        lg.addFilter(noise)
    threads = os.environ.get("OMP_NUM_THREADS", "")  # set by the nanny: dask_client's ``env``
    if threads.isdigit() and int(threads) > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))


@contextlib.contextmanager
def quiet_distributed() -> Iterator[int]:
    """``distributed``'s logs through the application's handlers (the terminal, or the log file
    of the window) at WARNING, INFO with ``-v`` (the root logger at DEBUG); the closed-connection
    errors of a normal shutdown dropped. Yields the level given to local workers."""
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    level = logging.INFO if verbose else logging.WARNING
    dist = logging.getLogger("distributed")
    saved = (dist.level, dist.propagate, list(dist.handlers), list(dist.filters))
    noise = _ShutdownNoise()
    loggers = _noisy_loggers()
    dist.setLevel(level)
    dist.propagate = True
    for h in saved[2]:
        dist.removeHandler(h)
    for lg in loggers:
        lg.addFilter(noise)
    try:
        yield level
    finally:
        for lg in loggers:
            lg.removeFilter(noise)
        dist.setLevel(saved[0])
        dist.propagate = saved[1]
        for h in saved[2]:
            dist.addHandler(h)


# What a nanny sets in this process before it starts a worker (distributed's pre-spawn environment).
_SPAWN_ENV = (*THREAD_ENV, "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


@contextlib.contextmanager
def _environ_kept(names: Sequence[str] = _SPAWN_ENV) -> Iterator[None]:
    """This process's environment variables ``names`` as they were, after the cluster: a nanny
    sets the workers' ones here before it starts them (``SVETLANA_MEASURE_THREADS=1`` would
    otherwise measure on one thread in the window after a run on workers)."""
    saved = {k: os.environ.get(k) for k in names}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A ``distributed.Client`` to a new ``LocalCluster`` of ``workers`` processes sharing the
    cores (``worker_threads`` each, the numerical libraries told so too), or to the scheduler at
    ``scheduler`` (closed, with the local cluster, on exit); quiet (``quiet_distributed``)."""
    if not scheduler and (workers is None or workers < 1):
        raise InputError(f"--workers must be at least 1 (got {workers})")
    threads = worker_threads(workers or 1)
    env = {k: str(threads) for k in THREAD_ENV}
    with _environ_kept():
        try:
            fork = {} if scheduler else _fork_server(env)  # first: it imports meanwhile
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - a packaging problem
            raise InputError("distributed prediction needs the 'distributed' package") from exc
        with quiet_distributed() as level:
            if scheduler:
                client = connect(scheduler)
                with client:
                    yield client
                return
            spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **env}
            # distributed's default has glibc give freed memory back to the system above 64 kB
            # (long-lived pandas workers fragment): here every image's arrays were faulted in
            # again, +25% CPU per image (3.5 -> 4.4 CPU s per 100 small images, 4x the faults).
            spawn_env.pop("MALLOC_TRIM_THRESHOLD_", None)
            with (
                dask.config.set(
                    {"distributed.nanny.pre-spawn-environ": spawn_env, **QUIET_WORKER, **fork}
                ),
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=True,
                    dashboard_address=None,  # no web dashboard: nobody looks, it costs a start
                    silence_logs=level,
                    preload=[__name__],  # dask_setup, in each worker
                    env=env,
                ) as cluster,
                Client(cluster) as client,
            ):
                yield client


# Seconds to wait for a scheduler to answer: a wrong port (a server that is not Dask's) must not
# hang the command.
CONNECT_TIMEOUT_S = 20.0
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
_HINT = "start one with `dask scheduler`, which prints its address, e.g. tcp://HOST:8786"


def connect(scheduler: str, timeout_s: float | None = None):
    """A ``distributed.Client`` to the scheduler at ``scheduler``, or a clear ``InputError`` for a
    wrong scheme, an address nobody listens at, or one that does not answer as Dask within
    ``timeout_s`` (the connection is tried on a daemon thread: a silent server cannot hang it)."""
    import threading

    from distributed import Client

    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    scheme = scheduler.split("://", 1)[0].lower() if "://" in scheduler else "tcp"
    if scheme not in SCHEMES:
        raise InputError(
            f"--scheduler {scheduler!r}: unknown address scheme {scheme!r} (a Dask scheduler's "
            f"address starts with {' or '.join(s + '://' for s in SCHEMES[:2])})",
            hint=_HINT,
        )
    box: dict = {}

    def attempt() -> None:
        try:
            box["client"] = Client(scheduler, timeout=f"{timeout_s}s")
        except BaseException as exc:  # noqa: BLE001 - reported below, on the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=attempt, name="dask-connect", daemon=True)
    thread.start()
    thread.join(timeout_s + 1)
    if "client" in box:
        return box["client"]
    exc = box.get("error")
    if exc is None:
        raise InputError(
            f"no Dask scheduler answered at {scheduler} within {timeout_s:.0f} s: something "
            "listens there, but not a Dask scheduler (wrong port?)",
            hint=_HINT,
        )
    if isinstance(exc, (OSError, TimeoutError)):
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}", hint=_HINT)
    if isinstance(exc, ValueError):
        raise InputError(f"--scheduler {scheduler!r} is not a Dask address: {exc}", hint=_HINT)
    raise exc


# Input bytes (image + mask) one cluster task reads at most: small images go a few per task (a
# task costs the scheduler, the client and the worker ~10 ms of CPU in all; a 256x256 image
# ~30 ms), a large one alone.
CHUNK_BYTES = 4 << 20


def chunks(tasks: Sequence[PairTask], threads: int) -> list[tuple[PairTask, ...]]:
    """The tasks in order, cut into cluster tasks of at most ``CHUNK_BYTES`` of input each, that
    shrink towards the end (at most 1/4 of what is left per thread) so that ``threads`` threads
    finish together; a pair alone when its files cannot be read (its task says why)."""

    def size(t: PairTask) -> int:
        try:
            return sum(os.stat(p).st_size for p in (t.image_path, t.mask_path) if p)
        except OSError:
            return CHUNK_BYTES

    sizes = [size(t) for t in tasks]
    out: list[tuple[PairTask, ...]] = []
    i, n = 0, len(tasks)
    while i < n:
        cap = max(1, math.ceil((n - i) / (4 * max(1, threads))))
        j, read = i + 1, sizes[i]
        while j < n and j - i < cap and read + sizes[j] <= CHUNK_BYTES:
            read += sizes[j]
            j += 1
        out.append(tuple(tasks[i:j]))
        i = j
    return out


def run_on_client(
    client, tasks: Sequence[PairTask], cancel: CancelToken | None = None
) -> Iterator[PairResult]:
    """The pairs a few at a time (``chunks``) as Dask tasks; results as they complete (a lost
    task becomes an error line for each of its images)."""
    from distributed import as_completed

    if not tasks:
        return
    cancel = ensure_token(cancel)
    threads = sum(client.nthreads().values()) or len(tasks)  # none yet (scaling up): one each
    groups = chunks(tasks, threads)
    run = uuid.uuid4().hex[:8]
    keys = [f"svetlana-predict-{run}-{k}" for k in range(len(groups))]
    futures = client.map(predict_pairs, groups, key=keys, retries=RETRIES, pure=False)
    by_key = {f.key: g for f, g in zip(futures, groups, strict=True)}
    ac = as_completed(futures)
    try:
        while not ac.is_empty():
            cancel.raise_if_cancelled()
            if not ac.has_ready():
                time.sleep(0.05)
                continue
            for fut in ac.next_batch(block=False):
                group = by_key[fut.key]
                try:
                    results = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker lost it for good
                    log.debug("task %s failed", [t.image for t in group], exc_info=True)
                    why = f"the task failed on the cluster: {type(exc).__name__}: {exc}"
                    results = [PairResult(t.image, error=why, file=t.image_path) for t in group]
                finally:
                    fut.release()
                yield from results
    finally:
        client.cancel([f for f in futures if not f.done()])

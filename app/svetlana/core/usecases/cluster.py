"""Run folder-prediction tasks on a Dask cluster: a local one of N workers, or one at an address."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, ensure_token
from svetlana.core.usecases.batch import PairResult, PairTask, predict_pair

log = logging.getLogger(__name__)

# A task whose worker dies is re-run by the scheduler (up to distributed's allowed-failures);
# retries= re-runs a task that raised (a file system hiccup): user-data errors are results.
RETRIES = 2


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A ``distributed.Client`` to a new ``LocalCluster`` of ``workers`` single-threaded
    processes, or to the scheduler at ``scheduler`` (closed, with the local cluster, on exit)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a packaging problem
        raise InputError("distributed prediction needs the 'distributed' package") from exc
    if scheduler:
        client = connect(scheduler)
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
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


def run_on_client(
    client, tasks: Sequence[PairTask], cancel: CancelToken | None = None
) -> Iterator[PairResult]:
    """One Dask task per pair; results as they complete (a lost task becomes its error line)."""
    from distributed import as_completed

    if not tasks:
        return
    cancel = ensure_token(cancel)
    run = uuid.uuid4().hex[:8]
    keys = [f"svetlana-predict-{run}-{k}" for k in range(len(tasks))]
    futures = client.map(predict_pair, list(tasks), key=keys, retries=RETRIES, pure=False)
    by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
    ac = as_completed(futures)
    try:
        while not ac.is_empty():
            cancel.raise_if_cancelled()
            if not ac.has_ready():
                time.sleep(0.05)
                continue
            for fut in ac.next_batch(block=False):
                task = by_key[fut.key]
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker lost it for good
                    log.debug("task %s failed", task.image, exc_info=True)
                    yield PairResult(
                        task.image,
                        error=f"the task failed on the cluster: {type(exc).__name__}: {exc}",
                        file=task.image_path,
                    )
                finally:
                    fut.release()
    finally:
        client.cancel([f for f in futures if not f.done()])

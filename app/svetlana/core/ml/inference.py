"""Apply a trained network to object patches: class probabilities, uncertainty, class masks."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from svetlana.core.errors import InputError, ModelError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token
from svetlana.core.ml._torch import load_torch

log = logging.getLogger(__name__)

# Largest object id for which class_mask uses a dense lookup table (4 bytes/entry at most);
# beyond it a sorted search is used, so huge sparse ids cost no memory.
# Threads: unlike training's small batches, inference batches of 512 give each op enough work.
# Minimal net, 4000 patches 2x32x32 on the 2-core dev machine: idle, 1 thread 1.1-1.3 s vs
# 2 threads 0.7 s; with the other core busy, 1.9-2.0 s vs 2.1-2.5 s. So threads=None uses
# torch's default (one per core).
# Inference runs on a copy of the network with each BatchNorm folded into its convolution
# (same outputs to ~1e-6), in channels-last memory layout, in batches of 256. Minimal net,
# 16,671 patches 2x34x34, 1 thread, loaded machine: 10.4 s as trained -> 5.9 s channels-last
# -> 1.0 s folded + channels-last (batch 1024: 3.1 s; batches of 256 stay in cache).
# On the CPU with more than one thread, each thread takes whole batches (reads its patches and
# runs the network on one torch thread) instead of torch splitting every operation over its
# threads: the same values bit for bit (a batch's outputs do not depend on torch's thread
# count), no per-operation hand-off, and the patch reading (lazy images: tiles decompressed
# and cut) overlaps the network. Default CNN, 25,921 lazy patches 2x26x26, 2 cores at load ~7:
# torch on 2 threads 16.1 CPU s (its threads spin while waiting for each other), 1 thread
# 2.2 s; 2 batch threads x 1 torch thread, patches included, 4.4 s.
BATCH_SIZE = 256


def predict_probabilities(
    model,
    patches: Any,
    *,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Softmax class probabilities ``(N, K)`` float32 for every patch.

    ``patches`` is an array ``(N, C, ...)`` or a lazy source with ``len()`` and
    ``source[a:b] -> ndarray``; it is read one batch at a time. ``threads`` = torch CPU
    threads (None: one per core). The model is left in its previous mode, on the CPU.
    """
    torch = load_torch("fx")

    from svetlana.core.ml.training import resolve_device, torch_threads

    if batch_size < 1:
        raise InputError(f"batch size must be positive, not {batch_size}")
    cancel = ensure_token(cancel)
    device = resolve_device(device)
    n = len(patches)
    batches = max(1, -(-n // batch_size))
    out: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    n_threads = (
        threads if threads is not None else (torch.get_num_threads() if device == "cpu" else 1)
    )
    workers = max(1, min(n_threads, batches)) if device == "cpu" else 1

    def report(done: int) -> None:
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(
                Progress(
                    stage="predict",
                    done=done,
                    total=batches,
                    message=f"{min(done * batch_size, n)}/{n} objects",
                    eta_s=elapsed / max(done, 1) * (batches - done),
                )
            )

    # one torch thread per batch thread (see BATCH_SIZE)
    with torch_threads(1 if workers > 1 else max(1, n_threads)), torch.inference_mode():
        try:
            model.to(device)
            net, layout = _inference_net(model, device)

            def one(start: int) -> np.ndarray:
                batch = np.ascontiguousarray(patches[start : start + batch_size], dtype=np.float32)
                try:
                    with torch.inference_mode():  # per thread
                        x = torch.from_numpy(batch).to(device)
                        if layout is not None and x.ndim in layout:
                            x = x.contiguous(memory_format=layout[x.ndim])
                        logits = net(x)
                        return torch.softmax(logits.float(), dim=1).cpu().numpy()
                except torch.OutOfMemoryError:
                    raise
                except RuntimeError as exc:
                    raise ModelError(
                        f"the network cannot be applied to patches of shape "
                        f"{tuple(batch.shape[1:])}: {exc}"
                    ) from exc

            starts = list(range(0, n, batch_size))
            if workers == 1:
                for i, start in enumerate(starts):
                    cancel.raise_if_cancelled()
                    out.append(one(start))
                    report(i + 1)
            else:
                cancel.raise_if_cancelled()
                first = one(starts[0])  # the outputs' width, before the threads fill the rows
                report(1)
                probs = np.empty((n, first.shape[1]), np.float32)
                probs[: len(first)] = first
                _in_batch_threads(one, starts[1:], probs, workers, cancel, report)
                return probs
        except torch.OutOfMemoryError as exc:
            raise ModelError(
                "the GPU ran out of memory; try a smaller batch size or --device cpu"
            ) from exc
        finally:
            model.cpu()
            model.train(was_training)
    if not out:
        n_classes = _n_outputs(model)
        return np.zeros((0, n_classes), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def _in_batch_threads(one, starts: list[int], probs: np.ndarray, workers: int, cancel, report):
    """``probs[s : s + batch] = one(s)`` for each of ``starts`` on ``workers`` threads, each
    taking the next batch; progress (every batch once, in order) and cancellation on the calling
    thread, a batch's error raised here. Freed memory goes back to the system every 64 batches:
    the threads' temporaries interleave in the heap, which otherwise keeps its high-water mark
    (20,000², default CNN: 1.23 GB at the peak without it, 754 MB on one thread)."""
    import threading

    from svetlana.core.jobs import run_threads
    from svetlana.core.objects.measure_lazy import release_memory

    state = {"next": 0, "done": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set() and not cancel.cancelled:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(starts):
                return
            part = one(starts[i])
            probs[starts[i] : starts[i] + len(part)] = part
            with lock:
                state["done"] += 1

    reported = [0]

    def each() -> None:
        while reported[0] < state["done"]:
            reported[0] += 1
            report(reported[0] + 1)  # the first batch was reported before
            if reported[0] % 64 == 0:
                release_memory()

    run_threads([run] * workers, cancel=cancel, stop=stop, name="predict", report=each)


def _inference_net(model, device: str):
    """(network, layouts): an eval-mode copy with BatchNorm folded into convolutions, or ``model``.

    ``layouts`` maps input ndim to the channels-last memory format used on the CPU (None
    elsewhere). Networks that cannot be traced (dynamic control flow) are used as is.
    """
    torch = load_torch("fx")

    net = model
    try:
        from torch.fx.experimental.optimization import fuse

        if isinstance(model, torch.nn.Module):
            net = fuse(model)  # a traced copy; the caller's model is untouched
    except Exception as exc:  # noqa: BLE001 - any tracing failure: fall back to the model itself
        log.debug("BatchNorm folding skipped: %s", exc)
        net = model
    if device != "cpu" or net is model:  # never change the layout of the caller's model
        return net, None
    dims = {p.ndim for p in net.parameters()} & {4, 5}
    if len(dims) != 1:
        return net, None
    layout = torch.channels_last if dims == {4} else torch.channels_last_3d
    net = net.to(memory_format=layout)
    return net, {dims.pop(): layout}


def _n_outputs(model) -> int:
    fc = getattr(model, "fc", None)
    return int(getattr(fc, "out_features", 0))


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy per row: 0 = certain, 1 = uniform over the K classes."""
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[1] if probs.ndim == 2 else 0
    if k < 2:
        return np.zeros(len(probs), np.float32)
    p = np.clip(probs, 1e-12, 1.0)
    entropy = -(probs * np.log(p)).sum(axis=1)
    return np.clip(entropy / np.log(k), 0.0, 1.0).astype(np.float32)

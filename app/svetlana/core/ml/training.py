"""Train a classifier on object patches: train(..., progress, cancel) (TrainingConfig is
training_config.py's, re-exported here).

~440 lines: one training loop (config, sampler, augmentation, early stopping, BatchNorm
recalibration, metrics) whose parts only make sense together.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from svetlana.core.errors import InputError, TrainingError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn, ensure_token
from svetlana.core.ml._torch import load_torch
from svetlana.core.ml.models import build_model, count_parameters
from svetlana.core.ml.training_config import (  # noqa: F401 - re-exported
    AUGMENTATIONS,
    DEVICES,
    LOSSES,
    TrainingConfig,
    _finite,
)

log = logging.getLogger(__name__)

EARLY_STOPPING_PATIENCE = 10
# Networks up to this many parameters train fastest on one CPU thread (see the numbers below).
SMALL_NET_PARAMS = 100_000
_EVAL_BATCH = 512


# Thread count, measured on the 2-core dev machine (torch 2.13 CPU), 100 patches 2x32x32
# (80 train / 20 val), default settings, whole train() call, 3 runs each:
#   minimal (2.7k params), idle machine:        1 thread 1.9 s,  2 threads 1.6-2.3 s
#   minimal, other core busy (GUI, a 2nd job):  1 thread 3.0 s,  2 threads 10.4-12.5 s
#   resnet18 (11M params), idle, per epoch:     1 thread 4.1 s,  2 threads 2.3 s
# Two threads barely help a tiny network and are ~3.5x slower as soon as anything else runs
# (each op waits for a preempted worker), so threads=None picks 1 thread for small networks
# and torch's default (one per core) for big ones, where the work per op is worth splitting.
@dataclass(frozen=True)
class TrainingResult:
    """A trained model (eval mode, CPU) with its per-epoch history and final metrics."""

    model: object
    history: tuple[dict, ...]
    metrics: dict
    device: str
    seconds: float
    threads: int


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> cuda if available, else mps, else cpu; an unavailable request raises."""
    torch = load_torch()

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        if not cuda:
            raise TrainingError("no CUDA GPU is available; use --device cpu")
        return "cuda"
    if name == "mps":
        if not mps:
            raise TrainingError("Apple MPS is not available; use --device cpu")
        return "mps"
    raise TrainingError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


def compute_metrics(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    k = int(n_classes)
    confusion = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    n = int(support.sum())
    present = support > 0
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": [
            {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(k)
        ],
        "confusion": confusion.tolist(),
    }


def choose_threads(model, device: str, requested: int | None) -> int:
    """Torch CPU threads for this model: tiny networks run fastest on one thread."""
    torch = load_torch()

    if requested is not None:
        return requested
    if device != "cpu" or count_parameters(model) <= SMALL_NET_PARAMS:
        return 1
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op thread count for a block, then restore the previous one."""
    torch = load_torch()

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    torch = load_torch()

    was = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def _split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split; every labelled class keeps at least one training example."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(int(round(len(idx) * fraction)), len(idx) - 1) if fraction > 0 else 0
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _check_inputs(patches: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if not isinstance(patches, np.ndarray) or patches.ndim not in (4, 5):
        raise InputError("patches must be an array (N, C, H, W) or (N, C, D, H, W)")
    if labels.ndim != 1 or len(labels) != len(patches):
        raise InputError(f"got {len(patches)} patches but {labels.size} labels")
    if n_classes < 2:
        raise TrainingError("define at least two classes before training")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputError(f"labels must be class indices 0..{n_classes - 1}")
    present = np.unique(labels)
    if len(present) < 2:
        raise TrainingError(
            "only one class is labelled: label objects of at least two classes"
            if len(present)
            else "no object is labelled: label objects of at least two classes"
        )


def _augment(x, mode: str, gen, spatial_dims: int):
    """Random augmentation of a batch (B, C, [D,] H, W), vectorised; the last channel is the mask."""
    torch = load_torch()

    if mode == "none":
        return x
    b = x.shape[0]
    view = (b,) + (1,) * (x.ndim - 1)

    def coin(p: float = 0.5):
        return (torch.rand(b, generator=gen) < p).to(x.device).view(view)

    for axis in range(2, x.ndim):  # flip each spatial axis (Z too in 3D)
        x = torch.where(coin(), x.flip(axis), x)
    if mode in ("flips+rot90", "full") and x.shape[-1] == x.shape[-2]:
        # A random YX transpose plus the random flips above spans all 8 rotations/reflections.
        x = torch.where(coin(), x.transpose(-1, -2), x)
    if mode == "full":
        img, mask = x[:, :-1], x[:, -1:]
        if img.shape[1]:
            scale = (0.8 + 0.4 * torch.rand(view, generator=gen)).to(x.device)
            shift = (0.2 * torch.rand(view, generator=gen) - 0.1).to(x.device)
            img = img * scale + shift
            sigma = (0.05 * torch.rand(view, generator=gen)).to(x.device)
            img = img + sigma * torch.randn(img.shape, generator=gen).to(x.device)
            img = torch.where(coin(0.3), _blur_yx(img, spatial_dims), img)
        x = torch.cat([img, mask], dim=1)
    return x.contiguous()


def _blur_yx(img, spatial_dims: int):
    """Slight Gaussian blur (sigma ~0.7 px) in the YX plane, per channel."""
    torch = load_torch()
    import torch.nn.functional as F

    k1 = torch.tensor([0.25, 0.5, 0.25], dtype=img.dtype, device=img.device)
    k2 = torch.outer(k1, k1)
    c = img.shape[1]
    if spatial_dims == 2:
        weight = k2.expand(c, 1, 3, 3)
        return F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), weight, groups=c)
    weight = k2.view(1, 3, 3).expand(c, 1, 1, 3, 3)
    return F.conv3d(F.pad(img, (1, 1, 1, 1, 0, 0), mode="replicate"), weight, groups=c)


def _loss_fn(name: str, class_weights):
    torch = load_torch()
    import torch.nn.functional as F

    def loss(logits, y):
        if name == "ce":
            return F.cross_entropy(logits, y)
        if name == "weighted-ce":
            return F.cross_entropy(logits, y, weight=class_weights.to(logits.device))
        if name == "focal":  # gamma = 2 (Lin et al. 2017)
            ce = F.cross_entropy(logits, y, reduction="none")
            return ((1 - torch.exp(-ce)) ** 2 * ce).mean()
        onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        if name == "bce":
            return F.binary_cross_entropy_with_logits(logits, onehot)
        return F.mse_loss(torch.softmax(logits, dim=1), onehot)  # "mse"

    return loss


def _recalibrate_batchnorm(model, x, device: str) -> None:
    """Recompute BatchNorm running statistics as exact averages over the training patches.

    During training they are exponential averages (momentum 0.1) that lag behind the weights;
    after a short run (few labels, few epochs) they are far from the batch statistics the
    network was trained with, and in eval mode a deeper network then answers one class for
    everything (the small CNN after 3 epochs on 12 bright/dim objects: 50 % -> 100 %).
    """
    torch = load_torch()
    from torch.optim.swa_utils import update_bn

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    update_bn((x[i : i + _EVAL_BATCH].to(device) for i in range(0, len(x), _EVAL_BATCH)), model)


def _evaluate(model, x, y, loss_fn, device: str) -> tuple[float, np.ndarray]:
    """Mean loss and predicted classes of ``model`` (eval mode) on tensors ``x``, ``y``."""
    torch = load_torch()

    model.eval()
    total, preds = 0.0, []
    with torch.inference_mode():
        for start in range(0, len(x), _EVAL_BATCH):
            xb = x[start : start + _EVAL_BATCH].to(device)
            yb = y[start : start + _EVAL_BATCH].to(device)
            logits = model(xb)
            total += float(loss_fn(logits, yb)) * len(xb)
            preds.append(logits.argmax(1).cpu().numpy())
    return total / max(len(x), 1), np.concatenate(preds) if preds else np.zeros(0, np.int64)


def train(
    patches: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    config: TrainingConfig,
    *,
    model=None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TrainingResult:
    """Train ``model`` (or a fresh ``config.arch``) on labelled patches; deterministic on CPU."""
    torch = load_torch("train")

    labels = np.asarray(labels).astype(np.int64, copy=False).ravel()
    _check_inputs(patches, labels, n_classes)
    cancel = ensure_token(cancel)
    cancel.raise_if_cancelled()
    device = resolve_device(config.device)
    spatial_dims = patches.ndim - 2
    train_idx, val_idx = _split(labels, config.val_fraction, config.seed)
    x_all = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
    y_all = torch.from_numpy(labels)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    counts = np.bincount(labels[train_idx], minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * counts.clip(1)), 0)
    loss_fn = _loss_fn(config.loss, torch.tensor(weights, dtype=torch.float32))

    started = time.perf_counter()
    # fork_rng: seeding must not disturb the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]), _deterministic():
        torch.manual_seed(config.seed)
        if model is None:
            model = build_model(config.arch, patches.shape[1], n_classes, spatial_dims)
        threads = choose_threads(model, device, config.threads)
        with torch_threads(threads):
            try:
                history, best_state = _fit(
                    model, x_train, y_train, x_val, y_val, loss_fn, config, device,
                    spatial_dims, progress, cancel,
                )  # fmt: skip
                if best_state is not None:
                    model.load_state_dict(best_state)
                _recalibrate_batchnorm(model, x_train, device)
                if len(val_idx):
                    _, pred = _evaluate(model, x_val, y_val, loss_fn, device)
                    metrics = compute_metrics(labels[val_idx], pred, n_classes)
                else:
                    _, pred = _evaluate(model, x_train, y_train, loss_fn, device)
                    metrics = compute_metrics(labels[train_idx], pred, n_classes)
            except torch.OutOfMemoryError as exc:
                raise TrainingError(
                    "the GPU ran out of memory; try a smaller batch size or --device cpu"
                ) from exc
            except RuntimeError as exc:  # e.g. a user network that does not fit the patches
                raise TrainingError(
                    f"the network cannot be trained on patches of shape "
                    f"{tuple(patches.shape[1:])}: {str(exc).splitlines()[0]}"
                ) from exc
            finally:
                model.cpu().eval()
                if device == "cuda":
                    torch.cuda.empty_cache()
    metrics["n_train"] = int(len(train_idx))
    metrics["n_val"] = int(len(val_idx))
    seconds = time.perf_counter() - started
    log.info(
        "trained %s for %d epochs on %s (%d threads) in %.1f s; accuracy %.3f",
        config.arch, len(history), device, threads, seconds, metrics["accuracy"],
    )  # fmt: skip
    return TrainingResult(model, tuple(history), metrics, device, seconds, threads)


def _fit(model, x_train, y_train, x_val, y_val, loss_fn, config, device, spatial_dims,
         progress, cancel):  # fmt: skip
    torch = load_torch("train")

    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    # A short linear warm-up (BatchNorm statistics settle before the large steps; without it
    # about one 3D run in nine fell into a bad minimum at lr 1e-2), then cosine decay: large
    # steps early, a calm finish so the last epoch's model is a good one.
    warmup = min(max(3, config.epochs // 12), max(config.epochs - 1, 1))

    def lr_factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / warmup
        t = (epoch - warmup) / max(config.epochs - warmup, 1)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    gen = torch.Generator().manual_seed(config.seed)
    n = len(x_train)
    batch = min(config.batch_size, n)
    history: list[dict] = []
    best_loss, best_state, since_best = math.inf, None, 0
    epoch_times: list[float] = []
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            if len(idx) == 1 and batch > 1:
                continue  # BatchNorm cannot train on a batch of one; it is reshuffled next epoch
            cancel.raise_if_cancelled()
            xb = _augment(x_train[idx].to(device), config.augment, gen, spatial_dims)
            yb = y_train[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training diverged at epoch {epoch} (loss is {loss.item()}); "
                    "try a smaller learning rate"
                )
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
        scheduler.step()
        row: dict[str, Any] = {
            "epoch": epoch,
            "loss": total_loss / max(seen, 1),
            "accuracy": correct / max(seen, 1),
            "val_loss": None,
            "val_accuracy": None,
        }
        if len(x_val):
            val_loss, pred = _evaluate(model, x_val, y_val, loss_fn, device)
            row["val_loss"] = val_loss
            row["val_accuracy"] = float((pred == y_val.numpy()).mean())
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        epoch_times.append(row["seconds"])
        if progress is not None:
            eta = float(np.mean(epoch_times)) * (config.epochs - epoch)
            progress(
                Progress(
                    stage="train",
                    done=epoch,
                    total=config.epochs,
                    message=f"epoch {epoch}/{config.epochs}",
                    eta_s=eta,
                    metrics=MappingProxyType(dict(row)),
                )
            )
        if config.early_stopping and row["val_loss"] is not None:
            if row["val_loss"] < best_loss - 1e-6:
                best_loss, since_best = row["val_loss"], 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
                if since_best >= EARLY_STOPPING_PATIENCE:
                    log.info("early stop at epoch %d (best val_loss %.4f)", epoch, best_loss)
                    break
    return history, best_state

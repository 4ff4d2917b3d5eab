"""The hybrid candidate: the forest on the object measurements plus what a network sees.

A network's *embedding* (the features its last layer reads: for ``small``, its 48 features
averaged over the object's mask) is appended to each object's measurements, and the forest is
fitted on both. The network comes from one of two sources:

- ``supervised``: the CNN trained on the labels (as ``--arch small``). Its embedding of a
  labelled object was fitted on that object's label, so the forest would trust it more than it
  deserves on new objects; the labelled objects' columns are therefore computed out of fold
  (``folds`` networks, each embedding the objects it did not see), the others by the network
  fitted on all labels.
- ``pretrained``: a network trained without labels on every object of the project
  (self-supervised, SimCLR-like: two augmented views of an object must embed close to each
  other and far from the other objects; flips, 90-degree rotations, brightness/contrast
  jitter, small shifts), for a bounded time. No label is used, so nothing leaks.

Everything here is numbers; nothing is saved in this module's own format: a hybrid model is the
network's weights (saved as a CNN's, ``core.ml.models``) plus a forest (saved as a forest's,
``core.ml.forest``) whose measurement names end with the embedding's columns ``cnn_emb_0..``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from svetlana.core.jobs import CancelToken, ensure_token
from svetlana.core.ml._torch import load_torch

log = logging.getLogger(__name__)

EMBEDDING_PREFIX = "cnn_emb_"
PROJECTION = 64  # SimCLR's projection head output (discarded after pretraining)
TEMPERATURE = 0.2


def embedding_names(n: int) -> tuple[str, ...]:
    return tuple(f"{EMBEDDING_PREFIX}{i}" for i in range(n))


def embed(model, patches: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``(N, D)`` float32: the input of the network's final linear layer ``fc`` per patch."""
    torch = load_torch()

    captured: list[np.ndarray] = []
    hook = model.fc.register_forward_pre_hook(
        lambda _m, args: captured.append(args[0].detach().cpu().numpy())
    )
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(patches), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[i : i + batch_size], np.float32))
                model(x)
    finally:
        hook.remove()
        model.train(was)
    if not captured:
        return np.zeros((0, model.fc.in_features), np.float32)
    return np.concatenate(captured).astype(np.float32)


# ---- self-supervised pretraining ------------------------------------------------------------


def _views(x, gen, shift: int):
    """One random view of a batch (B, C, H, W) whose last channel is the mask."""
    torch = load_torch()
    from svetlana.core.ml.training import _augment

    x = _augment(x, "flips+rot90", gen, x.ndim - 2)
    b = x.shape[0]
    view = (b,) + (1,) * (x.ndim - 1)
    img, mask = x[:, :-1], x[:, -1:]
    if img.shape[1]:
        scale = 0.7 + 0.6 * torch.rand(view, generator=gen)
        offset = 0.3 * torch.rand(view, generator=gen) - 0.15
        gamma = torch.exp(0.4 * torch.rand(view, generator=gen) - 0.2)
        img = (img.clamp(min=0) ** gamma) * scale + offset
        img = img + 0.05 * torch.rand(view, generator=gen) * torch.randn(img.shape, generator=gen)
    x = torch.cat([img, mask], 1)
    if shift:
        dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
        x = torch.roll(x, (dy, dx), (-2, -1))
    return x.contiguous()


@dataclass(frozen=True)
class Pretrained:
    model: object  # the network (its ``fc`` is the projection head; embed() reads fc's input)
    epochs: float  # passes over the objects completed
    seconds: float
    steps: int


def pretrain(
    patches: np.ndarray,
    *,
    arch: str = "small",
    seconds: float = 45.0,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    max_epochs: int = 30,
    shift: int = 3,
    cancel: CancelToken | None = None,
) -> Pretrained:
    """SimCLR-like pretraining of ``arch`` on unlabelled patches, for at most ``seconds``."""
    torch = load_torch("train")
    import torch.nn.functional as F

    from svetlana.core.ml.models import build_model
    from svetlana.core.ml.training import _deterministic, torch_threads

    cancel = ensure_token(cancel)
    started = time.perf_counter()
    n = len(patches)
    x_all = torch.from_numpy(np.ascontiguousarray(patches, np.float32))
    spatial = patches.ndim - 2
    with torch.random.fork_rng(devices=[]), _deterministic(), torch_threads(1):
        torch.manual_seed(seed)
        model = build_model(arch, patches.shape[1], PROJECTION, spatial)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed)
        batch = max(2, min(batch_size, n))
        steps_per_epoch = max(1, n // batch)
        total_steps = steps_per_epoch * max_epochs
        step = 0
        model.train()
        while step < total_steps:
            order = torch.randperm(n, generator=gen)
            for s in range(steps_per_epoch):
                cancel.raise_if_cancelled()
                if time.perf_counter() - started > seconds:
                    break
                idx = order[s * batch : (s + 1) * batch]
                xb = x_all[idx]
                z = torch.cat([model(_views(xb, gen, shift)), model(_views(xb, gen, shift))])
                z = F.normalize(z, dim=1)
                sim = z @ z.T / TEMPERATURE
                sim.fill_diagonal_(-1e9)
                m = len(idx)
                target = torch.cat([torch.arange(m, 2 * m), torch.arange(0, m)])
                loss = F.cross_entropy(sim, target)
                for g in opt.param_groups:  # cosine decay over the planned steps
                    g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1)))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            else:
                continue
            break
        from svetlana.core.ml.training import _recalibrate_batchnorm

        _recalibrate_batchnorm(model, x_all, "cpu")
        model.eval()
    took = time.perf_counter() - started
    log.info("pretrained %s on %d objects: %d steps (%.1f epochs) in %.1f s",
             arch, n, step, step / steps_per_epoch, took)  # fmt: skip
    return Pretrained(model, step / steps_per_epoch, took, step)


# ---- the supervised embedding, out of fold ---------------------------------------------------


def oof_embeddings(patches, labels, n_classes, config, folds, cancel=None):
    """Embeddings of the labelled patches, each from a network that did not see its label
    (``folds``: (train, validation) index pairs covering every labelled object)."""
    from svetlana.core.ml.training import train

    out = None
    for tr, va in folds:
        r = train(patches[tr], labels[tr], n_classes, config, cancel=cancel)
        e = embed(r.model, patches[va])
        if out is None:
            out = np.zeros((len(labels), e.shape[1]), np.float32)
        out[va] = e
    return out

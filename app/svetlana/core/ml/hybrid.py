"""The hybrid candidate: the forest on the object measurements plus what a CNN sees.

What the app uses (``auto --mode thorough``, core/ml/choosing.py): **stacking**. The forest is
fitted on each labelled object's measurements plus the CNN's class probabilities for it, taken
*out of fold* (from the cross-validation network that did not see that label), so the forest
trusts the CNN as much as it earned on unseen objects; a new object's probabilities come from
the CNN fitted on every label (``HybridModel``). Saved as the two kinds are: the CNN's weights
(``weights.pt``, core/ml/models.py) and the forest (``forest.npz``, core/ml/forest.py), whose
measurement names end with one ``cnn_p_<class>`` column per class; nothing is pickled.

Measured, not used by the app (tests/benchmarks/README.md, *CNN with few labels*):
``embed`` (a network's penultimate features) and ``pretrain`` (a SimCLR-like self-supervised
pretraining on every object, without labels: flips, 90-degree rotations, brightness/contrast/
gamma jitter, noise, small shifts), bounded in time. On 2 CPU cores neither paid within ~60 s.
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


def embed(model, patches: np.ndarray, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """``(N, D)`` float32: the input of the network's final linear layer ``fc`` per patch
    (computed on ``device``; the network is left on the CPU)."""
    torch = load_torch()
    from svetlana.core.ml.training import resolve_device

    device = resolve_device(device)

    captured: list[np.ndarray] = []
    hook = model.fc.register_forward_pre_hook(
        lambda _m, args: captured.append(args[0].detach().cpu().numpy())
    )
    was = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(patches), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[i : i + batch_size], np.float32))
                model(x.to(device))
    finally:
        hook.remove()
        model.to("cpu").train(was)
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
    device: str = "cpu",
    cancel: CancelToken | None = None,
) -> Pretrained:
    """SimCLR-like pretraining of ``arch`` on unlabelled patches, for at most ``seconds``, on
    ``device`` (``auto``: a GPU when there is one); the views are drawn on the CPU, the same for
    every device; the network is returned on the CPU."""
    torch = load_torch("train")
    import torch.nn.functional as F

    from svetlana.core.ml.models import build_model
    from svetlana.core.ml.training import _deterministic, resolve_device, torch_threads

    cancel = ensure_token(cancel)
    device = resolve_device(device)
    started = time.perf_counter()
    n = len(patches)
    x_all = torch.from_numpy(np.ascontiguousarray(patches, np.float32))
    spatial = patches.ndim - 2
    with torch.random.fork_rng(devices=[]), _deterministic(), torch_threads(1):
        torch.manual_seed(seed)
        model = build_model(arch, patches.shape[1], PROJECTION, spatial).to(device)
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
                v1 = _views(xb, gen, shift).to(device)
                v2 = _views(xb, gen, shift).to(device)
                z = torch.cat([model(v1), model(v2)])
                z = F.normalize(z, dim=1)
                sim = z @ z.T / TEMPERATURE
                sim.fill_diagonal_(-1e9)
                m = len(idx)
                target = torch.cat([torch.arange(m, 2 * m), torch.arange(0, m)]).to(device)
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

        _recalibrate_batchnorm(model, x_all, device)
        model.to("cpu").eval()
    took = time.perf_counter() - started
    log.info("pretrained %s on %d objects: %d steps (%.1f epochs) in %.1f s on %s",
             arch, n, step, step / steps_per_epoch, took, device)  # fmt: skip
    return Pretrained(model, step / steps_per_epoch, took, step)


# ---- the hybrid model: a forest on the measurements + the CNN's probabilities ----------------

HYBRID = "hybrid"  # the card's "kind" and "architecture" of a hybrid model
STACK_PREFIX = "cnn_p_"


def is_hybrid(card: dict) -> bool:
    return isinstance(card, dict) and (
        card.get("kind") == HYBRID or card.get("architecture") == HYBRID
    )


def stacked_names(class_names) -> tuple[str, ...]:
    """The forest's extra columns: the CNN's probability of each class."""
    return tuple(f"{STACK_PREFIX}{c}" for c in class_names)


@dataclass(frozen=True, eq=False)
class HybridModel:
    """A forest on ``measurements`` + the CNN's class probabilities (``stacked``), and the CNN.

    Stacking: the forest was fitted on *out-of-fold* CNN probabilities of the labelled objects
    (from networks that did not see their labels), so it trusts the CNN as much as it earned
    on new objects; a new object's probabilities come from ``cnn``, fitted on every label.
    """

    forest: object  # core.ml.forest.ForestModel, its columns: measurements then stacked
    cnn: object  # the network (eval mode, CPU)
    cnn_arch: str

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.forest.class_names

    @property
    def n_stacked(self) -> int:
        return len(self.class_names)

    @property
    def measurements(self) -> tuple[str, ...]:
        return tuple(self.forest.feature_names[: -self.n_stacked])

    def predict_proba(self, features: np.ndarray, cnn_probs: np.ndarray) -> np.ndarray:
        x = np.concatenate([np.asarray(features, np.float32), np.asarray(cnn_probs, np.float32)], 1)
        return self.forest.predict_proba(x)

    def given(self, cnn_probs: np.ndarray) -> _GivenCnn:
        """A forest-like object over the measurements only (prediction reads measurements by
        ``feature_names``), the CNN's probabilities of the same objects, in order, already in."""
        return _GivenCnn(self, np.asarray(cnn_probs, np.float32))


@dataclass(frozen=True, eq=False)
class _GivenCnn:
    model: HybridModel
    cnn_probs: np.ndarray

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.measurements

    @property
    def card_path(self):
        return getattr(self.model.forest, "card_path", None)

    @property
    def read_features(self) -> tuple[str, ...] | None:
        """The measurements the forest's splits read (its CNN columns are given, not measured);
        None where the forest does not say (then every measurement is read)."""
        read = getattr(self.model.forest, "read_features", None)
        if read is None:
            return None
        measured = set(self.model.measurements)
        return tuple(n for n in read if n in measured)

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(values, self.cnn_probs)


def fit_hybrid(features, feature_names, oof_probs, labels, class_names, cnn, cnn_arch, *,
               seed: int = 0, cancel: CancelToken | None = None) -> HybridModel:  # fmt: skip
    """The forest on measurements + out-of-fold CNN probabilities of the labelled objects."""
    from svetlana.core.ml.forest import fit_forest

    x = np.concatenate([np.asarray(features, np.float32), np.asarray(oof_probs, np.float32)], 1)
    names = tuple(feature_names) + stacked_names(class_names)
    forest = fit_forest(x, labels, class_names, names, seed=seed, cancel=cancel)
    return HybridModel(forest, cnn, cnn_arch)


def save_hybrid(folder, model: HybridModel, card: dict, payload: bytes | None = None) -> None:
    """The CNN's weights as a CNN's (``weights.pt``, a plain state_dict) and the forest as a
    forest's (``forest.npz``, plain arrays); the card last. Nothing here can run code."""
    from svetlana.core.ml.forest import save_forest
    from svetlana.core.ml.models import save_checkpoint

    save_checkpoint(folder, model.cnn, card)
    save_forest(folder, model.forest, card, payload)


def load_hybrid(folder, card: dict) -> HybridModel:
    """A hybrid model folder, each part checked as its kind is (``load_forest``, the safe
    weights loader of ``models``) and both checked against the card."""
    from pathlib import Path

    from svetlana.core.errors import ModelError
    from svetlana.core.ml.forest import load_forest
    from svetlana.core.ml.models import load_network

    folder = Path(folder)
    where = folder / "card.json"
    arch = card.get("cnn_architecture")
    classes = card.get("classes")
    names = card.get("measurements")
    stacked = list(stacked_names(classes or ()))
    if (
        not isinstance(names, list)
        or names[-len(stacked) :] != stacked
        or len(names) <= len(stacked)
    ):
        raise ModelError(
            "the hybrid model's card must list its measurements, then one CNN probability "
            "column per class",
            where,
        )
    if not isinstance(arch, str):
        raise ModelError("the hybrid model's card lacks its 'cnn_architecture'", where)
    cnn = load_network(folder, card, arch)
    forest = load_forest(folder, card)
    return HybridModel(forest, cnn, arch)


def fit_hybrid_cv(features, feature_names, patches, labels, class_names, config, folds, *,
                  cancel: CancelToken | None = None) -> HybridModel:  # fmt: skip
    """A hybrid without the choice (benchmarks): the CNN on each fold for the out-of-fold
    probabilities, the CNN on every label, the forest on measurements + those probabilities."""
    import dataclasses

    from svetlana.core.ml.inference import predict_probabilities
    from svetlana.core.ml.training import train

    y = np.asarray(labels, dtype=np.int64)
    k = len(class_names)
    config = dataclasses.replace(config, val_fraction=0.0, early_stopping=False)
    oof = np.zeros((len(y), k), np.float32)
    for tr, va in folds:
        r = train(patches[tr], y[tr], k, config, cancel=cancel)
        oof[va] = predict_probabilities(r.model, patches[va], device=r.device)
    final = train(patches, y, k, config, cancel=cancel)
    return fit_hybrid(features, feature_names, oof, y, class_names, final.model, config.arch,
                      seed=config.seed, cancel=cancel)  # fmt: skip

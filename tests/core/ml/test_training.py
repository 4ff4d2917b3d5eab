"""Training: learns a separable problem, is reproducible, reports progress, can be cancelled."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from svetlana.core.errors import Cancelled, InputError, TrainingError  # noqa: E402
from svetlana.core.jobs import CancelToken, Progress  # noqa: E402
from svetlana.core.ml.training import (  # noqa: E402
    AUGMENTATIONS,
    LOSSES,
    TrainingConfig,
    compute_metrics,
    resolve_device,
    train,
)

FAST = {"epochs": 3, "val_fraction": 0.0}


def bright_or_dark(n: int, seed: int, size: int = 16, ndim: int = 2):
    """Objects (disk mask channel) whose inside is bright (class 1) or dark (class 0)."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size,) * ndim) - size / 2
    mask = ((grid**2).sum(0) < (size / 3) ** 2).astype(np.float32)
    y = np.arange(n) % 2
    rng.shuffle(y)
    noise = rng.normal(0, 0.3, size=(n,) + mask.shape).astype(np.float32)
    image = noise + np.where(y == 1, 1.0, -1.0)[(...,) + (None,) * ndim] * mask
    x = np.stack([image, np.broadcast_to(mask, image.shape)], axis=1).astype(np.float32)
    return x, y


def test_learns_a_separable_problem_and_generalises() -> None:
    x, y = bright_or_dark(60, seed=0)
    result = train(x, y, 2, TrainingConfig(epochs=15))
    assert result.metrics["n_train"] + result.metrics["n_val"] == 60
    assert result.metrics["accuracy"] == 1.0
    assert (
        result.device == resolve_device("auto") and result.threads == 1
    )  # a GPU where there is one
    assert not result.model.training
    xt, yt = bright_or_dark(100, seed=1)
    with torch.no_grad():
        pred = result.model(torch.from_numpy(xt)).argmax(1).numpy()
    assert (pred == yt).mean() >= 0.95


def test_same_seed_gives_an_identical_model() -> None:
    x, y = bright_or_dark(24, seed=0)
    a = train(x, y, 2, TrainingConfig(epochs=2, seed=7)).model.state_dict()
    b = train(x, y, 2, TrainingConfig(epochs=2, seed=7)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = train(x, y, 2, TrainingConfig(epochs=2, seed=8)).model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_restores_thread_count_and_global_rng() -> None:
    x, y = bright_or_dark(12, seed=0)
    before = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    train(x, y, 2, TrainingConfig(epochs=1, threads=1))
    assert torch.get_num_threads() == before
    assert torch.equal(torch.rand(1), expected)


def test_one_labelled_class_is_refused() -> None:
    x, _ = bright_or_dark(10, seed=0)
    with pytest.raises(TrainingError, match="only one class is labelled"):
        train(x, np.zeros(10, int), 2, TrainingConfig(**FAST))


def test_bad_inputs_are_refused() -> None:
    x, y = bright_or_dark(10, seed=0)
    with pytest.raises(InputError):
        train(x, y[:5], 2, TrainingConfig(**FAST))
    with pytest.raises(InputError):
        train(x, y + 1, 2, TrainingConfig(**FAST))


def test_cancel_after_the_first_batch() -> None:
    x, y = bright_or_dark(40, seed=0)
    token = CancelToken()
    calls = []

    def model_forward_hook(*_):
        calls.append(1)
        token.cancel()

    from svetlana.core.ml.models import build_model

    model = build_model("minimal", 2, 2, 2)
    model.register_forward_hook(model_forward_hook)
    with pytest.raises(Cancelled):
        train(x, y, 2, TrainingConfig(epochs=5, batch_size=8), model=model, cancel=token)
    assert len(calls) == 1


def test_progress_once_per_epoch() -> None:
    x, y = bright_or_dark(20, seed=0)
    events: list[Progress] = []
    result = train(x, y, 2, TrainingConfig(epochs=4), progress=events.append)
    assert [e.done for e in events] == [1, 2, 3, 4]
    assert all(e.stage == "train" and e.total == 4 and e.eta_s is not None for e in events)
    assert events[-1].eta_s == 0
    assert set(events[0].metrics) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.history[0]["val_accuracy"] is not None


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(loss: str) -> None:
    x, y = bright_or_dark(16, seed=0)
    result = train(x, y, 2, TrainingConfig(loss=loss, **FAST))
    assert all(np.isfinite(h["loss"]) for h in result.history)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("augment", AUGMENTATIONS)
def test_every_augmentation_trains(augment: str, ndim: int) -> None:
    x, y = bright_or_dark(8, seed=0, size=8, ndim=ndim)
    result = train(x, y, 2, TrainingConfig(augment=augment, epochs=1, val_fraction=0))
    assert np.isfinite(result.history[0]["loss"])


def test_augmentations_keep_shape_and_mask_channel() -> None:
    from svetlana.core.ml.training import _augment

    x, _ = bright_or_dark(32, seed=0, size=12)
    x[:, 0] += np.arange(12, dtype=np.float32)  # break symmetry so flips/rotations show
    t = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(0)
    out = _augment(t, "full", gen, 2)
    assert out.shape == t.shape
    # the object-mask channel is only moved, never rescaled or noised
    assert set(out[:, 1].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(out[:, 1].sum(dim=(1, 2)), t[:, 1].sum(dim=(1, 2)))
    assert not torch.allclose(out[:, 0].sum(dim=(1, 2)), t[:, 0].sum(dim=(1, 2)))
    flipped = _augment(t, "flips+rot90", gen, 2)
    assert not torch.equal(flipped, t)
    assert torch.allclose(flipped.sum(dim=(2, 3)), t.sum(dim=(2, 3)))  # pixels only move


def test_stratified_split_keeps_a_training_example_per_class() -> None:
    x, y = bright_or_dark(12, seed=0)
    y = np.array([0] * 11 + [1])
    result = train(x, y, 3, TrainingConfig(epochs=1, val_fraction=0.5))
    assert result.metrics["n_val"] == 6  # round(11 * 0.5) of class 0, none of class 1
    assert result.metrics["n_train"] == 6
    assert result.metrics["per_class"][1]["support"] == 0  # the lone example stayed in training
    assert len(result.metrics["per_class"]) == 3


def test_config_round_trip_and_validation() -> None:
    config = TrainingConfig(arch="resnet18", loss="focal", betas=(0.8, 0.99), threads=2)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    import json

    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for bad in ({"epochs": 0}, {"loss": "hinge"}, {"augment": "rotate"}, {"lr": -1},
                {"val_fraction": 1.0}, {"colour": 3}, {"device": "tpu"}):  # fmt: skip
        with pytest.raises(TrainingError):
            TrainingConfig.from_dict(bad)


def test_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="CUDA"):
            resolve_device("cuda")


def test_compute_metrics() -> None:
    m = compute_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"][1] == {
        "precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2,
    }  # fmt: skip
    assert m["per_class"][2]["f1"] == 0.0


def two_textures(n: int, seed: int, size: int = 32):
    """Disk-shaped objects filled with fine (class 0) or coarse (class 1) noise, same mean/std."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    x = np.zeros((n, 2, size, size), np.float32)
    y = np.arange(n) % 2
    for i in range(n):
        mask = (yy**2 + xx**2) < rng.uniform(8, 13) ** 2
        noise = rng.normal(size=(size, size))
        if y[i]:
            noise = ndi.gaussian_filter(noise, 2.0)
        noise = (noise - noise.mean()) / noise.std()
        x[i, 0] = 0.5 * noise * mask + 0.1 * rng.normal(size=(size, size))
        x[i, 1] = mask
    return x, y


def test_default_settings_learn_two_textures_from_100_labels() -> None:
    x, y = two_textures(100, seed=1)
    result = train(x, y, 2, TrainingConfig())
    assert result.seconds < 20
    xt, yt = two_textures(200, seed=2)
    with torch.no_grad():
        pred = result.model(torch.from_numpy(xt)).argmax(1).numpy()
    assert (pred == yt).mean() >= 0.97


def test_a_network_that_does_not_fit_the_patches_is_a_training_error() -> None:
    from svetlana.core.ml.models import build_model

    x, y = bright_or_dark(8, seed=0)
    with pytest.raises(TrainingError, match="cannot be trained on patches"):
        train(x, y, 2, TrainingConfig(**FAST), model=build_model("minimal", 5, 2, 2))


def test_early_stopping_keeps_the_best_validation_model() -> None:
    x, y = bright_or_dark(20, seed=0)
    result = train(x, y, 2, TrainingConfig(epochs=40, early_stopping=True, lr=0.05))
    best = min(h["val_loss"] for h in result.history)
    assert len(result.history) <= 40
    assert result.metrics["n_val"] == 4
    assert best <= result.history[-1]["val_loss"]

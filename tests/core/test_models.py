"""Model registry, checkpoints and user networks: safe loading, round trips, fine-tuning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from svetlana.core.errors import ModelError, UnsafeFileError  # noqa: E402
from svetlana.core.models import (  # noqa: E402
    ARCHITECTURES,
    build_model,
    count_parameters,
    export_torchscript,
    load_checkpoint,
    load_user_network,
    save_checkpoint,
)


class _Evil:
    """A pickle payload that creates a marker file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious(path: Path, marker: Path) -> None:
    torch.save({"fc.weight": torch.zeros(2, 16), "payload": _Evil(marker)}, path)


def _card(arch: str = "minimal", in_channels: int = 2, n_classes: int = 2, ndim: int = 2) -> dict:
    return {"architecture": arch, "in_channels": in_channels, "n_classes": n_classes, "ndim": ndim}


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_forwards_a_batch(arch: str, ndim: int) -> None:
    torch.manual_seed(0)
    model = build_model(arch, in_channels=3, n_classes=4, ndim=ndim).eval()
    size = 16 if ndim == 2 else 8
    x = torch.randn((2, 3) + (size,) * ndim)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 4)
    assert torch.isfinite(out).all()


def test_minimal_network_is_the_papers_tiny_cnn() -> None:
    n = count_parameters(build_model("minimal", in_channels=2, n_classes=2, ndim=2))
    assert 2_000 <= n <= 4_000


def test_unknown_architecture_lists_the_choices() -> None:
    with pytest.raises(ModelError, match="resnet18"):
        build_model("vgg", 2, 2, 2)


@pytest.mark.parametrize("arch", ["minimal", "resnet18"])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(1)
    model = build_model(arch, 2, 3, 2).eval()
    save_checkpoint(tmp_path / "m", model, _card(arch, n_classes=3))
    assert json.loads((tmp_path / "m" / "card.json").read_text())["architecture"] == arch
    loaded, card = load_checkpoint(tmp_path / "m")
    assert card["n_classes"] == 3 and not loaded.training
    x = torch.randn(4, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # weights.pt is a plain state_dict: loadable without running any code
    state = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert set(state) == set(model.state_dict())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_checkpoint_round_trip(tmp_path: Path) -> None:
    model = build_model("minimal", 2, 2, 2).eval()
    x = np.random.default_rng(0).normal(size=(3, 2, 16, 16)).astype(np.float32)
    export_torchscript(model, x, tmp_path / "net.ts")
    scripted = torch.jit.load(str(tmp_path / "net.ts"))
    save_checkpoint(tmp_path / "m", scripted, _card())
    assert (tmp_path / "m" / "model.ts").exists() and not (tmp_path / "m" / "weights.pt").exists()
    loaded, card = load_checkpoint(tmp_path / "m")
    assert card["architecture"] == "torchscript"
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(x)), loaded(torch.from_numpy(x)))


def test_tampered_weights_are_refused_without_running_them(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), _card())
    marker = tmp_path / "pwned"
    _write_malicious(folder / "weights.pt", marker)
    with pytest.raises(UnsafeFileError) as info:
        load_checkpoint(folder)
    assert info.value.path == folder / "weights.pt"
    assert not marker.exists()


def test_corrupt_or_missing_weights_raise_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), _card())
    (folder / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot load weights"):
        load_checkpoint(folder)
    os.remove(folder / "weights.pt")
    with pytest.raises(ModelError, match="cannot load weights"):
        load_checkpoint(folder)


def test_weights_of_another_architecture_raise_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_checkpoint(folder, build_model("minimal", 2, 2, 2), _card(arch="resnet18"))
    with pytest.raises(ModelError, match="do not fit resnet18"):
        load_checkpoint(folder)


def test_user_state_dict_is_recognised(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = build_model("resnet18", 2, 3, 2).eval()
    torch.save(source.state_dict(), tmp_path / "user.pt")
    arch, model = load_user_network(tmp_path / "user.pt", in_channels=2, n_classes=3, ndim=2)
    assert arch == "resnet18"
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(source(x), model.eval()(x))


def test_user_state_dict_with_other_classes_gets_a_new_head(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = build_model("minimal", 2, 5, 2)
    torch.save(source.state_dict(), tmp_path / "user.pt")
    arch, model = load_user_network(tmp_path / "user.pt", in_channels=2, n_classes=2, ndim=2)
    assert arch == "minimal"
    assert model.fc.out_features == 2
    assert torch.equal(model.conv1.weight, source.conv1.weight)  # the body is kept


def test_user_state_dict_with_wrong_channels_or_dims_is_explained(tmp_path: Path) -> None:
    torch.save(build_model("minimal", 3, 2, 2).state_dict(), tmp_path / "user.pt")
    with pytest.raises(ModelError, match="3 input channels"):
        load_user_network(tmp_path / "user.pt", in_channels=2, n_classes=2, ndim=2)
    torch.save(build_model("minimal", 2, 2, 3).state_dict(), tmp_path / "user3d.pt")
    with pytest.raises(ModelError, match="3D"):
        load_user_network(tmp_path / "user3d.pt", in_channels=2, n_classes=2, ndim=2)
    torch.save({"w": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="match none"):
        load_user_network(tmp_path / "other.pt", in_channels=2, n_classes=2, ndim=2)


def test_user_torchscript_network_is_accepted(tmp_path: Path) -> None:
    model = build_model("minimal", 2, 2, 2).eval()
    export_torchscript(model, np.zeros((1, 2, 16, 16), np.float32), tmp_path / "net.pt")
    arch, loaded = load_user_network(tmp_path / "net.pt", in_channels=2, n_classes=2, ndim=2)
    assert arch == "torchscript"
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded.eval()(x))


def test_user_pickle_is_refused_with_a_way_out(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _write_malicious(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeFileError, match=r"torch.save\(model.state_dict\(\), path\)"):
        load_user_network(tmp_path / "evil.pt", in_channels=2, n_classes=2, ndim=2)
    assert not marker.exists()


def test_raw_pickled_model_is_refused(tmp_path: Path) -> None:
    import pickle

    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(build_model("minimal", 2, 2, 2), f)
    with pytest.raises(UnsafeFileError):
        load_user_network(tmp_path / "model.pkl", in_channels=2, n_classes=2, ndim=2)
    torch.save(build_model("minimal", 2, 2, 2), tmp_path / "whole.pt")
    with pytest.raises(UnsafeFileError):
        load_user_network(tmp_path / "whole.pt", in_channels=2, n_classes=2, ndim=2)


def test_exported_torchscript_can_be_fine_tuned_with_live_batchnorm(tmp_path):
    """Export scripts the network, so an imported model's BatchNorm learns again in training."""
    import torch

    from svetlana.core.models import build_model, export_torchscript

    model = build_model("minimal", 2, 2, 2)
    x = np.random.default_rng(0).random((4, 2, 16, 16), dtype=np.float32)
    export_torchscript(model, x, tmp_path / "m.ts")
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    with torch.no_grad():
        assert torch.allclose(ts(torch.from_numpy(x)), model.eval()(torch.from_numpy(x)), atol=1e-6)
    ts.train()
    bn = next(m for m in ts.modules() if "BatchNorm" in m.original_name)
    before = bn.running_mean.clone()
    with torch.no_grad():
        ts(torch.from_numpy(x))
    assert not torch.equal(before, bn.running_mean)

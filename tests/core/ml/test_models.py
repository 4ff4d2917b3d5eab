"""Model registry, checkpoints and user networks: safe loading, round trips, fine-tuning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from svetlana.core.errors import ModelError, UnsafeFileError  # noqa: E402
from svetlana.core.ml.models import (  # noqa: E402
    ARCHITECTURES,
    build_model,
    count_parameters,
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


@pytest.mark.parametrize("ndim", [2, 3])
def test_default_network_is_small_and_folds_for_fast_prediction(ndim: int) -> None:
    from svetlana.core.ml.inference import _inference_net
    from svetlana.core.ml.training import TrainingConfig

    assert TrainingConfig().arch == "small"
    torch.manual_seed(0)
    model = build_model("small", 3, 2, ndim).eval()
    assert count_parameters(model) < 50_000
    for m in model.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    shape = (4, 3) + ((24, 24) if ndim == 2 else (8, 16, 16))
    x = torch.randn(shape)
    x[:, -1] = (x[:, -1] > 0).float()  # the object mask channel
    net, layouts = _inference_net(model, "cpu")
    assert net is not model  # BatchNorm folded: prediction stays fast
    with torch.no_grad():
        assert torch.allclose(
            model(x), net(x.contiguous(memory_format=layouts[ndim + 2])), atol=1e-4
        )


@pytest.mark.parametrize("arch", ["minimal", "small", "resnet18"])
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


def _script(model, path: Path) -> Path:
    """A TorchScript file as earlier Svetlana versions (and PyTorch users) wrote them."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(model).save(str(path))
    return path


def test_torchscript_model_of_an_earlier_version_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _script(build_model("minimal", 2, 2, 2), folder / "model.ts")
    (folder / "card.json").write_text(json.dumps({**_card(), "architecture": "torchscript"}))
    with pytest.raises(UnsafeFileError, match="TorchScript program") as info:
        load_checkpoint(folder)
    assert str(folder) in str(info.value) and "train a new model" in str(info.value)
    # A model.ts planted beside valid weights is refused as well.
    save_checkpoint(tmp_path / "w", build_model("minimal", 2, 2, 2), _card())
    _script(build_model("minimal", 2, 2, 2), tmp_path / "w" / "model.ts")
    with pytest.raises(UnsafeFileError):
        load_checkpoint(tmp_path / "w")


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


@pytest.mark.parametrize("name", ["net.ts", "net.pt", "net.pth"])
def test_user_torchscript_network_is_refused_with_a_way_out(tmp_path: Path, name) -> None:
    path = _script(build_model("minimal", 2, 2, 2), tmp_path / name)
    with pytest.raises(UnsafeFileError, match=r"TorchScript program") as info:
        load_user_network(path, in_channels=2, n_classes=2, ndim=2)
    assert str(path) in str(info.value)
    assert "torch.save(model.state_dict(), path)" in str(info.value)


def test_a_file_that_is_not_weights_says_how_to_convert(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch")
    with pytest.raises(ModelError, match=r"torch.save\(model.state_dict\(\), path\)"):
        load_user_network(tmp_path / "model.onnx", in_channels=2, n_classes=2, ndim=2)


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

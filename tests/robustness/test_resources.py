"""Images too large for memory are refused before loading; GPU out-of-memory becomes a clear error."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile

from svetlana.core.errors import ModelError, ResourceError, TrainingError
from svetlana.core.io.images import MAX_BYTES_ENV, available_memory, read_image, read_mask
from svetlana.core.project.bundle import Project
from tests.conftest import blobs, write_pair
from tests.robustness.helpers import assert_clear_error, make_bundle, run_cli, snapshot


def _huge_npy(path, shape=(200_000, 200_000, 4), dtype="<f4"):
    """A header claiming ~640 GB and no data."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(
            f, {"descr": dtype, "fortran_order": False, "shape": shape}
        )
    return path


def test_available_memory_is_known_on_this_machine(monkeypatch):
    monkeypatch.delenv(MAX_BYTES_ENV, raising=False)
    have = available_memory()
    assert have is None or have > 10**7
    monkeypatch.setenv(MAX_BYTES_ENV, "12345")
    assert available_memory() == 12345


@pytest.mark.timeout(20)
def test_a_huge_npy_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_BYTES_ENV, raising=False)
    path = _huge_npy(tmp_path / "huge.npy")
    t0 = time.perf_counter()
    for read in (read_image, read_mask):
        with pytest.raises(ResourceError, match=r"needs about \d+\.\d GB of memory to load \("):
            read(path)
    assert time.perf_counter() - t0 < 2


@pytest.mark.timeout(30)
def test_a_huge_tiff_is_refused_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_BYTES_ENV, raising=False)
    bundle = make_bundle(tmp_path)
    huge = tmp_path / "huge.tif"
    # shape without data: tifffile writes the header and leaves the pixels unwritten (sparse)
    tifffile.imwrite(huge, shape=(40_000, 40_000, 40), dtype="uint16")
    image, labels = blobs()
    ip, mp = write_pair(tmp_path / "in2", "ok", image, labels)
    before = snapshot(bundle)
    for args in (["add", bundle, huge, mp], ["add", bundle, ip, huge]):
        code, _, err = run_cli(*args)
        assert_clear_error(code, err)
        assert "GB of memory to load" in err and "available" in err
    assert snapshot(bundle) == before


def test_the_limit_is_overridable(tmp_path, monkeypatch):
    image, labels = blobs()
    ip, mp = write_pair(tmp_path, "cells", image, labels)
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(ResourceError, match=r"needs about 0\.\d MB of memory .*0\.0 MB available"):
        read_image(ip)
    monkeypatch.setenv(MAX_BYTES_ENV, str(10**9))
    assert read_image(ip).data.shape == (1, 96, 96)


class _OOM:
    """Stands in for a network whose forward pass exhausts GPU memory."""

    def __call__(self, *a, **k):
        import torch

        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_gpu_out_of_memory_in_training_is_a_clear_error(tmp_path, monkeypatch):
    import svetlana.core.ml.training as training

    bundle = make_bundle(tmp_path)
    real = training.build_model

    def build(*a, **k):
        model = real(*a, **k)
        monkeypatch.setattr(model, "forward", _OOM())
        return model

    monkeypatch.setattr(training, "build_model", build)
    before = snapshot(bundle)
    code, _, err = run_cli(
        "-q", "train", bundle, "--arch", "minimal", "--epochs", "1", "--device", "cpu"
    )
    assert_clear_error(code, err)
    assert "ran out of memory" in err and "batch size" in err
    assert snapshot(bundle) == before
    with Project.open(bundle) as p:
        from svetlana.core.ml.training import TrainingConfig
        from svetlana.core.usecases.train import train_project

        with pytest.raises(TrainingError, match="ran out of memory"):
            train_project(p, TrainingConfig(epochs=1, device="cpu"))


def test_gpu_out_of_memory_in_prediction_is_a_clear_error(tmp_path, monkeypatch):
    import svetlana.core.usecases.predict as predicting
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases import train

    bundle = make_bundle(tmp_path)
    with Project.open(bundle) as p:
        train.train_project(p, TrainingConfig(epochs=1, val_fraction=0.0, device="cpu"))
    from svetlana.core.ml import models

    real = models.load_checkpoint

    def load(*a, **k):
        model, card = real(*a, **k)
        # On the class: prediction may run a traced copy of the network, not the instance.
        monkeypatch.setattr(type(model), "forward", lambda self, x: _OOM()(x))
        return model, card

    monkeypatch.setattr(models, "load_checkpoint", load)
    before = snapshot(bundle)
    code, _, err = run_cli("-q", "predict", bundle, "--device", "cpu")
    assert_clear_error(code, err)
    assert "ran out of memory" in err
    assert snapshot(bundle) == before
    with Project.open(bundle) as p, pytest.raises(ModelError, match="ran out of memory"):
        predicting.predict_project(p, device="cpu")

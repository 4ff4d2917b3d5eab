"""Grad-CAM heatmaps: shape, range, and that they point at what the network looks at."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import InputError
from svetlana.core.ml.explain import gradcam
from svetlana.core.ml.models import build_model


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("minimal", (2, 32, 32)),
        ("resnet18", (2, 24, 24)),
        ("minimal", (2, 8, 16, 16)),
        ("small", (2, 32, 32)),
        ("small", (3, 8, 16, 16)),
    ],
)
def test_heatmap_has_patch_shape_and_unit_range(arch, shape):
    model = build_model(arch, shape[0], 3, len(shape) - 1)
    patch = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    heat = gradcam(model, patch)
    assert heat.shape == shape[1:]
    assert heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1
    assert np.isfinite(heat).all()


def test_model_is_left_as_it_was():
    model = build_model("minimal", 2, 2, 2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradcam(model, np.ones((2, 16, 16), np.float32), target=1)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(
        (before[k] == after[k]).all()
        for k in before
        if "running" not in k and "num_batches" not in k
    )


def test_heatmap_follows_the_evidence():
    """A network that only sums the right half of the image is explained by the right half."""
    import torch
    from torch import nn

    class RightHalf(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.ones_(self.conv.weight)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(1, 2)

        def forward(self, x):
            f = torch.relu(self.conv(x))
            f = f * (torch.arange(x.shape[-1]) >= x.shape[-1] // 2).float()
            return self.fc(torch.flatten(self.pool(f), 1))

    model = RightHalf()
    with torch.no_grad():
        model.fc.weight[:] = torch.tensor([[1.0], [-1.0]])
    heat = gradcam(model, np.ones((1, 16, 16), np.float32), target=0)
    assert heat[:, 10:].mean() > 0.8 and heat[:, :6].mean() < 0.2


def test_bad_patch_and_class_are_refused():
    model = build_model("minimal", 2, 2, 2)
    with pytest.raises(InputError):
        gradcam(model, np.ones((16, 16), np.float32))
    with pytest.raises(InputError):
        gradcam(model, np.ones((2, 16, 16), np.float32), target=5)

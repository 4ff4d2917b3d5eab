"""Grad-CAM: which pixels of an object's patch made the network choose its class."""

from __future__ import annotations

import logging

import numpy as np

from svetlana.core.errors import InputError, ModelError
from svetlana.core.ml._torch import load_torch

log = logging.getLogger(__name__)

FOREST_NOT_EXPLAINED = (
    "Grad-CAM explains a CNN; this model is a forest on measurements (its most important "
    "measurements are listed with the model in the Training tab). Train with a CNN "
    "architecture to see which pixels decide."
)


def _feature_module(model):
    """The module whose *input* is the last feature map: the global average pool.

    A network may name its feature map with a ``cam_layer`` module (the small CNN, whose pool
    is weighted by the object's mask). The other built-in networks (minimal CNN, ResNets, 2D
    and 3D) end in conv features -> adaptive average pool -> linear; a network without a pool
    falls back to its last conv.
    """
    from torch import nn

    marked = getattr(model, "cam_layer", None)
    if isinstance(marked, nn.Module):
        return marked, "output"

    pools = [
        m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool3d)
    ]
    if pools:
        return pools[-1], "input"
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    if convs:
        return convs[-1], "output"
    raise ModelError("this network has no convolution layer to explain")


def gradcam(model, patch: np.ndarray, target: int | None = None) -> np.ndarray:
    """Grad-CAM heatmap of one patch ``(C, [Z,] Y, X)``, same spatial shape, values in [0, 1].

    ``target`` is the 0-based class to explain; ``None`` explains the predicted class. The
    model's weights and mode are left as they were (no gradients are stored in it).
    """
    from svetlana.core.ml.forest import ForestModel
    from svetlana.core.ml.hybrid import HybridModel

    if isinstance(model, ForestModel):
        raise ModelError(FOREST_NOT_EXPLAINED)
    if isinstance(model, HybridModel):  # a hybrid's heatmap is its CNN's (the forest has none)
        model = model.cnn
    torch = load_torch()
    import torch.nn.functional as F

    patch = np.asarray(patch, dtype=np.float32)
    if patch.ndim not in (3, 4):
        raise InputError(f"a patch is (C, Y, X) or (C, Z, Y, X), not shape {patch.shape}")
    module, where = _feature_module(model)
    captured: list = []

    def hook(_m, inputs, output):
        captured.append(inputs[0] if where == "input" else output)

    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = torch.from_numpy(np.ascontiguousarray(patch[None])).to(device).requires_grad_(True)
            logits = model(x)
            if not captured:
                raise ModelError("the network did not pass through its feature layer")
            k = int(logits.argmax(1)) if target is None else int(target)
            if not 0 <= k < logits.shape[1]:
                raise InputError(
                    f"class index {k} is out of range (the network has {logits.shape[1]} classes)"
                )
            features = captured[-1]
            (grads,) = torch.autograd.grad(logits[0, k], features)
        spatial = tuple(range(2, features.ndim))
        weights = grads.mean(dim=spatial, keepdim=True)
        cam = torch.relu((weights * features).sum(dim=1, keepdim=True)).detach()
        mode = "bilinear" if cam.ndim == 4 else "trilinear"
        cam = F.interpolate(cam, size=patch.shape[1:], mode=mode, align_corners=False)[0, 0]
        cam = cam.cpu().numpy().astype(np.float32)
    finally:
        handle.remove()
        model.train(was_training)
    cam -= cam.min()
    top = float(cam.max())
    return cam / top if top > 0 else np.zeros_like(cam)

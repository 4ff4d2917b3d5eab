"""Network definitions (torch imported here); only ``models`` imports this, lazily."""

from __future__ import annotations

from svetlana.core.ml._torch import load_torch

torch = load_torch()
from torch import nn  # noqa: E402


def _layers(ndim: int) -> tuple[type, type, type, type]:
    if ndim == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d
    if ndim == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d
    raise ValueError(f"ndim must be 2 or 3, not {ndim}")


class MinimalCNN(nn.Module):
    """The SVETLANA paper's tiny CNN: two conv blocks, global average pool, one linear layer."""

    def __init__(self, in_channels: int, n_classes: int, ndim: int = 2, width: int = 16):
        super().__init__()
        conv, bn, pool, gap = _layers(ndim)
        self.conv1 = conv(in_channels, width, 3, padding=1)
        self.bn1 = bn(width)
        self.pool = pool(2)
        self.conv2 = conv(width, width, 3, padding=1)
        self.bn2 = bn(width)
        self.gap = gap(1)
        self.fc = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class SmallCNN(nn.Module):
    """The default CNN: three conv-BN-ReLU blocks, two max-poolings, a linear layer on the
    last features averaged over the object.

    The last input channel is the object's mask (see ``patches``). Two things make it learn
    from ~100 noisy labels what ``MinimalCNN`` cannot (tests/benchmarks/README.md): its input
    adds the image channels standardised over the object's pixels (each object's own
    brightness and contrast no longer have to be learnt away), and its final features are
    averaged over the object's mask rather than over the whole patch (neighbours in the patch
    do not vote).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        ndim: int = 2,
        widths: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        conv, bn, pool, _ = _layers(ndim)
        # Narrower in 3D: a 3D convolution costs ~9x a 2D one, on patches of many more voxels.
        w1, w2, w3 = widths or ((12, 24, 48) if ndim == 2 else (8, 16, 32))
        self.dims = tuple(range(2, 2 + ndim))  # spatial axes (a constant, so torch.fx traces)
        self.conv1 = conv(2 * in_channels - 1, w1, 3, padding=1, bias=False)
        self.bn1 = bn(w1)
        self.conv2 = conv(w1, w2, 3, padding=1, bias=False)
        self.bn2 = bn(w2)
        self.conv3 = conv(w2, w3, 3, padding=1, bias=False)
        self.bn3 = bn(w3)
        self.pool = pool(2)
        self.mask_pool = (nn.AvgPool2d if ndim == 2 else nn.AvgPool3d)(4)
        self.cam_layer = nn.Identity()  # the feature map Grad-CAM explains (core/ml/explain.py)
        self.fc = nn.Linear(w3, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = self.dims
        mask = x[:, -1:].clamp(0, 1)  # 0/1 in real patches; clamped so any input stays finite
        image = x[:, :-1]
        area = mask.sum(dims, keepdim=True) + 1e-3
        mean = (image * mask).sum(dims, keepdim=True) / area
        var = (((image - mean) * mask) ** 2).sum(dims, keepdim=True) / area
        x = torch.cat([image, (image - mean) / torch.sqrt(var + 1e-4), x[:, -1:]], 1)
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.cam_layer(torch.relu(self.bn3(self.conv3(x))))
        # The mask on the feature grid; + 1e-3 so an empty mask falls back to the plain mean.
        weight = self.mask_pool(mask) + 1e-3
        return self.fc((x * weight).sum(dims) / weight.sum(dims))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, conv: type, bn: type, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(planes)
        self.conv2 = conv(planes, planes, 3, padding=1, bias=False)
        self.bn2 = bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(conv, bn, inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, conv: type, bn: type, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 1, bias=False)
        self.bn1 = bn(planes)
        self.conv2 = conv(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = bn(planes)
        self.conv3 = conv(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(conv, bn, inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(conv: type, bn: type, inplanes: int, outplanes: int, stride: int):
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(conv(inplanes, outplanes, 1, stride=stride, bias=False), bn(outplanes))


class ResNet(nn.Module):
    """Standard ResNet for small patches: 3x3 stride-1 stem, no stem max-pool; 2D or 3D."""

    def __init__(
        self,
        block: type,
        layers: tuple[int, int, int, int],
        in_channels: int,
        n_classes: int,
        ndim: int = 2,
    ):
        super().__init__()
        conv, bn, _, gap = _layers(ndim)
        self.inplanes = 64
        self.conv1 = conv(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = bn(64)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [block(conv, bn, self.inplanes, planes, stride)]
            self.inplanes = planes * block.expansion
            blocks += [block(conv, bn, self.inplanes, planes) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = gap(1)
        self.fc = nn.Linear(512 * block.expansion, n_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: each block starts as identity,
        # which trains faster and more stably on few labels.
        for m in self.modules():
            last_bn = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else None
            if isinstance(m, BasicBlock):
                last_bn = m.bn2
            if last_bn is not None:
                nn.init.zeros_(last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(arch: str, in_channels: int, n_classes: int, ndim: int) -> nn.Module:
    if arch == "minimal":
        return MinimalCNN(in_channels, n_classes, ndim)
    if arch == "small":
        return SmallCNN(in_channels, n_classes, ndim)
    if arch == "resnet18":
        return ResNet(BasicBlock, (2, 2, 2, 2), in_channels, n_classes, ndim)
    if arch == "resnet34":
        return ResNet(BasicBlock, (3, 4, 6, 3), in_channels, n_classes, ndim)
    if arch == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), in_channels, n_classes, ndim)
    raise KeyError(arch)

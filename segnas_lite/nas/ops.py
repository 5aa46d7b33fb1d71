"""The candidate-op catalogue of the search.

Every candidate is a small ``nn.Module`` built as ``OPS[name](in_ch, out_ch, stride)`` and maps
``(N, in_ch, H, W)`` to ``(N, out_ch, ceil(H / stride), ceil(W / stride))``.

Where the shortcut lives
------------------------
No candidate op carries its own residual connection. The chain layer that holds the op
(``supernet.ChainLayer``) adds ``x + op(x)`` whenever ``stride == 1`` and ``in_ch == out_ch``,
whatever the op is. This is how ProxylessNAS wraps its mixed op (a ``MobileInvertedResidualBlock``
with an identity shortcut around the searched conv), and it is what makes ``zero`` mean
"skip this layer": ``x + 0 = x``. The layer recognises ``Zero`` (``is_zero = True``) and returns ``x``
without running anything.

Because the layer input ``x`` is shared by the op and by the shortcut, no op may modify its input in
place: the DARTS ops start with a non-inplace ReLU.

The seed's seven ops (the blog post "Application of NAS in semantic segmentation (2)", Sec. 2.1)
    ``mbv3_3x3``, ``mbv3_5x5``  MobileNetV3 bneck (Howard et al., 2019): expand x4, SE, h-swish
    ``dil_3x3``,  ``dil_5x5``   DARTS DilConv (Liu et al., 2019): ReLU -> dw conv (dilation 2) -> pw -> BN
    ``sep_3x3``,  ``sep_5x5``   DARTS SepConv: the ReLU-dw-pw-BN unit twice, the first one strided
    ``shuffle``                 ShuffleNetV2 unit (Ma et al., 2018), 3x3 depthwise

ProxylessNAS's own space (Cai et al., ICLR 2019, Sec. 4)
    ``mb_k{3,5,7}_e{3,6}``      MobileNetV2 inverted residual (ReLU6, no SE), kernel k, expansion e
    ``zero``                    only for stride-1 layers with in_ch == out_ch; the layer becomes identity
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from segnas_lite.models.layers import InvertedResidual, make_divisible

MBV3_EXPANSION = 4
"""Expansion ratio of the seed's ``mbv3_*`` ops. MobileNetV3-Large uses 3 to 6 depending on the
stage; 4 is a middle value that keeps the op affordable on a laptop CPU."""


class MBv3Op(InvertedResidual):
    """MobileNetV3 bneck: 1x1 expand (x4) -> kxk depthwise -> SE -> 1x1 project, h-swish.

    Reuses ``layers.InvertedResidual`` but switches its own residual off: the chain layer adds it.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel_size: int) -> None:
        super().__init__(in_ch, make_divisible(in_ch * MBV3_EXPANSION), out_ch,
                         kernel_size=kernel_size, stride=stride, use_se=True, act="hswish")
        self.use_residual = False  # the shortcut belongs to supernet.ChainLayer


class MBConvOp(InvertedResidual):
    """ProxylessNAS "kxk_MBConv{e}": MobileNetV2 inverted residual with ReLU6 and no SE."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel_size: int,
                 expansion: int) -> None:
        super().__init__(in_ch, make_divisible(in_ch * expansion), out_ch,
                         kernel_size=kernel_size, stride=stride, use_se=False, act="relu6")
        self.use_residual = False  # the shortcut belongs to supernet.ChainLayer


def relu_dw_pw_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int,
                  dilation: int) -> nn.Sequential:
    """The DARTS unit: ReLU -> depthwise kxk (stride, dilation) -> pointwise 1x1 -> BN.

    The ReLU is not in place because the unit's input is also the layer's shortcut.
    """
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, dilation=dilation, groups=in_ch,
                  bias=False),
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class DilConv(nn.Sequential):
    """DARTS ``dil_conv_kxk``: one ReLU-dw-pw-BN unit with a dilation-2 depthwise conv.

    Receptive field 5x5 (k=3) or 9x9 (k=5) for the cost of a 3x3 / 5x5 depthwise conv.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel_size: int) -> None:
        super().__init__(*relu_dw_pw_bn(in_ch, out_ch, kernel_size, stride, dilation=2))


class SepConv(nn.Sequential):
    """DARTS ``sep_conv_kxk``: two stacked ReLU-dw-pw-BN units; the first carries the stride and
    keeps ``in_ch`` channels, the second maps to ``out_ch``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel_size: int) -> None:
        super().__init__(
            relu_dw_pw_bn(in_ch, in_ch, kernel_size, stride, dilation=1),
            relu_dw_pw_bn(in_ch, out_ch, kernel_size, 1, dilation=1),
        )


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet, Zhang et al., 2018, Sec. 3.1)."""
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w)  # (N, g, C/g, H, W)
    x = x.transpose(1, 2).contiguous()  # (N, C/g, g, H, W)
    return x.view(n, c, h, w)  # channels now alternate between the groups


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (Ma et al., ECCV 2018, Fig. 3c/d).

    * stride 1 and ``in_ch == out_ch`` (Fig. 3c): split the channels in two halves, keep the left half,
      run the right half through 1x1 -> dw 3x3 -> 1x1, concatenate, shuffle.
    * stride 2 (Fig. 3d), and also stride 1 with ``in_ch != out_ch``: both branches see the whole
      input; left = dw 3x3 -> 1x1, right = 1x1 -> dw 3x3 -> 1x1, each gives ``out_ch / 2`` channels.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch % 2:
            raise ValueError(f"ShuffleUnit needs an even out_ch, got {out_ch}")
        half = out_ch // 2
        self.split = stride == 1 and in_ch == out_ch
        right_in = half if self.split else in_ch
        self.left = None if self.split else nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
        )
        self.right = nn.Sequential(
            nn.Conv2d(right_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            left, right = x.chunk(2, dim=1)  # two (N, C/2, H, W) halves
            out = torch.cat([left, self.right(right)], dim=1)
        else:
            out = torch.cat([self.left(x), self.right(x)], dim=1)
        return channel_shuffle(out, 2)


class Zero(nn.Module):
    """The ProxylessNAS zero op: outputs zeros, so ``x + zero(x) = x`` and the layer is skipped.

    ``ChainLayer`` does not even call it (it checks ``is_zero``); ``forward`` exists for the DARTS-style
    weighted sum and for completeness.
    """

    is_zero = True

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if stride != 1 or in_ch != out_ch:
            raise ValueError("the zero op is only allowed where stride == 1 and in_ch == out_ch "
                             f"(got in_ch={in_ch}, out_ch={out_ch}, stride={stride})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


OpFactory = Callable[[int, int, int], nn.Module]

OPS: dict[str, OpFactory] = {
    # the seed's search space
    "mbv3_3x3": lambda i, o, s: MBv3Op(i, o, s, kernel_size=3),
    "mbv3_5x5": lambda i, o, s: MBv3Op(i, o, s, kernel_size=5),
    "dil_3x3": lambda i, o, s: DilConv(i, o, s, kernel_size=3),
    "dil_5x5": lambda i, o, s: DilConv(i, o, s, kernel_size=5),
    "sep_3x3": lambda i, o, s: SepConv(i, o, s, kernel_size=3),
    "sep_5x5": lambda i, o, s: SepConv(i, o, s, kernel_size=5),
    "shuffle": ShuffleUnit,
    # ProxylessNAS's search space
    "mb_k3_e3": lambda i, o, s: MBConvOp(i, o, s, kernel_size=3, expansion=3),
    "mb_k3_e6": lambda i, o, s: MBConvOp(i, o, s, kernel_size=3, expansion=6),
    "mb_k5_e3": lambda i, o, s: MBConvOp(i, o, s, kernel_size=5, expansion=3),
    "mb_k5_e6": lambda i, o, s: MBConvOp(i, o, s, kernel_size=5, expansion=6),
    "mb_k7_e3": lambda i, o, s: MBConvOp(i, o, s, kernel_size=7, expansion=3),
    "mb_k7_e6": lambda i, o, s: MBConvOp(i, o, s, kernel_size=7, expansion=6),
    "zero": Zero,
}
"""Op name -> constructor ``(in_ch, out_ch, stride) -> nn.Module``."""

SEED_OPS = ("mbv3_3x3", "mbv3_5x5", "dil_3x3", "dil_5x5", "sep_3x3", "sep_5x5", "shuffle")
PROXYLESS_OPS = ("mb_k3_e3", "mb_k3_e6", "mb_k5_e3", "mb_k5_e6", "mb_k7_e3", "mb_k7_e6")


def is_zero(module: nn.Module) -> bool:
    """True for the zero op (and for a MixedOp whose active path is the zero op)."""
    return bool(getattr(module, "is_zero", False))


def build_op(name: str, in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """``OPS[name](in_ch, out_ch, stride)`` with a helpful error for an unknown name."""
    if name not in OPS:
        raise KeyError(f"unknown op {name!r}; the catalogue has {sorted(OPS)}")
    return OPS[name](in_ch, out_ch, stride)

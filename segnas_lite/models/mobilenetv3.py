"""MobileNetV3-Large and -Small feature extractors for segmentation (Howard et al., 2019).

"Searching for MobileNetV3", Tables 1 and 2 give the "bneck" tables; Section 6.4 gives the changes
for semantic segmentation, both applied here:

* **output stride 16**: the last stage keeps stride 1 and dilates its depthwise convs by 2 instead
  of down-sampling a fifth time, so the deepest map is 1/16 of the input, not 1/32;
* **reduced tail** (``reduced_tail=True``): the channels of the last stage are halved, a cheap trim
  the paper reports costs no accuracy for segmentation. Exactly as torchvision builds it (so its
  reduced-tail weights load): the first tail block keeps its expansion (672 Large, 288 Small) and
  halves its output; the blocks after it halve both; the last 1x1 conv is 6x the halved output.
  (torchvision's LR-ASPP keeps the full tail, which is why our default is ``False``.)

The module is an ``nn.Sequential`` (its forward returns the 1/8 and the last map) with the same
layer indices as torchvision's ``features``:
index 0 is the stem conv, 1..15 (Large) or 1..11 (Small) the bnecks, and the last index the 1x1 conv
to 960 (Large) or 576 (Small) channels. Keeping these indices means torchvision state dicts load with
``strict=True`` and no key renaming.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from segnas_lite.models.layers import ConvBNAct, InvertedResidual, make_divisible


@dataclass(frozen=True)
class BneckSpec:
    """One row of the MobileNetV3 table: ``kernel``, ``expanded`` ("exp size"), ``out`` ("#out"),
    ``use_se`` ("SE"), ``act`` ("NL": "relu" = RE, "hswish" = HS), ``stride`` ("s")."""

    kernel: int
    expanded: int
    out: int
    use_se: bool
    act: str
    stride: int


# Howard et al., 2019, Table 1 (MobileNetV3-Large). The input of row i is the output of row i-1.
LARGE_TABLE: tuple[BneckSpec, ...] = (
    BneckSpec(3, 16, 16, False, "relu", 1),
    BneckSpec(3, 64, 24, False, "relu", 2),     # -> 1/4
    BneckSpec(3, 72, 24, False, "relu", 1),
    BneckSpec(5, 72, 40, True, "relu", 2),      # -> 1/8
    BneckSpec(5, 120, 40, True, "relu", 1),
    BneckSpec(5, 120, 40, True, "relu", 1),
    BneckSpec(3, 240, 80, False, "hswish", 2),  # -> 1/16
    BneckSpec(3, 200, 80, False, "hswish", 1),
    BneckSpec(3, 184, 80, False, "hswish", 1),
    BneckSpec(3, 184, 80, False, "hswish", 1),
    BneckSpec(3, 480, 112, True, "hswish", 1),
    BneckSpec(3, 672, 112, True, "hswish", 1),
    BneckSpec(5, 672, 160, True, "hswish", 2),  # -> 1/32 (dilated for segmentation)
    BneckSpec(5, 960, 160, True, "hswish", 1),
    BneckSpec(5, 960, 160, True, "hswish", 1),
)
LARGE_TAIL_ROWS = 3      # the last stage: rows 13..15 (features indices 13..15)
LARGE_LAST_CONV = 960    # 1x1 conv after the bnecks (6 x 160)

# Howard et al., 2019, Table 2 (MobileNetV3-Small).
SMALL_TABLE: tuple[BneckSpec, ...] = (
    BneckSpec(3, 16, 16, True, "relu", 2),      # -> 1/4
    BneckSpec(3, 72, 24, False, "relu", 2),     # -> 1/8
    BneckSpec(3, 88, 24, False, "relu", 1),
    BneckSpec(5, 96, 40, True, "hswish", 2),    # -> 1/16
    BneckSpec(5, 240, 40, True, "hswish", 1),
    BneckSpec(5, 240, 40, True, "hswish", 1),
    BneckSpec(5, 120, 48, True, "hswish", 1),
    BneckSpec(5, 144, 48, True, "hswish", 1),
    BneckSpec(5, 288, 96, True, "hswish", 2),   # -> 1/32 (dilated for segmentation)
    BneckSpec(5, 576, 96, True, "hswish", 1),
    BneckSpec(5, 576, 96, True, "hswish", 1),
)
SMALL_TAIL_ROWS = 3
SMALL_LAST_CONV = 576    # 6 x 96

# BatchNorm settings. eps = 0.001 is the MobileNetV3 reference value (and torchvision's); it changes
# the outputs, so loading torchvision weights needs it. The reference momentum is 0.01 (TensorFlow's
# decay 0.99), fine for long ImageNet training but far too slow for the short CPU runs of this
# package: after a few hundred steps the running statistics are still near their initial values and
# an eval-mode model predicts one class everywhere (measured: eval mIoU 0.37 with 0.01 vs 0.68 with
# 0.1, same training loss, LR-ASPP-Small, 120 steps at 64 px). Momentum is not stored in a state
# dict, so PyTorch's default 0.1 keeps torchvision weights loadable and their outputs identical.
BN_EPS = 0.001
BN_MOMENTUM = 0.1


class MobileNetV3Features(nn.Sequential):
    """Stem conv, bnecks and last 1x1 conv of MobileNetV3, with output stride 16 (or 32).

    Attributes a segmentation head needs:
    ``low_index`` / ``low_channels``: the layer whose output is the 1/8 "low-level" feature map;
    ``out_channels``: channels of the last layer (1/16 map).

    ``low_index`` follows torchvision's rule: the fourth-from-last down-sampling point, i.e. the
    bneck that *enters* stride 8 (index 4 for Large, 40 channels; index 2 for Small, 24 channels).
    """

    def __init__(self, table: tuple[BneckSpec, ...], *, last_conv: int, tail_rows: int,
                 width_mult: float = 1.0, dilated: bool = True, reduced_tail: bool = False) -> None:
        def width(channels: int) -> int:
            return make_divisible(channels * width_mult)

        first_tail_row = len(table) - tail_rows
        stem_ch = width(16)
        layers: list[nn.Module] = [ConvBNAct(3, stem_ch, 3, 2, act="hswish")]  # -> 1/2
        stride_so_far = 2
        low_index, low_channels = None, 0
        in_ch = stem_ch
        for row_index, spec in enumerate(table):
            in_tail = row_index >= first_tail_row
            divider = 2 if (in_tail and reduced_tail) else 1
            # the first tail block widens from the full-width stage before it: expansion kept
            expanded = width(spec.expanded // (divider if row_index > first_tail_row else 1))
            out_ch = width(spec.out // divider)
            # In the tail, "dilated" swaps the stride-2 for dilation 2 (Sec. 6.4: output stride 16).
            dilation = 2 if (in_tail and dilated) else 1
            layers.append(InvertedResidual(in_ch, expanded, out_ch, kernel_size=spec.kernel,
                                           stride=spec.stride, dilation=dilation,
                                           use_se=spec.use_se, act=spec.act))
            if spec.stride == 2 and dilation == 1:
                stride_so_far *= 2
                if stride_so_far == 8:
                    low_index = len(layers) - 1
                    low_channels = out_ch
            in_ch = out_ch
        divider = 2 if reduced_tail else 1
        last_ch = width(last_conv // divider)
        layers.append(ConvBNAct(in_ch, last_ch, 1, act="hswish"))
        super().__init__(*layers)
        assert low_index is not None, "the table must contain a stride-8 stage"
        self.low_index = low_index
        self.low_channels = low_channels
        self.out_channels = last_ch
        self.output_stride = stride_so_far
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps, module.momentum = BN_EPS, BN_MOMENTUM

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """Return ``(low, high)``: the 1/8 map after layer ``low_index`` and the final map.

        (Unlike a plain ``nn.Sequential`` this returns two maps, which the segmentation head needs.)
        """
        low = x
        for index, layer in enumerate(self):
            x = layer(x)
            if index == self.low_index:
                low = x  # (N, low_channels, H/8, W/8)
        return low, x  # high: (N, out_channels, H/16, W/16) when dilated


def mobilenet_v3_large(*, width_mult: float = 1.0, dilated: bool = True,
                       reduced_tail: bool = False) -> MobileNetV3Features:
    """MobileNetV3-Large features (Table 1), output stride 16 when ``dilated``."""
    return MobileNetV3Features(LARGE_TABLE, last_conv=LARGE_LAST_CONV, tail_rows=LARGE_TAIL_ROWS,
                               width_mult=width_mult, dilated=dilated, reduced_tail=reduced_tail)


def mobilenet_v3_small(*, width_mult: float = 1.0, dilated: bool = True,
                       reduced_tail: bool = False) -> MobileNetV3Features:
    """MobileNetV3-Small features (Table 2), output stride 16 when ``dilated``."""
    return MobileNetV3Features(SMALL_TABLE, last_conv=SMALL_LAST_CONV, tail_rows=SMALL_TAIL_ROWS,
                               width_mult=width_mult, dilated=dilated, reduced_tail=reduced_tail)

"""LR-ASPP ("Lite Reduced Atrous Spatial Pyramid Pooling") on MobileNetV3 (Howard et al., 2019).

Section 6.4 and Figure 10 of "Searching for MobileNetV3". The head has three branches:

1. high-level (1/16 map): 1x1 conv -> BN -> ReLU to 128 channels            ``F1``
2. a gate from the same map: global average pool -> 1x1 conv -> sigmoid     ``F2`` (N, 128, 1, 1)
   ``F1 * F2`` is upsampled to the 1/8 map and classified by a 1x1 conv     ``F3``
3. low-level (1/8 map): a 1x1 conv classifier                              ``F4``

``logits = upsample(F3 + F4)`` to the input size (bilinear).

**Difference to the paper:** the paper's gate pools with a 49x49 kernel and stride (16, 20) (tuned
for 1024x2048 Cityscapes crops); like torchvision we use a *global* average pool
(``AdaptiveAvgPool2d(1)``), which works for any input size and exports cleanly.

Module and key names copy torchvision's ``lraspp_mobilenet_v3_large``: ``backbone.<i>`` are the
MobileNetV3 ``features`` layers, the head is ``classifier.cbr.0/1``, ``classifier.scale.1``,
``classifier.low_classifier`` and ``classifier.high_classifier``, so its state dict loads with
``strict=True`` (3,221,538 parameters for 21 classes).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from segnas_lite.models.mobilenetv3 import (MobileNetV3Features, mobilenet_v3_large,
                                            mobilenet_v3_small)


class LRASPPHead(nn.Module):
    """The LR-ASPP decoder: ``(low, high) -> logits`` at the size of ``low`` (1/8)."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int, *,
                 inter_channels: int = 128) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(high_channels, inter_channels, 1, bias=False),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(inplace=True),
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # global pool; the paper uses 49x49 / stride (16, 20)
            nn.Conv2d(high_channels, inter_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)  # (N, 128, h16, w16) * (N, 128, 1, 1)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)  # (N, classes, h8, w8)


class LRASPP(nn.Module):
    """MobileNetV3 backbone (output stride 16) + LR-ASPP head; returns (N, classes, H, W) logits."""

    def __init__(self, backbone: MobileNetV3Features, *, num_classes: int,
                 inter_channels: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = LRASPPHead(backbone.low_channels, backbone.out_channels, num_classes,
                                     inter_channels=inter_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.backbone(x)
        logits = self.classifier(low, high)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def lraspp_mobilenetv3_large(*, num_classes: int, width_mult: float = 1.0,
                             reduced_tail: bool = False, inter_channels: int = 128) -> LRASPP:
    """LR-ASPP on MobileNetV3-Large. Defaults match torchvision's ``lraspp_mobilenet_v3_large``."""
    backbone = mobilenet_v3_large(width_mult=width_mult, dilated=True, reduced_tail=reduced_tail)
    return LRASPP(backbone, num_classes=num_classes, inter_channels=inter_channels)


def lraspp_mobilenetv3_small(*, num_classes: int, width_mult: float = 1.0,
                             reduced_tail: bool = False, inter_channels: int = 128) -> LRASPP:
    """LR-ASPP on MobileNetV3-Small (low level: 24 ch at 1/8, high level: 576 ch at 1/16)."""
    backbone = mobilenet_v3_small(width_mult=width_mult, dilated=True, reduced_tail=reduced_tail)
    return LRASPP(backbone, num_classes=num_classes, inter_channels=inter_channels)

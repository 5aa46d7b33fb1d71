"""Fast-SCNN (Poudel, Liwicki and Cipolla, 2019, "Fast-SCNN: Fast Semantic Segmentation Network").

Four parts (paper Table 1 and Fig. 1), for an input of size H x W:

1. ``learning_to_downsample``: conv3x3 s2 -> 32, DSConv s2 -> 48, DSConv s2 -> 64      (1/8)
2. ``global_feature_extractor``: MobileNetV2 bottlenecks (c=64, t=6, n=3, s=2),
   (96, 6, 3, 2), (128, 6, 3, 1), then a pyramid pooling module (bins 1, 2, 3, 6)    (1/32)
3. ``feature_fusion``: the 1/32 branch is upsampled x4, passed through a depthwise 3x3 conv
   (dilation 4 in the paper's Table 3, kept here) and a 1x1 conv; the 1/8 branch through a 1x1
   conv; both are added and ReLU'd                                                    (1/8)
4. ``classifier``: two DSConv 128, dropout, a 1x1 conv to the classes; then bilinear upsampling
   to the input size.

With 19 classes the model has 1,137,795 parameters (the paper reports 1.11 million; a common
public implementation counts 1,138,051 because its two fusion 1x1 convs keep a bias before BN).

Odd input sizes work because every upsampling uses the exact size of the map it joins, never a
fixed scale factor. Auxiliary heads (paper Sec. 4.1: auxiliary losses, weight 0.4, at the end of
learning-to-downsample and of the global feature extractor) are built with ``aux=True``.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from segnas_lite.models.layers import ConvBNAct, DepthwiseSeparable, InvertedResidual


def adaptive_avg_matrix(size: int, bins: int, *, dtype: torch.dtype = torch.float32,
                        device: torch.device | None = None) -> torch.Tensor:
    """The (bins, size) matrix ``A`` with ``A @ v == adaptive_avg_pool1d(v, bins)`` for a vector v.

    Bin ``i`` averages positions ``floor(i * size / bins)`` up to (excluding)
    ``ceil((i + 1) * size / bins)``, exactly PyTorch's adaptive pooling rule; the windows overlap
    when ``bins`` does not divide ``size``.
    """
    bin_index = torch.arange(bins, device=device)
    start = (bin_index * size) // bins                     # (bins,)
    end = ((bin_index + 1) * size + bins - 1) // bins      # (bins,) ceil division
    position = torch.arange(size, device=device)
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])  # (bins, size)
    inside = inside.to(dtype)
    return inside / inside.sum(dim=1, keepdim=True)


def bin_average_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Adaptive average pooling to ``bins x bins`` written as two matrix products.

    Why not ``F.adaptive_avg_pool2d``? Exporters (ONNX, OpenVINO) turn adaptive pooling into a plain
    average pool with one kernel and one stride, which is only correct when ``bins`` divides the
    map; Fast-SCNN's 1/32 map is e.g. 8 x 11 for a 250 x 330 input, and bins 3 and 6 divide neither.
    Average pooling is linear, so ``pooled = A_h @ x @ A_w^T`` with the averaging matrices of
    :func:`adaptive_avg_matrix` gives exactly the adaptive result, and a matrix product exports
    everywhere. The matrices are built with tensor ops from the map's size, so a traced/exported
    graph rebuilds them for each input size (an OpenVINO model converted at 250 x 330 also runs
    correctly at other sizes). Cost: two small matmuls per bin, negligible next to the convs.
    """
    height, width = x.shape[-2], x.shape[-1]
    rows = adaptive_avg_matrix(height, bins, dtype=x.dtype, device=x.device)  # (bins, H)
    cols = adaptive_avg_matrix(width, bins, dtype=x.dtype, device=x.device)    # (bins, W)
    # (N, C, H, W) -> (N, C, bins, W) -> (N, C, bins, bins)
    return rows @ x @ cols.transpose(0, 1)


class PyramidPooling(nn.Module):
    """Pyramid pooling module (PSPNet, Zhao et al., 2017) as used in Fast-SCNN.

    For each bin count b in ``bins``: pool to b x b, 1x1 conv to ``in_ch / 4``, upsample back.
    The four maps are concatenated with the input (2 * in_ch channels) and fused by a 1x1 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(ConvBNAct(in_ch, in_ch // 4, 1) for _ in bins)
        self.project = ConvBNAct(in_ch + len(bins) * (in_ch // 4), out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pyramid = [x]
        for bins, stage in zip(self.bins, self.stages):
            pooled = stage(bin_average_pool(x, bins))  # (N, C/4, bins, bins)
            pyramid.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return self.project(torch.cat(pyramid, dim=1))  # (N, 2C, H, W) -> (N, out, H, W)


class LearningToDownsample(nn.Sequential):
    """conv3x3 s2 -> 32, DSConv s2 -> 48, DSConv s2 -> 64: a 1/8 map with 64 channels."""

    def __init__(self) -> None:
        super().__init__(
            ConvBNAct(3, 32, 3, 2),
            DepthwiseSeparable(32, 48, 2),
            DepthwiseSeparable(48, 64, 2),
        )


class GlobalFeatureExtractor(nn.Module):
    """MobileNetV2 bottleneck stages (c, t, n, s) then pyramid pooling; 1/8 -> 1/32, 128 ch."""

    STAGES: tuple[tuple[int, int, int, int], ...] = ((64, 6, 3, 2), (96, 6, 3, 2), (128, 6, 3, 1))

    def __init__(self, in_ch: int = 64, out_ch: int = 128) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for channels, expansion, repeats, stride in self.STAGES:
            for repeat in range(repeats):
                # Only the first block of a stage strides (MobileNetV2, Sandler et al., Table 2).
                blocks.append(InvertedResidual(in_ch, in_ch * expansion, channels,
                                               stride=stride if repeat == 0 else 1, act="relu"))
                in_ch = channels
        self.bottlenecks = nn.Sequential(*blocks)
        self.ppm = PyramidPooling(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ppm(self.bottlenecks(x))


class FeatureFusion(nn.Module):
    """Fuse the 1/8 "high resolution" and 1/32 "low resolution" branches (paper Table 3)."""

    def __init__(self, high_ch: int = 64, low_ch: int = 128, out_ch: int = 128, *,
                 dilation: int = 4) -> None:
        super().__init__()
        self.low_depthwise = ConvBNAct(low_ch, low_ch, 3, groups=low_ch, dilation=dilation)
        self.low_project = ConvBNAct(low_ch, out_ch, 1, act="none")
        self.high_project = ConvBNAct(high_ch, out_ch, 1, act="none")

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        # "Upsample x4" done as "upsample to the 1/8 map's size", which also handles odd sizes.
        low = F.interpolate(low, size=high.shape[-2:], mode="bilinear", align_corners=False)
        low = self.low_project(self.low_depthwise(low))
        return F.relu(low + self.high_project(high))


class Classifier(nn.Sequential):
    """Two DSConv 128 -> dropout -> 1x1 conv to the classes (logits at 1/8)."""

    def __init__(self, in_ch: int, num_classes: int, *, dropout: float = 0.1) -> None:
        super().__init__(
            DepthwiseSeparable(in_ch, in_ch),
            DepthwiseSeparable(in_ch, in_ch),
            nn.Dropout(dropout),
            nn.Conv2d(in_ch, num_classes, 1),
        )


class AuxHead(nn.Sequential):
    """Training-only head for an auxiliary loss: conv3x3 -> BN -> ReLU -> dropout -> 1x1 conv."""

    def __init__(self, in_ch: int, num_classes: int, *, hidden: int = 32) -> None:
        super().__init__(ConvBNAct(in_ch, hidden, 3), nn.Dropout(0.1),
                         nn.Conv2d(hidden, num_classes, 1))


class FastSCNN(nn.Module):
    """Fast-SCNN. ``forward`` returns logits (N, num_classes, H, W) at the input size.

    With ``aux=True`` *and* in training mode it returns ``(logits, [aux_1_8, aux_1_32])``, the aux
    logits also at the input size; in eval mode it always returns just the logits tensor.
    """

    def __init__(self, *, num_classes: int, aux: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        self.learning_to_downsample = LearningToDownsample()
        self.global_feature_extractor = GlobalFeatureExtractor(64, 128)
        self.feature_fusion = FeatureFusion(64, 128, 128)
        self.classifier = Classifier(128, num_classes, dropout=dropout)
        self.aux = aux
        if aux:
            self.aux_heads = nn.ModuleList([AuxHead(64, num_classes), AuxHead(128, num_classes)])

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        size = x.shape[-2:]
        high = self.learning_to_downsample(x)          # (N, 64, H/8, W/8)
        low = self.global_feature_extractor(high)      # (N, 128, H/32, W/32)
        fused = self.feature_fusion(high, low)         # (N, 128, H/8, W/8)
        logits = self.classifier(fused)                # (N, classes, H/8, W/8)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if not (self.aux and self.training):
            return logits
        aux_logits = [F.interpolate(head(feature), size=size, mode="bilinear", align_corners=False)
                      for head, feature in zip(self.aux_heads, (high, low))]
        return logits, aux_logits


def fast_scnn(*, num_classes: int, aux: bool = False, dropout: float = 0.1) -> FastSCNN:
    """Build Fast-SCNN (keyword-only factory used by :func:`segnas_lite.zoo.build_model`)."""
    return FastSCNN(num_classes=num_classes, aux=aux, dropout=dropout)

"""Segmentation metrics from a confusion matrix.

Every metric here is read off one ``num_classes x num_classes`` confusion matrix ``M`` where
``M[t, p]`` counts pixels of true class ``t`` predicted as ``p``. Pixels whose label equals
``ignore_index`` are left out. For class c (Long et al., FCN, 2015, Sec. 5):

    IoU_c = M[c, c] / (sum_p M[c, p] + sum_t M[t, c] - M[c, c])      (TP / (TP + FN + FP))
    mIoU  = mean of IoU_c over classes that occur in the labels or the predictions
    pixel accuracy = trace(M) / sum(M)

A class that appears in neither labels nor predictions has IoU "undefined" (NaN) and is left out of
the mean, instead of counting as 0 or 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segnas_lite.errors import SegnasError


class MetricsError(SegnasError, ValueError):
    """Predictions and labels that cannot be compared (shape mismatch, class out of range)."""


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """Confusion matrix (num_classes, num_classes) of int64 counts; rows are true classes."""
    if pred.shape != target.shape:
        raise MetricsError(f"prediction shape {tuple(pred.shape)} != label shape "
                           f"{tuple(target.shape)}; pass argmax masks of the label's size")
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise MetricsError(f"label values must lie in [0, {num_classes}) or equal ignore_index="
                           f"{ignore_index}; found {sorted(set(target.unique().tolist()))[:10]}")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise MetricsError(f"predicted class out of range [0, {num_classes})")
    flat = target * num_classes + pred  # (P,) one bin per (true, predicted) pair
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)  # (true, predicted)


@dataclass
class SegmentationMetrics:
    """Read-only summary of a confusion matrix."""

    confusion: np.ndarray  # (C, C) int64, rows = true class

    @property
    def per_class_iou(self) -> np.ndarray:
        """IoU per class; NaN where the class is in neither labels nor predictions."""
        m = self.confusion.astype(np.float64)
        tp = np.diag(m)
        union = m.sum(axis=0) + m.sum(axis=1) - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    @property
    def miou(self) -> float:
        iou = self.per_class_iou
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def as_dict(self, class_names: tuple[str, ...] | None = None) -> dict:
        names = class_names or tuple(str(i) for i in range(len(self.confusion)))
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": {n: (None if np.isnan(v) else float(v))
                              for n, v in zip(names, self.per_class_iou)},
        }


class ConfusionMeter:
    """Accumulates a confusion matrix over batches: ``update(logits_or_masks, labels)``."""

    def __init__(self, num_classes: int, *, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` is either logits (N, C, H, W) or a mask (N, H, W); ``target`` is (N, H, W)."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(dim=1)
        self.matrix += confusion_matrix(pred.cpu(), target.cpu(), num_classes=self.num_classes,
                                        ignore_index=self.ignore_index)

    def compute(self) -> SegmentationMetrics:
        return SegmentationMetrics(self.matrix.numpy().copy())


def iou_per_image(pred: torch.Tensor, target: torch.Tensor, *, num_classes: int,
                  ignore_index: int = 255) -> float:
    """mIoU of a single image (used by the mask viewer)."""
    return SegmentationMetrics(confusion_matrix(pred, target, num_classes=num_classes,
                                                ignore_index=ignore_index).numpy()).miou

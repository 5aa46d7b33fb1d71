"""Segmentation metrics from a confusion matrix.

Every metric here is read off one ``num_classes x num_classes`` confusion matrix ``M`` where
``M[t, p]`` counts pixels of true class ``t`` predicted as ``p``. Pixels whose label equals
``ignore_index`` are left out. For class c (Long et al., FCN, 2015, Sec. 5):

    IoU_c = M[c, c] / (sum_p M[c, p] + sum_t M[t, c] - M[c, c])      (TP / (TP + FN + FP))
    mIoU  = mean of IoU_c over classes that occur in the labels or the predictions
    pixel accuracy = trace(M) / sum(M)

A class that appears in neither labels nor predictions has IoU "undefined" (NaN) and is left out of
the mean, instead of counting as 0 or 1.

Over a SET of images there are two mIoUs, and ``iou`` makes you choose (``reduction``):

* ``"pooled"``: one confusion matrix over every pixel of the set, then the IoU (what ``ConfusionMeter``,
  ``train.evaluate`` and the benchmarks report; every pixel weighs the same);
* ``"per_image"``: the IoU of each image, then the mean over images (every image weighs the same:
  a small person missed in one photo costs as much as a large one).

Edges and time have scores of their own, since the interior of a mask dominates any IoU:
``boundary_f_score`` (boundary precision/recall of Perazzi et al., "A Benchmark Dataset and
Evaluation Methodology for Video Object Segmentation", CVPR 2016), ``trimap_iou`` (IoU in a band
around the true edge, Kohli, Ladicky and Torr, IJCV 2009), and for video ``flip_rate`` and
``consecutive_iou`` (how much a mask changes from one frame to the next).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

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


REDUCTIONS = ("pooled", "per_image")


def _as_images(masks) -> list[torch.Tensor]:
    """One (H, W) mask, a stack (N, H, W) or a sequence of (H_i, W_i) masks -> a list of (H, W)."""
    if isinstance(masks, (list, tuple)):
        return [torch.as_tensor(np.asarray(m)) for m in masks]
    masks = torch.as_tensor(np.asarray(masks)) if not isinstance(masks, torch.Tensor) else masks
    if masks.ndim == 2:
        return [masks]
    if masks.ndim == 3:
        return list(masks)
    raise MetricsError(f"expected an (H, W) mask, an (N, H, W) stack or a list of masks, got "
                       f"shape {tuple(masks.shape)}")


class IoUMeter:
    """IoU over a set of images given one by one (or in stacks): ``update(pred, target)``, then
    ``compute()``. What is scored and how it is averaged are explicit (see ``iou``)."""

    def __init__(self, *, num_classes: int, reduction: str, class_index: int | None = None,
                 ignore_index: int = 255, empty: float = float("nan")) -> None:
        if reduction not in REDUCTIONS:
            raise MetricsError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if class_index is not None and not 0 <= class_index < num_classes:
            raise MetricsError(f"class_index {class_index} outside [0, {num_classes})")
        self.num_classes, self.reduction, self.class_index = num_classes, reduction, class_index
        self.ignore_index, self.empty = ignore_index, empty
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)  # pooled
        self.scores: list[float] = []  # per image

    def _score(self, confusion: torch.Tensor) -> float:
        per_class = SegmentationMetrics(confusion.numpy()).per_class_iou
        if self.class_index is not None:
            value = per_class[self.class_index]
        else:
            value = np.nanmean(per_class) if np.isfinite(per_class).any() else np.nan
        return self.empty if np.isnan(value) else float(value)

    def update(self, pred, target) -> float:
        """Add one (H, W) mask, an (N, H, W) stack or a sequence of masks (NumPy or torch, integer
        classes or bool); returns the score of just these images (reduced the meter's way)."""
        preds, targets = _as_images(pred), _as_images(target)
        if len(preds) != len(targets) or not preds:
            raise MetricsError(f"need as many predicted as true masks (at least one), got "
                               f"{len(preds)} and {len(targets)}")
        confusions = [confusion_matrix(p, t, num_classes=self.num_classes,
                                       ignore_index=self.ignore_index)
                      for p, t in zip(preds, targets)]
        added = torch.stack(confusions).sum(0)  # (C, C)
        self.confusion += added
        scores = [self._score(c) for c in confusions]
        self.scores += scores
        return self._score(added) if self.reduction == "pooled" else _mean(scores)

    def compute(self) -> float:
        """The score of every image added so far; NaN when it is undefined for all of them."""
        if self.reduction == "pooled":
            return self._score(self.confusion) if self.scores else float("nan")
        return _mean(self.scores)


def _mean(scores: Sequence[float]) -> float:
    values = np.asarray(scores, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def iou(pred, target, *, num_classes: int, reduction: str, class_index: int | None = None,
        ignore_index: int = 255, empty: float = float("nan")) -> float:
    """IoU of predicted masks against true ones: the mean over classes, or one class's.

    ``pred``, ``target``: one (H, W) mask, an (N, H, W) stack or a sequence of masks (sizes may
    differ between images), NumPy or torch, integer classes or bool (False/True = class 0/1).
    ``class_index``: None for the mean IoU over the classes present in either mask (mIoU); an
    integer for that class's IoU alone (e.g. 1: the foreground IoU).
    ``reduction``: ``"pooled"`` (one confusion matrix over every pixel of the set) or
    ``"per_image"`` (the score of each image, then the mean over images); see the module docstring.
    ``empty``: the score of an image (per_image) or of the set (pooled) in which the class(es) occur
    in neither mask, i.e. IoU = 0 / 0. NaN (the default) leaves such images out of the mean; 1.0
    says "two empty masks agree perfectly". Pixels whose target is ``ignore_index`` are left out.
    ``IoUMeter`` does the same for images that come one at a time.
    """
    meter = IoUMeter(num_classes=num_classes, reduction=reduction, class_index=class_index,
                     ignore_index=ignore_index, empty=empty)
    meter.update(pred, target)
    return meter.compute()


# --------------------------------------------------------------------------- edges
def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean dilation of an (H, W) mask by a (2r+1) x (2r+1) square (a max filter)."""
    if radius < 0:
        raise MetricsError(f"radius must be >= 0, got {radius}")
    t = torch.as_tensor(np.asarray(mask, dtype=np.float32))[None, None]  # (1, 1, H, W)
    return F.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy() > 0


def boundary(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (its inner contour)."""
    mask = np.asarray(mask, bool)
    inside = np.pad(mask, 1, mode="edge")  # the image border is not an edge
    eroded = (inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:])
    return mask & ~eroded


def default_tolerance(shape: tuple[int, int]) -> int:
    """DAVIS's boundary tolerance: 0.8% of the image diagonal, at least 1 pixel."""
    return max(1, round(0.008 * float(np.hypot(*shape[:2]))))


@dataclass(frozen=True)
class BoundaryScore:
    precision: float
    recall: float
    f: float


def boundary_f_score(pred: np.ndarray, true: np.ndarray, *, tolerance: int | None = None,
                     valid: np.ndarray | None = None) -> BoundaryScore:
    """Boundary precision, recall and F between two boolean masks (Perazzi et al., CVPR 2016).

    Precision: the share of predicted contour pixels within ``tolerance`` pixels (a square) of the
    true contour; recall the other way round; F their harmonic mean. ``valid`` (H, W) bool leaves
    unlabelled pixels out. Two empty contours agree perfectly (1.0)."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise MetricsError(f"masks differ in shape: {pred.shape} vs {true.shape}")
    tolerance = default_tolerance(true.shape) if tolerance is None else tolerance
    bp, bt = boundary(pred), boundary(true)
    if valid is not None:
        bp, bt = bp & valid, bt & valid
    if not bp.any() and not bt.any():
        return BoundaryScore(1.0, 1.0, 1.0)
    precision = float((bp & dilate(bt, tolerance)).sum() / bp.sum()) if bp.any() else 0.0
    recall = float((bt & dilate(bp, tolerance)).sum() / bt.sum()) if bt.any() else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return BoundaryScore(precision, recall, f)


def trimap_iou(pred: np.ndarray, true: np.ndarray, *, width: int | None = None,
               valid: np.ndarray | None = None) -> float:
    """Foreground IoU counted only in a band of ``width`` pixels around the true contour (the
    "trimap" of Kohli et al., IJCV 2009): the interior, which any model gets right, is left out.
    Default width: the boundary tolerance. 1.0 when neither mask has foreground in the band."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    width = default_tolerance(true.shape) if width is None else width
    band = dilate(boundary(true), width)
    if valid is not None:
        band &= valid
    target = np.where(band, true, 255).astype(np.int64)  # outside the band: ignored
    return iou(pred.astype(np.int64), target, num_classes=2, class_index=1, reduction="pooled",
               empty=1.0)


# --------------------------------------------------------------------------- time
def _as_clip(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3 or len(masks) < 2:
        raise MetricsError(f"need at least two (H, W) masks of one size, got shape {masks.shape}")
    return masks


def flip_rate(masks: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean share of pixels whose label changes between consecutive frames (0 = perfectly steady).
    On a static scene every flip is jitter."""
    masks = _as_clip(masks)
    return float((masks[1:] != masks[:-1]).mean())


def consecutive_iou(masks: Sequence[np.ndarray] | np.ndarray, *, foreground: int = 1) -> float:
    """Mean foreground IoU between consecutive masks, per frame pair (1 = steady; pairs with no
    foreground at all count as 1)."""
    fg = _as_clip(masks) == foreground  # (T, H, W)
    return iou(fg[1:], fg[:-1], num_classes=2, class_index=1, reduction="per_image", empty=1.0)

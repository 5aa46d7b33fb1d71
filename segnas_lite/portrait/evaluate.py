"""How good are a cut-out's edges? Scores where the edges are, before and after refinement.

mIoU is dominated by a mask's interior, which any model gets right; refinement only moves the
edges. So every cut-out is judged by three numbers (``EdgeScores``): the two-class mIoU
(background, foreground), the boundary F-score and the trimap IoU (``segnas_lite.metrics``).
``EdgeMeter`` gathers them over a set of photos, with the mIoU reduced the way you say (pooled over
every pixel, or per photo); ``evaluate_refinement`` compares refinement settings on a data set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from segnas_lite.data import denormalize
from segnas_lite.metrics import IoUMeter, boundary_f_score, trimap_iou
from segnas_lite.portrait.refine import RefineConfig, refine_alpha
from segnas_lite.runio import progress
from segnas_lite.timing import time_each


@dataclass(frozen=True)
class EdgeScores:
    miou: float  # two-class (background, foreground) mIoU
    boundary_f: float
    trimap_iou: float

    def versus(self, after: "EdgeScores", *, sep: str = ", ") -> str:
        """'mIoU 0.912 -> 0.925, boundary F ... -> ..., trimap IoU ... -> ...'."""
        return sep.join(f"{label} {getattr(self, key):.3f} -> {getattr(after, key):.3f}"
                        for key, label in (("miou", "mIoU"), ("boundary_f", "boundary F"),
                                           ("trimap_iou", "trimap IoU")))


class EdgeMeter:
    """``EdgeScores`` over a set of (H, W) boolean masks given one at a time.

    ``reduction`` says how the mIoU is averaged (``metrics.iou``): ``"pooled"`` over every pixel of
    the set, or ``"per_image"``; boundary F and trimap IoU are always means over images."""

    def __init__(self, *, reduction: str, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index
        self.miou = IoUMeter(num_classes=2, reduction=reduction, ignore_index=ignore_index)
        self.boundary_f: list[float] = []
        self.trimap_iou: list[float] = []

    def update(self, pred: np.ndarray, true: np.ndarray, *,
               valid: np.ndarray | None = None) -> EdgeScores:
        """Add one photo's predicted and true foreground; ``valid`` leaves unlabelled pixels out.
        Returns this photo's own scores."""
        pred, true = np.asarray(pred, bool), np.asarray(true, bool)
        target = true.astype(np.int64) if valid is None else np.where(valid, true, self.ignore_index)
        scores = EdgeScores(self.miou.update(pred.astype(np.int64), target),
                            boundary_f_score(pred, true, valid=valid).f,
                            trimap_iou(pred, true, valid=valid))
        self.boundary_f.append(scores.boundary_f)
        self.trimap_iou.append(scores.trimap_iou)
        return scores

    def compute(self) -> EdgeScores:
        return EdgeScores(self.miou.compute(), float(np.mean(self.boundary_f)),
                          float(np.mean(self.trimap_iou)))


@dataclass
class RefinementRow:
    """One refinement setting's scores over a data set."""

    name: str
    miou: float  # two-class mIoU of alpha >= 0.5, pooled over every pixel of the set
    boundary_f: float  # mean over images
    trimap_iou: float  # mean over images
    seconds_per_image: float  # the refinement alone: median over the timed images (one timer)


def evaluate_refinement(prob_fn: Callable[[torch.Tensor], np.ndarray], dataset,
                        configs: dict[str, RefineConfig], *, foreground: int = 1,
                        ignore_index: int = 255, limit: int | None = None,
                        timed_images: int = 4, quiet: bool = True) -> list[RefinementRow]:
    """Score each refinement setting on ``dataset`` (items: normalised (3, H, W) image, (H, W)
    class mask, at the size the edges are judged at).

    ``prob_fn(image) -> (h, w)`` foreground probability at the model's own size; it is resized to
    (H, W) and refined with the image as guide. The same probabilities feed every setting, so the
    rows differ only by refinement. The mIoU is pooled over the set (the package's mIoU: one
    confusion over all pixels, not a mean of per-image scores). The time per image counts the
    refinement alone, measured by the package's one timer (``timing.time_each``: a warm-up, then
    each of the first ``timed_images`` images once; the median)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    meters = {name: EdgeMeter(reduction="pooled", ignore_index=ignore_index) for name in configs}
    timed = []  # (picture, probability) of the first images, to time every setting on
    for index in progress(range(n), quiet=quiet, desc="refinement"):
        image, mask = dataset[index]
        mask = np.asarray(mask)
        valid = mask != ignore_index
        true = (mask == foreground) & valid
        picture = denormalize(torch.as_tensor(image)).permute(1, 2, 0).numpy()  # (H, W, 3)
        prob = prob_fn(torch.as_tensor(image))
        if len(timed) < timed_images:
            timed.append((picture, prob))
        for name, config in configs.items():
            meters[name].update(refine_alpha(picture, prob, config) >= 0.5, true, valid=valid)
    rows = []
    for name, meter in meters.items():
        scores = meter.compute()
        rows.append(RefinementRow(name, scores.miou, scores.boundary_f, scores.trimap_iou,
                                  refinement_ms(timed, configs[name]) / 1000))
    return rows


def refinement_ms(pictures: Sequence[tuple[np.ndarray, np.ndarray]], config: RefineConfig, *,
                  warmup: int = 1) -> float:
    """Median milliseconds of ``refine_alpha`` per (picture, probability) pair, by the package's
    one timer (``timing.time_each``); nan without pairs."""
    if not pictures:
        return float("nan")
    _, timing = time_each(lambda pair: refine_alpha(pair[0], pair[1], config), pictures,
                          backend="refinement", precision="f32", threads=torch.get_num_threads(),
                          warmup=warmup)
    return timing.median_ms

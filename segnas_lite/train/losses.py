"""The training losses: per-pixel cross-entropy, reduced three ways (``TrainConfig.loss``).

* ``"ce"``: the mean over labelled pixels;
* ``"ohem"``: the hardest pixels only (Shrivastava et al., CVPR 2016; Wu, Shen & van den Hengel, 2016);
* ``"boundary"``: pixels near a class edge weigh more (``boundary_band``; U-Net, Ronneberger et al.,
  2015, Eq. 2).

``segmentation_loss`` adds the auxiliary heads of a model that returns ``(main, [aux, ...])`` in
training (Fast-SCNN, Sec. 4.1). The settings come from ``engine.TrainConfig``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from segnas_lite.data import IGNORE_INDEX

if TYPE_CHECKING:  # the settings only: engine imports this module
    from segnas_lite.train.engine import TrainConfig

LOSSES = ("ce", "ohem", "boundary")


def boundary_band(target: torch.Tensor, *, width: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(N, H, W) bool: labelled pixels with another class within ``width`` pixels (a square window).

    A pixel lies on the band when the largest and the smallest class index in its
    (2 width + 1)^2 window differ: two max-pools, no loop. Ignored pixels count as neither class.
    """
    labels = target.unsqueeze(1).float()  # (N, 1, H, W)
    valid = target != ignore_index
    high = torch.where(valid.unsqueeze(1), labels, torch.full_like(labels, -1.0))
    low = torch.where(valid.unsqueeze(1), -labels, torch.full_like(labels, -float(ignore_index)))
    window = dict(kernel_size=2 * width + 1, stride=1, padding=width)
    largest = F.max_pool2d(high, **window)
    smallest = -F.max_pool2d(low, **window)
    return ((largest != smallest).squeeze(1)) & valid


def pixel_loss(logits: torch.Tensor, target: torch.Tensor, *, config: "TrainConfig") -> torch.Tensor:
    """One scalar from per-pixel cross-entropy, reduced as ``config.loss`` says.

    * ``"ce"``: the mean over labelled pixels.
    * ``"ohem"``: the mean over the ``ohem_keep`` share of labelled pixels with the largest loss
      (online hard example mining for segmentation: Shrivastava et al., CVPR 2016; the "bootstrapped"
      cross-entropy of Wu, Shen & van den Hengel, 2016). Easy background stops dominating the gradient.
    * ``"boundary"``: a weighted mean, weight ``1 + boundary_weight`` on the ``boundary_width`` band
      around class edges (``boundary_band``), 1 elsewhere; like the border weight map of U-Net
      (Ronneberger et al., 2015, Eq. 2), it spends the gradient where masks are wrong: the outline.
    """
    ignore = config.ignore_index
    if config.loss == "ce":
        return F.cross_entropy(logits, target, ignore_index=ignore)
    per_pixel = F.cross_entropy(logits, target, ignore_index=ignore, reduction="none")  # (N, H, W)
    valid = target != ignore
    if not valid.any():
        return logits.sum() * 0.0  # nothing labelled: no signal, but keep the graph
    if config.loss == "ohem":
        losses = per_pixel[valid]
        keep = max(1, int(round(config.ohem_keep * losses.numel())))
        return losses.topk(keep).values.mean()
    band = boundary_band(target, width=config.boundary_width, ignore_index=ignore)
    weight = 1.0 + config.boundary_weight * band.float()
    return (per_pixel * weight)[valid].sum() / weight[valid].sum()


def segmentation_loss(output: torch.Tensor | tuple, target: torch.Tensor, *,
                      config: "TrainConfig") -> torch.Tensor:
    """``pixel_loss`` of the output; a model may return ``(main, [aux, ...])`` in training, whose
    auxiliary terms are added with weight ``config.aux_weight``."""
    if isinstance(output, tuple):
        main, aux = output
        loss = pixel_loss(main, target, config=config)
        for a in aux:
            loss = loss + config.aux_weight * pixel_loss(a, target, config=config)
        return loss
    return pixel_loss(output, target, config=config)

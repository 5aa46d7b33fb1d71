"""Steady masks on video: an exponential moving average of the probabilities, and what it costs.

A mask computed frame by frame flickers: a pixel whose probability hovers around 0.5 flips between
person and background from one frame to the next because of sensor noise alone (the seed article's
"jitter"; ``metrics.flip_rate`` counts it). ``EMASmoother`` keeps
``p_t = m * p_(t-1) + (1 - m) * q_t``. A larger momentum m steadies the mask and makes it lag: after
a sudden change the average needs ``ema_lag_frames(m)`` frames to cross 0.5 (``m^n <= 1/2``).
``smoothing_tradeoff`` measures both sides on a static and a moving clip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from segnas_lite.metrics import flip_rate, iou


class EMASmoother:
    """Exponential moving average of probability maps: ``p_t = m p_(t-1) + (1 - m) q_t``.

    ``momentum`` m = 0 switches smoothing off. The first frame is taken as it is; ``reset()``
    starts again (call it at a scene cut)."""

    def __init__(self, momentum: float) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.state: np.ndarray | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, prob: np.ndarray) -> np.ndarray:
        prob = np.asarray(prob, dtype=np.float32)
        if self.state is None or self.state.shape != prob.shape:
            self.state = prob.copy()
        else:
            self.state = self.momentum * self.state + (1.0 - self.momentum) * prob
        return self.state


def ema_lag_frames(momentum: float) -> int:
    """Frames until the average crosses 0.5 after a step from 0 to 1: the smallest n >= 1 with
    ``momentum ** n <= 0.5`` (0 momentum: 1 frame, i.e. no lag beyond the current frame)."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return 1 if momentum <= 0.5 else math.ceil(math.log(0.5) / math.log(momentum))


@dataclass
class SmoothingRow:
    momentum: float
    flip_rate_static: float  # jitter on the static clip (lower is steadier)
    iou_moving: float  # foreground IoU against the truth on the moving clip (lag lowers it)
    lag_frames: int


def smoothing_tradeoff(static_probs: Sequence[np.ndarray], moving_probs: Sequence[np.ndarray],
                       moving_truth: Sequence[np.ndarray], momenta: Sequence[float], *,
                       threshold: float = 0.5) -> list[SmoothingRow]:
    """Steadiness against lag, one row per momentum: the flip rate of the smoothed masks on a static
    clip, and the foreground IoU of the smoothed masks against the true masks of a moving clip
    (pooled over all its pixels). Probabilities and truths must have the same (H, W)."""
    rows = []
    for m in momenta:
        ema = EMASmoother(m)
        static = [ema(p) >= threshold for p in static_probs]
        ema = EMASmoother(m)
        moving = np.stack([ema(p) >= threshold for p in moving_probs])  # (T, H, W)
        truth = np.stack([np.asarray(t) == 1 for t in moving_truth])
        if moving.shape != truth.shape:
            raise ValueError(f"moving probabilities {moving.shape} and truths {truth.shape} differ")
        rows.append(SmoothingRow(m, flip_rate(np.stack(static)),
                                 iou(moving, truth, num_classes=2, class_index=1,
                                     reduction="pooled", empty=1.0),
                                 ema_lag_frames(m)))
    return rows

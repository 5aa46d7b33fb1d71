"""Matplotlib figures used by the CLI, the notebooks and the widgets.

Every function takes plain data (tensors, arrays, lists of dicts), returns a ``matplotlib.figure.Figure``
and never calls ``plt.show()``: a notebook displays the returned figure, the CLI saves it, and the
widgets in ``segnas_lite.widgets`` redraw it with new arguments.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure


def _as_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A normalised (3, H, W) tensor or an (H, W, 3) array in [0, 1] -> (H, W, 3) float array."""
    from .data import denormalize
    if isinstance(image, torch.Tensor):
        return denormalize(image).permute(1, 2, 0).clamp(0, 1).numpy()
    return np.clip(np.asarray(image, dtype=np.float32), 0, 1)


def mask_grid(images: Sequence, masks: Sequence, preds: Sequence | None = None, *,
              num_classes: int = 2, titles: Sequence[str] | None = None,
              max_rows: int = 4) -> Figure:
    """One row per image: image, ground truth, prediction and prediction overlay."""
    from .data import colorize, overlay
    from .metrics import iou_per_image
    rows = min(len(images), max_rows)
    cols = 4 if preds is not None else 2
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        img = _as_numpy_image(images[r])
        gt = torch.as_tensor(masks[r])
        panels = [(img, "image"), (colorize(gt), "ground truth")]
        if preds is not None:
            pred = torch.as_tensor(preds[r])
            iou = iou_per_image(pred, gt, num_classes=num_classes)
            panels += [(colorize(pred), f"prediction (IoU {iou:.2f})"),
                       (overlay(img, pred), "overlay")]
        for c, (panel, name) in enumerate(panels):
            axes[r, c].imshow(panel, interpolation="nearest")
            axes[r, c].set_axis_off()
            label = name if titles is None or c else f"{titles[r]}"
            axes[r, c].set_title(label, fontsize=9)
    return fig


def training_curves(history: Sequence[dict], *, title: str = "training") -> Figure:
    """Training loss and validation mIoU per epoch from an engine history / metrics.jsonl."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_loss, ax_iou = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in history]
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title=title)
    val = [(r["epoch"], r["val_miou"]) for r in history if "val_miou" in r]
    if val:
        ax_iou.plot(*zip(*val), marker="o", color="tab:green")
    ax_iou.set(xlabel="epoch", ylabel="val mIoU", ylim=(0, 1), title="validation")
    return fig


def comparison_bars(rows: Sequence[dict], *, metric: str = "miou",
                    latency_key: str = "latency_ms") -> Figure:
    """Accuracy versus latency for several models: a scatter the eye can read as a Pareto front."""
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    for row in rows:
        ax.scatter(row[latency_key], row[metric], s=40)
        ax.annotate(row["name"], (row[latency_key], row[metric]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel="latency (ms)", ylabel=metric, title=f"{metric} vs latency")
    ax.grid(alpha=0.3)
    return fig

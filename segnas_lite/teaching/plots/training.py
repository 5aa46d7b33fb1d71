"""Figures of training (lessons 02 and 03): loss and validation mIoU per epoch."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure


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

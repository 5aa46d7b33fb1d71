"""Model anatomy (lessons 02 to 04): where the parameters and FLOPs are, what the feature maps
look like as the resolution falls."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from segnas_lite.teaching.plots.common import _row_value


def block_breakdown(summary_rows: Sequence, *, title: str = "where the parameters and FLOPs are"
                    ) -> Figure:
    """Horizontal bars of parameters and GFLOPs per model part.

    ``summary_rows`` are :class:`segnas_lite.models.summary.SummaryRow` objects (``summarize(m).rows``) or
    dicts with ``name``, ``params`` and ``flops`` (FLOPs with multiply-add = 2).
    """
    names = [str(_row_value(r, "name")) for r in summary_rows]
    params = np.array([_row_value(r, "params") for r in summary_rows], dtype=float)
    flops = np.array([_row_value(r, "flops") for r in summary_rows], dtype=float)
    fig = Figure(figsize=(9, 0.45 * len(names) + 1.4), layout="constrained")
    ax_p, ax_f = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    for ax, values, label, scale, unit in ((ax_p, params, "parameters", 1e3, "k"),
                                           (ax_f, flops, "GFLOPs", 1e9, "")):
        ax.barh(y, values / scale, color="tab:blue" if ax is ax_p else "tab:orange")
        total = values.sum()
        for yi, v in zip(y, values):
            share = 100 * v / total if total else 0.0
            ax.annotate(f"{share:.0f}%", (v / scale, yi), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.set(xlabel=f"{label} ({unit})" if unit else label)
        ax.margins(x=0.2)
        ax.grid(axis="x", alpha=0.3)
    ax_p.set_yticks(y, names)
    ax_p.invert_yaxis()
    fig.suptitle(title, fontsize=10)
    return fig


def feature_maps(maps: dict, *, channels: int = 4, title: str = "feature maps") -> Figure:
    """One row per named map (``{name: (C, H, W) or (1, C, H, W) tensor}``): the first ``channels``
    channels, each scaled to its own range, and the row's shape in its label.

    Watch the resolution fall (1/8, 1/32, ...) and the channels grow as the network goes deeper.
    """
    fig = Figure(figsize=(1.9 * channels + 1.2, 1.9 * len(maps) + 0.4), layout="constrained")
    axes = fig.subplots(len(maps), channels, squeeze=False)
    for r, (name, fmap) in enumerate(maps.items()):
        fmap = torch.as_tensor(fmap).detach().float()
        if fmap.dim() == 4:
            fmap = fmap[0]  # (1, C, H, W) -> (C, H, W)
        c_count, height, width = fmap.shape
        for c in range(channels):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < c_count:
                ax.imshow(fmap[c].numpy(), cmap="viridis", interpolation="nearest")
            if c == 0:
                ax.set_ylabel(f"{name}\n{c_count}x{height}x{width}", fontsize=8)
            if r == 0:
                ax.set_title(f"channel {c}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig

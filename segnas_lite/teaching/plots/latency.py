"""Figures of the latency lesson (05): the latency table as a heatmap and the predictor checked
against end-to-end measurements."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from segnas_lite.nas.calibrate import mape as mape_of
from segnas_lite.nas.predictor import spearman as spearman_of
from segnas_lite.teaching.plots.common import _label_layer_op_grid, _layer_op_grid


def predicted_vs_measured(predicted: Sequence[float], measured: Sequence[float], *,
                          spearman: float | None = None, mape: float | None = None,
                          before: Sequence[float] | None = None,
                          title: str = "latency table vs end-to-end measurement") -> Figure:
    """Scatter of predicted against measured latency with the y = x line.

    ``spearman`` (rank correlation: does the predictor order subnets correctly?) and ``mape`` (mean
    absolute percentage error, in percent, as ``PredictorReport.mape``) go into the legend.
    ``before``: the same subnets as predicted by the plain in-place table, drawn in grey, so the
    figure shows what calibration changed.
    """
    pred = np.asarray(predicted, dtype=float)
    meas = np.asarray(measured, dtype=float)
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    points = [pred]
    if before is not None:
        old = np.asarray(before, dtype=float)
        points.append(old)
        ax.scatter(old, meas, s=16, alpha=0.6, color="grey", marker="x",
                   label=f"in-place sum: Spearman {spearman_of(old, meas):.2f}, "
                         f"MAPE {mape_of(old, meas):.1f}%")
    label = []
    if spearman is not None:
        label.append(f"Spearman {spearman:.2f}")
    if mape is not None:
        label.append(f"MAPE {mape:.1f}%")
    prefix = "calibrated: " if before is not None else ""
    ax.scatter(pred, meas, s=18, alpha=0.8, label=(prefix + ", ".join(label)) if label else None)
    if pred.size:
        low = min(min(p.min() for p in points), meas.min())
        high = max(max(p.max() for p in points), meas.max())
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set(xlabel="predicted (ms)", ylabel="measured (ms)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def latency_report_figure(report: dict) -> Figure:
    """:func:`predicted_vs_measured` for what ``nas.latency_report.latency_report`` returns."""
    return predicted_vs_measured(
        report["predicted_ms"], report["measured_ms"], spearman=report["spearman"],
        mape=report["mape"], before=report["in_place_ms"],
        title=f"{report['space']} space, {report['backend']} {report['precision']}, "
              f"{report['image_size']} px")


def latency_heatmap(table_ms, op_names, *, relative: bool = False, genotype=None,
                    title: str | None = None) -> Figure:
    """A latency table as a heatmap (layers down, ops across), each cell labelled in ms.

    ``table_ms`` is one list of latencies per layer (``LatencyTable.ms``), ``op_names`` one list of
    names per layer (``LatencyTable.ops``) or one shared list. ``relative=True`` colours each cell by
    its share of the slowest op *of its layer* (which op is cheap where?); otherwise by ms.
    ``genotype`` (a Genotype or op names) is outlined, e.g. the fastest architecture.
    """
    columns, grid = _layer_op_grid(table_ms, op_names)
    layers = len(grid)
    shown = grid / np.nanmax(grid, axis=1, keepdims=True) if relative else grid
    fig = Figure(figsize=(1.0 * len(columns) + 2.5, 0.36 * layers + 1.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(shown), cmap="viridis", aspect="auto",
                      vmin=0.0, vmax=1.0 if relative else None)
    fig.colorbar(image, ax=ax, shrink=0.8,
                 label="share of the layer's slowest op" if relative else "latency (ms)")
    for l in range(layers):
        for c in range(len(columns)):
            if np.isfinite(grid[l, c]):
                ax.text(c, l, f"{grid[l, c]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if shown[l, c] < 0.6 * np.nanmax(shown) else "black")
    _label_layer_op_grid(ax, columns, layers, genotype, colour="red")
    ax.set_title(title or ("latency per (layer, op), relative to the layer's slowest op"
                           if relative else "latency per (layer, op) in ms"), fontsize=10)
    return fig

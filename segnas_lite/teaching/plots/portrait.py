"""Figures of the background lesson (09): from probability to cut-out, temporal smoothing's
trade-off between jitter and lag, and where a video frame's time goes."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from segnas_lite.portrait.refine import resize
from segnas_lite.portrait.smooth import EMASmoother
from segnas_lite.teaching.plots.common import _row_value


def cutout_panels(image01: np.ndarray, prob: np.ndarray, alpha: np.ndarray, result: np.ndarray, *,
                  threshold: float = 0.5, zoom: tuple[int, int, int] | None = None,
                  title: str | None = None) -> Figure:
    """From probability to new background, one row: the photo, p(foreground) at the network's
    size, the hard cut (p >= threshold, upsampled), the refined alpha, the composite.

    ``zoom`` = (row, col, half-size) adds a second row with the same panels cropped around that
    point (default: a point on the foreground's upper edge), where the edges can be seen."""
    image01 = np.asarray(image01, dtype=np.float32)
    shape = image01.shape[:2]
    up = resize(np.asarray(prob, dtype=np.float32), shape)
    hard = (up >= threshold).astype(np.float32)
    panels = [(image01, "photo"), (np.asarray(prob), f"p(foreground), {prob.shape[0]}x{prob.shape[1]}"),
              (hard, f"hard cut (p >= {threshold:g})"), (np.asarray(alpha), "refined alpha"),
              (np.clip(result, 0, 1), "composite")]
    if zoom is None:
        rows, cols = np.nonzero(np.asarray(alpha) >= 0.5)
        if rows.size:
            top = rows.min()
            col = int(np.median(cols[rows == top]))
            zoom = (int(top), col, max(8, min(shape) // 8))
    fig = Figure(figsize=(12, 5.2 if zoom else 2.8), layout="constrained")
    axes = fig.subplots(2 if zoom else 1, 5, squeeze=False)
    for ax, (panel, label) in zip(axes[0], panels):
        gray = panel.ndim == 2
        ax.imshow(panel, cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)
    if zoom:
        r, c, h = zoom
        r0, c0 = max(0, r - h), max(0, c - h)
        for ax, (panel, label) in zip(axes[1], panels):
            if panel.shape[:2] != shape:  # the network-size map: crop the same region of it
                panel = resize(panel.astype(np.float32), shape)
            crop = panel[r0:r + h, c0:c + h]
            ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"zoom: {label}", fontsize=8)
        axes[0][0].add_patch(Rectangle((c0, r0), 2 * h, 2 * h, fill=False, edgecolor="yellow",
                                       linewidth=1.5))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def smoothing_tradeoff(rows: Sequence) -> Figure:
    """Temporal smoothing's two sides against the EMA momentum m: the flip rate on a static clip
    (jitter, lower is steadier) and the foreground IoU on a moving clip (lag lowers it), with the
    lag in frames printed at each point. ``rows``: ``portrait.smooth.SmoothingRow`` objects or
    dicts."""
    m = [float(_row_value(r, "momentum")) for r in rows]
    flips = [100 * float(_row_value(r, "flip_rate_static")) for r in rows]
    ious = [float(_row_value(r, "iou_moving")) for r in rows]
    lags = [int(_row_value(r, "lag_frames")) for r in rows]
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(m, flips, "o-", color="tab:red", label="flip rate, static clip")
    ax.set(xlabel="EMA momentum m", ylabel="pixels flipping per frame (%)")
    for x, y, lag in zip(m, flips, lags):
        ax.annotate(f"lag {lag}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7)
    twin = ax.twinx()
    twin.plot(m, ious, "s--", color="tab:blue", label="IoU, moving clip")
    twin.set_ylabel("foreground IoU vs truth (moving)")
    lines = ax.get_lines()[:1] + twin.get_lines()[:1]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="center left")
    ax.set_title("jitter on a still scene vs accuracy in motion", fontsize=10)
    return fig


def smoothed_frame(frames: Sequence[np.ndarray], probs: Sequence[np.ndarray], *, momentum: float,
                   index: int, threshold: float = 0.5) -> Figure:
    """Frame ``index`` of a clip with its raw and EMA-smoothed masks, and the pixels that flipped
    since the previous frame in each (red): what smoothing does to the jitter."""
    if not 1 <= index < len(probs) or len(frames) != len(probs):
        raise ValueError(f"need 1 <= index < {len(probs)} and one probability map per frame")
    ema = EMASmoother(momentum)
    smooth = [ema(p) for p in probs[:index + 1]]
    shape = np.asarray(frames[index]).shape[:2]
    masks = {}
    for name, seq in (("raw", probs), ("smoothed", smooth)):
        before, now = (resize(np.asarray(seq[i], np.float32), shape) >= threshold
                       for i in (index - 1, index))
        masks[name] = (now, before != now)
    fig = Figure(figsize=(10, 2.9), layout="constrained")
    axes = fig.subplots(1, 3)
    frame = np.asarray(frames[index])
    axes[0].imshow(frame)
    axes[0].set_title(f"frame {index}", fontsize=9)
    for ax, name in zip(axes[1:], ("raw", "smoothed")):
        mask, flipped = masks[name]
        shown = np.where(flipped[..., None], [1.0, 0.0, 0.0], mask[..., None] * [0.9, 0.9, 0.9])
        ax.imshow(shown, interpolation="nearest")
        label = "raw" if name == "raw" else f"smoothed, m = {momentum:g}"
        ax.set_title(f"{label}: {100 * flipped.mean():.2f}% flipped (red)", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig


def frame_times(chains: dict[str, dict[str, float]]) -> Figure:
    """Where a video frame's time goes: one stacked bar per chain (``{name: VideoRun.ms_per_frame()}``,
    milliseconds per frame by stage, ``total`` = end to end), with the end-to-end frames per
    second written at the end of each bar."""
    names = list(chains)
    stages = [s for s in next(iter(chains.values())) if s != "total"] if chains else []
    fig = Figure(figsize=(7.5, 1.1 + 0.55 * len(names)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(names))
    for i, stage in enumerate(stages):
        widths = np.array([chains[name].get(stage, 0.0) for name in names])
        ax.barh(names, widths, left=left, color=f"C{i % 10}", label=stage)
        left += widths
    for y, name in enumerate(names):
        total = chains[name].get("total", float(left[y]))
        ax.annotate(f"{total:.1f} ms, {1000 / total:.1f} FPS" if total else "", (left[y], y),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3 * float(left.max()) if len(left) and left.max() > 0 else 1)
    ax.set(xlabel="milliseconds per frame", title="one frame, stage by stage (end to end)")
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncol=min(len(stages), 4),
               loc="outside lower center")
    return fig

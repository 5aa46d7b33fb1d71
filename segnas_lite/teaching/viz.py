"""Matplotlib figures used by the CLI, the notebooks and the widgets.

Every function takes plain data (tensors, arrays, lists of dicts), returns a ``matplotlib.figure.Figure``
and never calls ``plt.show()``: a notebook displays the returned figure, the CLI saves it, and the
widgets in ``segnas_lite.teaching.widgets`` redraw it with new arguments.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from segnas_lite.data import IGNORE_INDEX
from segnas_lite.data.palette import colorize, overlay, palette  # used below


# --------------------------------------------------------------------------- masks
def _as_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A normalised (3, H, W) tensor or an (H, W, 3) array in [0, 1] -> (H, W, 3) float array."""
    from segnas_lite.data import denormalize
    if isinstance(image, torch.Tensor):
        return denormalize(image).permute(1, 2, 0).clamp(0, 1).numpy()
    return np.clip(np.asarray(image, dtype=np.float32), 0, 1)


def _mask_row(image, mask, pred=None, *, score: str = "", colours: np.ndarray | None = None
              ) -> list[tuple[np.ndarray, str]]:
    """The panels of one image, each ``(picture, title)``: image, ground truth and, when there is
    a prediction, the prediction (its title carries ``score``) and the prediction over the image."""
    img = _as_numpy_image(image)
    panels = [(img, "image"), (colorize(mask, colours), "ground truth")]
    if pred is not None:
        panels += [(colorize(pred, colours), f"prediction ({score})"),
                   (overlay(img, pred, colours=colours), "overlay")]
    return panels


def _show_panels(axes, panels: list[tuple[np.ndarray, str]]) -> None:
    for ax, (panel, label) in zip(axes, panels):
        ax.imshow(panel, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)


def mask_grid(images: Sequence, masks: Sequence, preds: Sequence | None = None, *,
              num_classes: int = 2, titles: Sequence[str] | None = None,
              max_rows: int = 4) -> Figure:
    """One row per image: image, ground truth, prediction and prediction overlay.

    The prediction's title carries the image's mIoU; ``titles`` replace the "image" labels.
    """
    from segnas_lite.metrics import iou_per_image
    rows = min(len(images), max_rows)
    cols = 4 if preds is not None else 2
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        gt = torch.as_tensor(masks[r])
        pred, score = None, ""
        if preds is not None:
            pred = torch.as_tensor(preds[r])
            score = f"IoU {iou_per_image(pred, gt, num_classes=num_classes):.2f}"
        panels = _mask_row(images[r], gt, pred, score=score)
        if titles is not None:
            panels[0] = (panels[0][0], f"{titles[r]}")
        _show_panels(axes[r], panels)
    return fig


def mask_panels(image, mask, pred=None, *, num_classes: int = 2, show_class: int | None = None,
                class_names: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """One image in a row: image, ground truth, prediction and overlay (what the mask viewer shows).

    ``show_class=c`` highlights class ``c`` only (its pixels in the class colour, the rest black) and
    reports that class's IoU; ``None`` shows every class and the image's mIoU.
    The prediction panel's title carries the score, e.g. ``prediction (mIoU 0.83)``.
    """
    from segnas_lite.metrics import SegmentationMetrics, confusion_matrix
    gt = torch.as_tensor(np.asarray(mask)).long()
    name = (class_names[show_class] if class_names is not None and show_class is not None
            else f"class {show_class}")

    def only(m: torch.Tensor) -> torch.Tensor:
        if show_class is None:
            return m
        picked = torch.where(m == show_class, torch.as_tensor(show_class), torch.as_tensor(0))
        keep = torch.as_tensor(IGNORE_INDEX)  # ignore pixels stay visible
        return torch.where(m == IGNORE_INDEX, keep, picked)

    shown_pred, score = None, ""
    if pred is not None:
        pr = torch.as_tensor(np.asarray(pred)).long()
        metrics = SegmentationMetrics(confusion_matrix(pr, gt, num_classes=num_classes).numpy())
        score = (f"mIoU {metrics.miou:.2f}" if show_class is None
                 else f"IoU({name}) {metrics.per_class_iou[show_class]:.2f}")
        shown_pred = only(pr)
    panels = _mask_row(image, only(gt), shown_pred, score=score,
                       colours=palette(max(num_classes, 2)))
    fig = Figure(figsize=(2.4 * len(panels), 2.7), layout="constrained")
    _show_panels(fig.subplots(1, len(panels), squeeze=False)[0], panels)
    if title is not None:
        fig.suptitle(title, fontsize=10)
    return fig


def augmentation_grid(image: np.ndarray, mask: np.ndarray, augment, *, count: int = 5,
                      seed: int = 0, num_classes: int = 2) -> Figure:
    """The original pair and ``count`` augmented versions (image above, mask below).

    ``augment(image, mask, rng)`` is a :class:`segnas_lite.data.PairedAugment`; draw ``i`` uses the
    generator ``numpy.random.default_rng([seed, i])``, so the grid is the same every run. Ignore
    pixels (255, e.g. uncovered by a zoom-out) show in the palette's pale cream.
    """
    colours = palette(256)
    pairs = [(np.asarray(image), np.asarray(mask), "original")]
    for i in range(count):
        aug_image, aug_mask = augment(np.asarray(image), np.asarray(mask),
                                      np.random.default_rng([seed, i]))
        pairs.append((aug_image, aug_mask, f"draw {i}"))
    fig = Figure(figsize=(1.7 * len(pairs), 3.7), layout="constrained")
    axes = fig.subplots(2, len(pairs), squeeze=False)
    for c, (img, msk, label) in enumerate(pairs):
        shown = img if img.dtype == np.uint8 else np.clip(img, 0, 1)
        axes[0, c].imshow(shown, interpolation="nearest")
        axes[1, c].imshow(colorize(msk, colours), interpolation="nearest")
        axes[0, c].set_title(label, fontsize=9)
        for ax in axes[:, c]:
            ax.set_axis_off()
    fig.suptitle(f"paired augmentation ({count} draws, seed {seed})", fontsize=10)
    return fig


def mask_coverage(masks: Sequence, *, class_names: Sequence[str]) -> Figure:
    """Per class, a histogram of the share of each image's labelled pixels it covers.

    Segmentation data is rarely balanced: this shows how small the objects are and how often a
    class is absent, which is what mIoU (a mean over classes) is sensitive to.
    """
    num_classes = len(class_names)
    shares = np.zeros((len(masks), num_classes))
    for i, m in enumerate(masks):
        m = np.asarray(m).astype(np.int64)
        valid = m[m != IGNORE_INDEX]
        counts = np.bincount(valid, minlength=num_classes)[:num_classes]
        shares[i] = counts / max(1, valid.size)
    fig = Figure(figsize=(2.6 * num_classes, 2.6), layout="constrained")
    axes = fig.subplots(1, num_classes, squeeze=False)[0]
    for c, ax in enumerate(axes):
        ax.hist(shares[:, c], bins=np.linspace(0, 1, 21), color=f"C{c}")
        ax.set(title=f"{class_names[c]} (mean {shares[:, c].mean():.2f})", xlabel="share of pixels",
               ylabel="images" if c == 0 else None, xlim=(0, 1))
    fig.suptitle(f"class coverage over {len(masks)} masks", fontsize=10)
    return fig


def class_shares(report, *, split: str | None = None) -> Figure:
    """The share of labelled pixels per class from ``data.check.check_folder`` (one split or all),
    on a log axis so that a rare class is visible next to a dominant one; classes under 1% are
    drawn in red (class imbalance: expect a low IoU there unless the loss weighs them up)."""
    shares = report.class_shares(split)
    names, values = list(shares), np.array(list(shares.values()))
    fig = Figure(figsize=(max(4.0, 0.5 * len(names) + 2), 2.8), layout="constrained")
    ax = fig.subplots()
    colours = ["C3" if v < 0.01 else "C0" for v in values]
    ax.bar(range(len(names)), np.maximum(values, 1e-5), color=colours)
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.5)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 5 else 0, ha="right"
                  if len(names) > 5 else "center")
    for i, value in enumerate(values):
        ax.annotate(f"{100 * value:.1f}%", (i, max(value, 1e-5)), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")
    what = "all splits" if split is None else f"split {split}"
    ax.set(ylabel="share of labelled pixels", title=f"class shares, {what} (red: < 1%)")
    return fig


# --------------------------------------------------------------------------- training
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


# --------------------------------------------------------------------------- model anatomy
def _row_value(row, key: str):
    return row[key] if isinstance(row, dict) else getattr(row, key)


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


# --------------------------------------------------------------------------- NAS figures
def _op_columns(op_names, num_layers: int) -> tuple[list[str], list[list[str]]]:
    """Per-layer op names from either one shared list or one list per layer; plus their union in
    order of first appearance (the heatmap's columns)."""
    if len(op_names) and isinstance(op_names[0], str):
        per_layer = [list(op_names)] * num_layers
    else:
        per_layer = [list(names) for names in op_names]
    columns: list[str] = []
    for names in per_layer:
        columns += [n for n in names if n not in columns]
    return columns, per_layer


def _layer_op_grid(values, op_names) -> tuple[list[str], np.ndarray]:
    """Per-layer values (ragged lists, or a (layers, K) matrix padded with NaN) laid out on the
    union of op names: ``(columns, grid)`` with grid (layers, len(columns)), NaN where a layer
    lacks that op. Each layer's values are matched to its own op names by position."""
    layers = len(values)
    columns, per_layer = _op_columns(op_names, layers)
    grid = np.full((layers, len(columns)), np.nan)
    for l, (row, names) in enumerate(zip(values, per_layer)):
        for value, name in zip(row, names):
            grid[l, columns.index(name)] = value
    return columns, grid


def _genotype_ops(genotype) -> list[str] | None:
    if genotype is None:
        return None
    return list(getattr(genotype, "ops", genotype))


def _label_layer_op_grid(ax, columns: list[str], layers: int, genotype, *, colour: str) -> None:
    """Op names across, layer numbers down, and an outline around the genotype's op in each layer."""
    from matplotlib.patches import Rectangle
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(layers), [f"layer {l}" for l in range(layers)], fontsize=7)
    chosen = _genotype_ops(genotype)
    for l, name in enumerate((chosen or [])[:layers]):
        if name in columns:
            ax.add_patch(Rectangle((columns.index(name) - 0.5, l - 0.5), 1, 1, fill=False,
                                   edgecolor=colour, linewidth=1.8))


def alpha_heatmap(probs_matrix, op_names, *, title: str = "op probabilities p = softmax(alpha)",
                  genotype=None) -> Figure:
    """Per-layer op probabilities as a heatmap (layers down, ops across).

    ``probs_matrix`` is (layers, K) (NaN where a layer has fewer ops, as ``History.alpha_matrix``
    gives); ``op_names`` is one list of K names or one list per layer. ``genotype`` (a Genotype or a
    list of op names) is outlined: with argmax derivation it is each row's brightest cell.
    """
    columns, grid = _layer_op_grid(np.asarray(probs_matrix, dtype=float), op_names)
    layers = len(grid)
    fig = Figure(figsize=(1.0 * len(columns) + 2.5, 0.32 * layers + 1.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="probability", shrink=0.8)
    _label_layer_op_grid(ax, columns, layers, genotype, colour="cyan")
    ax.set_title(title, fontsize=10)
    return fig


def alpha_curves(steps: Sequence[int], probs_over_steps, op_names: Sequence[str], *,
                 title: str = "op probabilities of one layer") -> Figure:
    """Probability of each op of one layer over the search steps (``probs_over_steps``: steps x K)."""
    probs = np.asarray(probs_over_steps, dtype=float)
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(op_names):
        ax.plot(steps, probs[:, k], label=name)
    if len(op_names):
        ax.axhline(1.0 / len(op_names), color="grey", linestyle=":", linewidth=1, label="uniform")
    ax.set(xlabel="alpha step", ylabel="probability", ylim=(0, 1), title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    return fig


def latency_histogram(latencies: Sequence[float], accepted_flags: Sequence[bool], budget_ms: float,
                      *, bins: int = 30, title: str | None = None) -> Figure:
    """Sampled subnets' latencies: accepted (<= budget) and rejected in two colours, budget line.

    The title reports the rejection rate, the share of samples the hard constraint throws away.
    """
    lat = np.asarray(latencies, dtype=float)
    ok = np.asarray(accepted_flags, dtype=bool)
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    if lat.size:
        edges = np.histogram_bin_edges(np.append(lat, budget_ms), bins=bins)
        ax.hist([lat[ok], lat[~ok]], bins=edges, stacked=True, color=["tab:green", "tab:red"],
                label=[f"accepted ({ok.sum()})", f"rejected ({(~ok).sum()})"])
    ax.axvline(budget_ms, color="black", linestyle="--", label=f"budget {budget_ms:.2f} ms")
    rate = float((~ok).mean()) if lat.size else 0.0
    ax.set(xlabel="predicted latency (ms)", ylabel="sampled subnets",
           title=title or f"rejection rate {rate:.1%} at a {budget_ms:.2f} ms budget")
    ax.legend(fontsize=8)
    return fig


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
    from segnas_lite.nas.calibrate import mape as mape_of
    from segnas_lite.nas.latency import spearman as spearman_of
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


def save_figure(figure: Figure, path) -> None:
    """Write ``figure`` as a PNG atomically (a reader never sees half a file)."""
    from segnas_lite.runio import atomic_open
    with atomic_open(path, "wb") as fh:
        figure.savefig(fh, format="png", dpi=120)


def alpha_stability(entropy: Sequence[float], agreement: Sequence[float], *,
                    title: str = "has the search decided?") -> Figure:
    """Two curves over the alpha steps (step 0 = before the first): the mean normalized entropy of
    p (1 = uniform, 0 = one op per layer certain; ``History.entropy_curve``) and the share of
    layers whose most probable op is already the final one (``History.argmax_agreement_curve``).

    A search that learns drives the entropy down and the agreement up early; an entropy stuck near
    1 means p barely moved, and an agreement that only reaches 1 at the last step means the argmax
    was still changing when the search stopped."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_h, ax_a = fig.subplots(1, 2)
    ax_h.plot(entropy, color="tab:purple")
    ax_h.set(xlabel="alpha step", ylabel="entropy / log K", ylim=(0, 1.05), title="entropy of p")
    ax_a.plot(agreement, color="tab:green")
    ax_a.set(xlabel="alpha step", ylabel="share of layers", ylim=(0, 1.05),
             title="argmax already final")
    for ax in (ax_h, ax_a):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def derive_attempts(attempts: Sequence[dict], budget_ms: float, *,
                    title: str = "derivation, closed on measurement") -> Figure:
    """The closed-loop derivation, one column per try (``SearchResult.latency["derive_attempts"]``).

    Each try derives the most probable architecture under a *target* (a short bar), predicts its
    latency (a hollow circle) and measures it end to end (a filled dot: green within the budget,
    red over it). The dashed line is the budget; a red dot makes the next try lower its target.
    """
    fig = Figure(figsize=(max(3.6, 1.2 * len(attempts) + 2.0), 3.4), layout="constrained")
    ax = fig.subplots()
    tries = np.arange(1, len(attempts) + 1)
    measured = np.array([a["measured_ms"] for a in attempts], dtype=float)
    ax.axhline(budget_ms, color="black", linestyle="--", linewidth=1,
               label=f"budget {budget_ms:.2f} ms")
    ax.scatter(tries, [a["target_ms"] for a in attempts], marker="_", s=500, color="grey",
               label="target of the try")
    ax.scatter(tries, [a["predicted_ms"] for a in attempts], facecolors="none",
               edgecolors="tab:blue", s=60, label="predicted")
    ax.scatter(tries, measured, s=60, zorder=3, label="measured",
               color=["tab:green" if m <= budget_ms else "tab:red" for m in measured])
    ax.set_xticks(tries, [f"try {t}" for t in tries])
    ax.set_xlim(0.4, len(attempts) + 0.6)
    ax.set(ylabel="latency (ms)", title=title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="y")
    return fig


def search_curves(expected_latency_ms: Sequence[float], rejection_rates: Sequence[float], *,
                  budget_ms: float | None = None) -> Figure:
    """E[LAT] and the rejection rate per alpha step: is the search pulled under the budget?"""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_lat, ax_rej = fig.subplots(1, 2)
    ax_lat.plot(expected_latency_ms, color="tab:purple")
    if budget_ms is not None:
        ax_lat.axhline(budget_ms, color="black", linestyle="--", label="budget")
        ax_lat.legend(fontsize=8)
    ax_lat.set(xlabel="alpha step", ylabel="E[LAT] (ms)", title="expected latency")
    ax_rej.plot(rejection_rates, color="tab:red")
    ax_rej.set(xlabel="alpha step", ylabel="rejected share", ylim=(0, 1), title="rejection rate")
    for ax in (ax_lat, ax_rej):
        ax.grid(alpha=0.3)
    return fig


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower latency AND higher score), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto(rows: Sequence[dict], *, metric: str = "miou", latency_key: str = "latency_ms",
           title: str | None = None) -> Figure:
    """Accuracy versus latency, one labelled point per model (``rows``: dicts with ``name``, the
    metric and the latency); the Pareto front (models nothing else beats on both axes) is joined."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    points = [(float(r[latency_key]), float(r[metric])) for r in rows]
    for i, (row, (x, y)) in enumerate(zip(rows, points)):
        ax.scatter(x, y, s=45, color=f"C{i % 10}", zorder=3)
        ax.annotate(row["name"], (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    front = _pareto_front(points)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="grey",
                linestyle="--", linewidth=1, label="Pareto front", zorder=2)
        ax.legend(fontsize=8)
    ax.set(xlabel="latency (ms)", ylabel=metric, title=title or f"{metric} vs latency")
    ax.grid(alpha=0.3)
    return fig


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


# --------------------------------------------------------------------------- budgeted comparison
BUDGET_PARETO_MARKERS = {"searched": "*", "random": "o", "mbv3": "s", "mbv3_scaled": "D",
                         "uniform": "^", "reference": "P"}
"""Marker per kind of network in ``budget_pareto`` (any other kind: a small circle)."""


def budget_pareto(rows: Sequence[dict], budgets: dict[str, float], *, metric: str = "miou",
                  latency_key: str = "latency_ms", title: str | None = None) -> Figure:
    """Accuracy versus measured latency at several latency budgets (``benchmarks/search.py``, the
    seed's Table 2 question asked per budget).

    ``rows``: dicts with ``kind`` (its marker: ``BUDGET_PARETO_MARKERS``), ``label``, ``budget`` (a
    key of ``budgets``, drawn in that budget's colour; ``None`` for a network shared by every
    budget, drawn in black), the ``metric`` and the latency. ``budgets``: name -> ms, each drawn as
    a dashed vertical line in its colour. Rows without a metric or latency are left out; random
    subnets are not labelled (there are many).
    """
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    colours = {name: f"C{i % 10}" for i, name in enumerate(budgets)}
    for name, ms in budgets.items():
        ax.axvline(ms, color=colours[name], linestyle="--", linewidth=1,
                   label=f"budget {name}: {ms:.2f} ms")
    kinds = []
    for row in rows:
        x, y = row.get(latency_key), row.get(metric)
        if x is None or y is None:
            continue
        kind = row.get("kind", "")
        kinds += [kind] if kind not in kinds else []
        budget = row.get("budget")
        colour = "black" if budget is None else colours.get(budget, "grey")
        star = kind == "searched"
        ax.scatter(float(x), float(y), marker=BUDGET_PARETO_MARKERS.get(kind, "."), s=140 if star
                   else 40, color=colour, alpha=0.6 if kind == "random" else 0.9, zorder=3,
                   edgecolors="white", linewidths=0.5)
        if kind != "random":
            ax.annotate(str(row.get("label", "")), (float(x), float(y)), fontsize=7,
                        xytext=(4, 3), textcoords="offset points", color=colour)
    for kind in kinds:  # marker legend, in grey
        ax.scatter([], [], marker=BUDGET_PARETO_MARKERS.get(kind, "."), color="grey", label=kind)
    if any(row.get("budget") is None for row in rows):
        ax.scatter([], [], marker="o", color="black", label="black: any budget")
    ax.legend(fontsize=7, loc="best")
    ax.set(xlabel="measured latency (ms)", ylabel=metric,
           title=title or f"{metric} vs latency per budget")
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- cut-outs and video
def cutout_panels(image01: np.ndarray, prob: np.ndarray, alpha: np.ndarray, result: np.ndarray, *,
                  threshold: float = 0.5, zoom: tuple[int, int, int] | None = None,
                  title: str | None = None) -> Figure:
    """From probability to new background, one row: the photo, p(foreground) at the network's
    size, the hard cut (p >= threshold, upsampled), the refined alpha, the composite.

    ``zoom`` = (row, col, half-size) adds a second row with the same panels cropped around that
    point (default: a point on the foreground's upper edge), where the edges can be seen."""
    from segnas_lite.portrait.matting import resize
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
    lag in frames printed at each point. ``rows``: ``video.SmoothingRow`` objects or dicts."""
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
    from segnas_lite.portrait.matting import resize
    from segnas_lite.portrait.video import EMASmoother
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

"""Figures of lesson 01 (data) and of every lesson that shows masks: images with their masks and
predictions, paired augmentation, how much of each image a class covers, class shares."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from segnas_lite.data import IGNORE_INDEX, denormalize
from segnas_lite.data.palette import colorize, overlay, palette
from segnas_lite.metrics import iou


def _as_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A normalised (3, H, W) tensor or an (H, W, 3) array in [0, 1] -> (H, W, 3) float array."""
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
    rows = min(len(images), max_rows)
    cols = 4 if preds is not None else 2
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        gt = torch.as_tensor(masks[r])
        pred, score = None, ""
        if preds is not None:
            pred = torch.as_tensor(preds[r])
            score = f"IoU {iou(pred, gt, num_classes=num_classes, reduction='per_image'):.2f}"
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
        value = iou(pr, gt, num_classes=num_classes, reduction="per_image", class_index=show_class)
        score = f"mIoU {value:.2f}" if show_class is None else f"IoU({name}) {value:.2f}"
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

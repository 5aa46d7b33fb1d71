"""Soft edges and background replacement: from a network's probabilities to a new background.

A segmentation network answers "which class is this pixel?" at its own, small working size (often
1/8 of the input inside the network, then upsampled). Cutting a person out with that hard mask gives
jagged, blocky edges: the seed article's Figure 5 shows exactly that, and names background matting
as future work. Three steps make the cut-out usable:

1. **Probability**: ``foreground_probability`` turns logits into p(person) per pixel (softmax).
2. **Edge-aware refinement**: ``guided_filter`` (He, Sun and Tang, "Guided Image Filtering",
   TPAMI 2013) fits, in every small window, a linear model ``alpha = a * I + b`` of the *image*
   ``I`` to the coarse mask (their Eq. 1-6): where the image has an edge, alpha gets one; where the
   image is flat, alpha is smoothed. ``feather`` (a plain blur) is the baseline that softens edges
   without looking at the image. ``refine_alpha`` chooses between them.
3. **Compositing**: ``composite`` applies the matting equation ``I = alpha F + (1 - alpha) B``
   (Porter and Duff, SIGGRAPH 1984; Smith and Blinn, SIGGRAPH 1996) with a new background made by
   ``make_background`` (an image file, a colour, or the photo itself blurred).

How good the edges are is measured where they are, not by mIoU (which the interior dominates):
``boundary_f_score`` (the boundary precision/recall of Perazzi et al., "A Benchmark Dataset and
Evaluation Methodology for Video Object Segmentation", CVPR 2016) and ``trimap_iou`` (IoU inside a
band around the true edge, Kohli, Ladicky and Torr, IJCV 2009). ``evaluate_refinement`` reports them
before and after refinement.

Arrays here are NumPy: images (H, W, 3) float in [0, 1], masks and alphas (H, W).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from segnas_lite.errors import SegnasError

REFINE_METHODS = ("guided", "feather", "none")


class BackgroundError(SegnasError, ValueError):
    """A ``--background`` that is neither an image file, a colour nor ``blur``."""


# --------------------------------------------------------------------------- probabilities
def foreground_probability(logits, *, foreground: int | Iterable[int] = 1) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) logits -> (H, W) float32 probability of the ``foreground``
    class(es): the softmax over classes, summed over the foreground ones."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float32)
    if logits.ndim == 4:
        if logits.shape[0] != 1:
            raise ValueError(f"expected one image's logits, got a batch of {logits.shape[0]}")
        logits = logits[0]
    if logits.ndim != 3 or logits.shape[0] < 2:
        raise ValueError(f"expected logits of shape (C >= 2, H, W), got {tuple(logits.shape)}")
    classes = [foreground] if isinstance(foreground, int) else list(foreground)
    if not classes or min(classes) < 0 or max(classes) >= logits.shape[0]:
        raise ValueError(f"foreground classes {classes} outside 0..{logits.shape[0] - 1}")
    probs = torch.softmax(logits, dim=0)  # (C, H, W)
    return probs[classes].sum(0).numpy()


def network_probability(logits_fn: Callable, size: tuple[int, int] | None, *,
                        foreground: int | Iterable[int] = 1) -> Callable[[torch.Tensor], np.ndarray]:
    """``prob(image)``: a normalised (3, H, W) image -> (h, w) foreground probability of a network
    that runs at ``size`` = (h, w) (the image is resized to it; None: as it is). ``logits_fn`` maps
    a (1, 3, h, w) batch to (1, C, h, w) logits: an ``export.OpenVINOPredictor`` or a PyTorch model.
    The probability stays at the network's size; ``refine_alpha`` brings it to the photo's."""
    def prob(image: torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(image, dtype=torch.float32)[None]  # (1, 3, H, W)
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        with torch.no_grad():
            logits = logits_fn(x)
        return foreground_probability(logits.detach().numpy() if isinstance(logits, torch.Tensor)
                                      else logits, foreground=foreground)
    return prob


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, C) float array to ``size`` = (h, w)."""
    if tuple(array.shape[:2]) == tuple(size):
        return array.astype(np.float32, copy=False)
    t = torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]  # (1, C, H, W)
    out = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[0]
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()


# --------------------------------------------------------------------------- box filter
def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window around every pixel; windows are clipped at the border
    (divided by the pixels they really hold). (H, W) or (H, W, C); O(1) per pixel through running
    sums (an integral image), as the guided filter paper recommends (Sec. 3.5)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    x = np.asarray(x, dtype=np.float64)  # float64: running sums over a megapixel stay exact
    if radius == 0:
        return x

    def window_sums(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        shape = list(a.shape)
        shape[axis] = 1
        c = np.concatenate([np.zeros(shape), np.cumsum(a, axis=axis)], axis=axis)  # (.., n+1, ..)
        hi = np.minimum(np.arange(n) + radius + 1, n)
        lo = np.maximum(np.arange(n) - radius, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    sums = window_sums(window_sums(x, 0), 1)
    counts = window_sums(window_sums(np.ones(x.shape[:2]), 0), 1)  # (H, W)
    return sums / (counts[..., None] if x.ndim == 3 else counts)


# --------------------------------------------------------------------------- refinement
def guided_filter(guide: np.ndarray, src: np.ndarray, *, radius: int = 8, eps: float = 1e-3,
                  subsample: int = 1) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (H, W) steered by ``guide`` (H, W) or (H, W, 3).

    He et al. (TPAMI 2013): in each window w_k, ``q_i = a_k . I_i + b_k`` (Eq. 1) with
    ``a_k = (Sigma_k + eps U)^-1 cov_k(I, p)`` and ``b_k = mean_k(p) - a_k . mean_k(I)`` (Eq. 5-6
    and 14 for a colour guide); every pixel then averages the (a, b) of the windows covering it
    (Eq. 8). ``eps`` sets what counts as an edge: an image variance well above eps keeps a ~ 1
    (the edge is copied into q), well below it gives a ~ 0 (q is the local mean of p).

    ``subsample`` > 1 is the fast guided filter (He and Sun, arXiv:1505.00996): a and b are found
    on images ``subsample`` times smaller, then upsampled and applied to the full-size guide.
    """
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    if guide.shape[:2] != src.shape or src.ndim != 2:
        raise ValueError(f"guide {guide.shape} and src {src.shape} must share (H, W); src is 2-D")
    if subsample < 1:
        raise ValueError(f"subsample must be >= 1, got {subsample}")
    full_guide, size = guide, src.shape
    if subsample > 1:
        small = (max(1, size[0] // subsample), max(1, size[1] // subsample))
        guide, src = resize(guide, small).astype(np.float64), resize(src, small).astype(np.float64)
        radius = max(1, round(radius / subsample))
    mean_p = box_mean(src, radius)
    if guide.ndim == 2:  # grey guide: scalar a, b (Eq. 5-6)
        mean_i = box_mean(guide, radius)
        cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
        var_i = box_mean(guide * guide, radius) - mean_i ** 2
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
    else:  # colour guide: a is a 3-vector per window (Eq. 14)
        mean_i = box_mean(guide, radius)  # (h, w, 3)
        cov_ip = box_mean(guide * src[..., None], radius) - mean_i * mean_p[..., None]  # (h, w, 3)
        outer = guide[..., :, None] * guide[..., None, :]  # (h, w, 3, 3)
        sigma = box_mean(outer.reshape(*outer.shape[:2], 9), radius).reshape(outer.shape)
        sigma -= mean_i[..., :, None] * mean_i[..., None, :]
        a = np.linalg.solve(sigma + eps * np.eye(3), cov_ip[..., None])[..., 0]  # (h, w, 3)
        b = mean_p - (a * mean_i).sum(-1)
    mean_a, mean_b = box_mean(a, radius), box_mean(b, radius)  # Eq. 8
    if subsample > 1:
        mean_a, mean_b = resize(mean_a, size), resize(mean_b, size)
    q = (mean_a * full_guide).sum(-1) if full_guide.ndim == 3 else mean_a * full_guide
    return (q + mean_b).astype(np.float32)


def feather(alpha: np.ndarray, *, radius: int = 4) -> np.ndarray:
    """Blur a mask's edges without looking at the image: two box blurs (close to a Gaussian)."""
    return box_mean(box_mean(alpha, radius), radius).astype(np.float32)


def default_radius(image_shape: tuple[int, ...], network_shape: tuple[int, ...] | None = None, *,
                   stride: int = 8) -> int:
    """A guided-filter radius that spans the coarse mask's steps: one output pixel of the network
    (``stride`` input pixels, 8 for Fast-SCNN and the NAS macro) measured on the image, i.e.
    ``stride * image side / network input side``, so that every window sees both sides of a
    misplaced step. Without ``network_shape``: 1% of the image's larger side. At least 2."""
    side = max(image_shape[:2])
    if network_shape is None:
        return max(2, round(0.01 * side))
    return max(2, round(stride * side / max(network_shape[:2])))


@dataclass(frozen=True)
class RefineConfig:
    """How ``refine_alpha`` turns a probability map into an alpha matte.

    ``threshold``: binarise the probability first (None: refine the probability itself);
    ``method``: "guided", "feather" or "none"; ``radius`` in pixels of the output; ``eps``: the
    guided filter's edge threshold (image variance, intensities in [0, 1]); ``subsample``: the fast
    guided filter's factor.
    """

    method: str = "guided"
    threshold: float | None = 0.5
    radius: int = 8
    eps: float = 1e-3
    subsample: int = 1

    def __post_init__(self) -> None:
        if self.method not in REFINE_METHODS:
            raise ValueError(f"method must be one of {REFINE_METHODS}, got {self.method!r}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or None, got {self.threshold}")
        if self.radius < 0 or self.eps <= 0 or self.subsample < 1:
            raise ValueError("need radius >= 0, eps > 0 and subsample >= 1, got "
                             f"{self.radius}, {self.eps}, {self.subsample}")


def refine_alpha(image: np.ndarray, prob: np.ndarray,
                 config: RefineConfig = RefineConfig()) -> np.ndarray:
    """(H, W, 3) image in [0, 1] and (H, W) foreground probability -> (H, W) alpha in [0, 1].

    ``prob`` of another size (the network's) is resized to the image first (bilinear)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    prob = resize(np.asarray(prob, dtype=np.float32), image.shape[:2])
    alpha = prob if config.threshold is None else (prob >= config.threshold).astype(np.float32)
    if config.method == "guided":
        alpha = guided_filter(image, alpha, radius=config.radius, eps=config.eps,
                              subsample=config.subsample)
    elif config.method == "feather":
        alpha = feather(alpha, radius=config.radius)
    return np.clip(alpha, 0.0, 1.0)


# --------------------------------------------------------------------------- compositing
def composite(image: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The matting equation, per pixel: ``alpha * image + (1 - alpha) * background``.

    image, background: (H, W, 3) float in [0, 1]; alpha (H, W) in [0, 1]. (Treating the photo as
    the foreground colour F is an approximation: at a soft edge the photo already mixes the old
    background in, which shows as a faint halo; true matting would estimate F too.)"""
    image, background = np.asarray(image, np.float32), np.asarray(background, np.float32)
    alpha = np.asarray(alpha, np.float32)
    if image.shape != background.shape or image.shape[:2] != alpha.shape:
        raise ValueError(f"image {image.shape}, background {background.shape} and alpha "
                         f"{alpha.shape} must share (H, W)")
    if alpha.min() < 0.0 or alpha.max() > 1.0:
        raise ValueError("alpha must lie in [0, 1]")
    a = alpha[..., None]  # (H, W, 1): one weight for the three colour channels
    return a * image + (1.0 - a) * background


def parse_colour(text: str) -> tuple[float, float, float] | None:
    """'#00b140', 'green' (any matplotlib colour name) or '0,177,64' -> RGB in [0, 1]; else None."""
    from matplotlib.colors import to_rgb
    parts = text.split(",")
    if len(parts) == 3:
        try:
            values = [int(p) for p in parts]
        except ValueError:
            return None
        if all(0 <= v <= 255 for v in values):
            return tuple(v / 255 for v in values)  # type: ignore[return-value]
        return None
    try:
        return tuple(float(v) for v in to_rgb(text))  # type: ignore[return-value]
    except ValueError:
        return None


def make_background(spec: str, image: np.ndarray) -> np.ndarray:
    """A background the size of ``image`` (H, W, 3) from ``spec``:

    * ``blur`` or ``blur:R``: the photo itself blurred with radius R (default: 1/30 of its larger
      side), the "portrait mode" look;
    * a colour: ``#00b140``, ``green``, ``0,177,64``;
    * an image file: scaled to cover the photo, centre-cropped.
    """
    height, width = image.shape[:2]
    if spec == "blur" or spec.startswith("blur:"):
        radius = max(1, max(height, width) // 30)
        if spec.startswith("blur:"):
            try:
                radius = int(spec[5:])
            except ValueError:
                raise BackgroundError(f"blur radius must be an integer, got {spec!r}") from None
            if radius < 1:
                raise BackgroundError(f"blur radius must be >= 1, got {radius}")
        return np.clip(feather(feather(image, radius=radius), radius=radius), 0, 1)
    path = Path(spec)
    if path.is_file():
        from PIL import Image
        try:
            with Image.open(path) as picture:
                picture = picture.convert("RGB")
                scale = max(width / picture.width, height / picture.height)  # cover, then crop
                new = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
                picture = picture.resize(new, Image.BILINEAR)
                left, top = (new[0] - width) // 2, (new[1] - height) // 2
                picture = picture.crop((left, top, left + width, top + height))
                return np.asarray(picture, dtype=np.float32) / 255.0
        except OSError as error:
            raise BackgroundError(f"cannot read background image {path}: {error}") from None
    colour = parse_colour(spec)
    if colour is None:
        raise BackgroundError(f"background {spec!r} is not an image file, a colour ('#00b140', "
                              "'green', '0,177,64') or 'blur[:RADIUS]'")
    return np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3)).copy()


# --------------------------------------------------------------------------- edge metrics
def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean dilation by a (2r+1) x (2r+1) square."""
    return box_mean(mask.astype(np.float64), radius) > 1e-9


def boundary(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (its inner contour)."""
    mask = np.asarray(mask, bool)
    inside = np.pad(mask, 1, mode="edge")  # the image border is not an edge
    eroded = (inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:])
    return mask & ~eroded


def default_tolerance(shape: tuple[int, int]) -> int:
    """DAVIS's boundary tolerance: 0.8% of the image diagonal, at least 1 pixel."""
    return max(1, round(0.008 * float(np.hypot(*shape[:2]))))


@dataclass(frozen=True)
class BoundaryScore:
    precision: float
    recall: float
    f: float


def boundary_f_score(pred: np.ndarray, true: np.ndarray, *, tolerance: int | None = None,
                     valid: np.ndarray | None = None) -> BoundaryScore:
    """Boundary precision, recall and F between two boolean masks (Perazzi et al., CVPR 2016).

    Precision: the share of predicted contour pixels within ``tolerance`` pixels (a square) of the
    true contour; recall the other way round; F their harmonic mean. ``valid`` (H, W) bool leaves
    unlabelled pixels out. Two empty contours agree perfectly (1.0)."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if pred.shape != true.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {true.shape}")
    tolerance = default_tolerance(true.shape) if tolerance is None else tolerance
    bp, bt = boundary(pred), boundary(true)
    if valid is not None:
        bp, bt = bp & valid, bt & valid
    if not bp.any() and not bt.any():
        return BoundaryScore(1.0, 1.0, 1.0)
    precision = float((bp & dilate(bt, tolerance)).sum() / bp.sum()) if bp.any() else 0.0
    recall = float((bt & dilate(bp, tolerance)).sum() / bt.sum()) if bt.any() else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return BoundaryScore(precision, recall, f)


def trimap_iou(pred: np.ndarray, true: np.ndarray, *, width: int | None = None,
               valid: np.ndarray | None = None) -> float:
    """Foreground IoU counted only in a band of ``width`` pixels around the true contour (the
    "trimap" of Kohli et al., IJCV 2009): the interior, which any model gets right, is left out.
    Default width: the boundary tolerance. 1.0 when neither mask has foreground in the band."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    width = default_tolerance(true.shape) if width is None else width
    band = dilate(boundary(true), width)
    if valid is not None:
        band &= valid
    union = ((pred | true) & band).sum()
    return 1.0 if union == 0 else float((pred & true & band).sum() / union)


# --------------------------------------------------------------------------- evaluation
@dataclass
class RefinementRow:
    """One refinement setting's scores over a data set (means over images)."""

    name: str
    miou: float  # two-class mIoU (background, foreground) of alpha >= 0.5
    boundary_f: float
    trimap_iou: float
    seconds_per_image: float


def evaluate_refinement(prob_fn: Callable[[torch.Tensor], np.ndarray], dataset,
                        configs: dict[str, RefineConfig], *, foreground: int = 1,
                        ignore_index: int = 255, limit: int | None = None,
                        quiet: bool = True) -> list[RefinementRow]:
    """Score each refinement setting on ``dataset`` (items: normalised (3, H, W) image, (H, W)
    class mask, at the size the edges are judged at).

    ``prob_fn(image) -> (h, w)`` foreground probability at the model's own size; it is resized to
    (H, W) and refined with the image as guide. The same probabilities feed every setting, so the
    rows differ only by refinement. Seconds per image count the refinement alone."""
    import time
    from segnas_lite.data import denormalize
    from segnas_lite.runio import progress
    n = len(dataset) if limit is None else min(limit, len(dataset))
    # per setting: [intersection, union] of background and foreground over the whole set (the
    # package's mIoU: a confusion over all pixels, not a mean of per-image scores), and per-image
    # boundary scores
    counts = {name: np.zeros((2, 2)) for name in configs}
    scores = {name: {"bf": [], "tri": [], "sec": 0.0} for name in configs}
    for index in progress(range(n), quiet=quiet, desc="refinement"):
        image, mask = dataset[index]
        mask = np.asarray(mask)
        valid = mask != ignore_index
        true = (mask == foreground) & valid
        picture = denormalize(torch.as_tensor(image)).permute(1, 2, 0).numpy()  # (H, W, 3)
        prob = prob_fn(torch.as_tensor(image))
        for name, config in configs.items():
            start = time.perf_counter()
            alpha = refine_alpha(picture, prob, config)
            scores[name]["sec"] += time.perf_counter() - start
            pred = alpha >= 0.5
            for c, (a, b) in enumerate(((~pred, ~true), (pred, true))):  # background, foreground
                counts[name][c] += ((a & b & valid).sum(), ((a | b) & valid).sum())
            scores[name]["bf"].append(boundary_f_score(pred, true, valid=valid).f)
            scores[name]["tri"].append(trimap_iou(pred, true, valid=valid))
    rows = []
    for name, s in scores.items():
        inter, union = counts[name][:, 0], counts[name][:, 1]
        miou = float(np.mean(inter[union > 0] / union[union > 0]))
        rows.append(RefinementRow(name, miou, float(np.mean(s["bf"])), float(np.mean(s["tri"])),
                                  s["sec"] / max(n, 1)))
    return rows

"""Soft edges: from a network's coarse probability map to an alpha matte that follows the photo.

A segmentation network answers "which class is this pixel?" at its own, small working size (often
1/8 of the input inside the network, then upsampled). Cutting a person out with that hard mask gives
jagged, blocky edges: the seed article's Figure 5 shows exactly that, and names background matting
as future work. ``guided_filter`` (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) fits, in
every small window, a linear model ``alpha = a * I + b`` of the *image* ``I`` to the coarse mask (their
Eq. 1-6): where the image has an edge, alpha gets one; where the image is flat, alpha is smoothed.
``feather`` (a plain blur) is the baseline that softens edges without looking at the image.
``refine_alpha`` chooses between them, as a ``RefineConfig`` says.

Arrays here are NumPy: images (H, W, 3) float in [0, 1], masks and alphas (H, W).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segnas_lite.deploy.predictor import resize_batch

REFINE_METHODS = ("guided", "feather", "none")


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, C) float array to ``size`` = (h, w) (the network's
    probability map to the photo's size; ``predictor.resize_batch`` does the work)."""
    if tuple(array.shape[:2]) == tuple(size):
        return array.astype(np.float32, copy=False)
    t = torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]  # (1, C, H, W)
    out = resize_batch(t, size)[0]  # (C, h, w)
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()


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
    ``method``: "guided", "feather" or "none"; ``radius`` in pixels of the output (None: one
    network output pixel, ``default_radius(image, probability map)``); ``eps``: the guided filter's
    edge threshold (image variance, intensities in [0, 1]); ``subsample``: the fast guided filter's
    factor.
    """

    method: str = "guided"
    threshold: float | None = 0.5
    radius: int | None = None
    eps: float = 1e-3
    subsample: int = 1

    def __post_init__(self) -> None:
        if self.method not in REFINE_METHODS:
            raise ValueError(f"method must be one of {REFINE_METHODS}, got {self.method!r}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or None, got {self.threshold}")
        if (self.radius is not None and self.radius < 0) or self.eps <= 0 or self.subsample < 1:
            raise ValueError("need radius >= 0 (or None), eps > 0 and subsample >= 1, got "
                             f"{self.radius}, {self.eps}, {self.subsample}")


def refine_alpha(image: np.ndarray, prob: np.ndarray,
                 config: RefineConfig = RefineConfig()) -> np.ndarray:
    """(H, W, 3) image in [0, 1] and (H, W) foreground probability -> (H, W) alpha in [0, 1].

    ``prob`` of another size (the network's) is resized to the image first (bilinear)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    prob = np.asarray(prob, dtype=np.float32)
    radius = default_radius(image.shape, prob.shape) if config.radius is None else config.radius
    prob = resize(prob, image.shape[:2])
    alpha = prob if config.threshold is None else (prob >= config.threshold).astype(np.float32)
    if config.method == "guided":
        alpha = guided_filter(image, alpha, radius=radius, eps=config.eps,
                              subsample=config.subsample)
    elif config.method == "feather":
        alpha = feather(alpha, radius=radius)
    return np.clip(alpha, 0.0, 1.0)

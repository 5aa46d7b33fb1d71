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
    planes = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
    t = torch.as_tensor(np.ascontiguousarray(planes), dtype=torch.float32)[None]  # (1, C, H, W)
    out = resize_batch(t, size)[0]  # (C, h, w), contiguous: resizing is fastest plane by plane
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()  # (h, w, C): a view


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


RADIUS_PER_STEP = 8  # the automatic step of the fast guided filter: radius / 8 (RefineConfig)


def fast_step(radius: int, subsample: int | None) -> int:
    """The subsampling step the fast guided filter really uses.

    ``None``: a step of ``radius / RADIUS_PER_STEP`` (at least 1), so that the windows on the small
    image keep a radius of about 8 pixels whatever the photo's size: a and b vary on the scale of
    the radius, and sampling them every r/8 pixels scored as the full filter does (``RefineConfig``).
    An integer: that step, but never more than half the radius, so that a window on the small image
    still reaches 2 pixels each side of its centre (and radius 0, the identity, stays exact)."""
    if subsample is None:
        return max(1, int(radius) // RADIUS_PER_STEP)
    return max(1, min(int(subsample), int(radius) // 2))


def _coefficients(guide: np.ndarray, src: np.ndarray, radius: int,
                  eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The window-averaged linear model of He et al.: ``mean_a`` (H, W, C) and ``mean_b`` (H, W)
    such that ``q = mean_a . I + mean_b`` (Eq. 5-6 for a grey guide, Eq. 14 for a colour one, then
    the average over the windows covering each pixel, Eq. 8). ``guide`` is (H, W, C), C = 1 or 3."""
    guide, src = guide.astype(np.float64), src.astype(np.float64)  # running sums stay exact
    mean_i = box_mean(guide, radius)  # (H, W, C)
    mean_p = box_mean(src, radius)  # (H, W)
    cov_ip = box_mean(guide * src[..., None], radius) - mean_i * mean_p[..., None]  # (H, W, C)
    if guide.shape[-1] == 1:  # grey guide: scalar a, b (Eq. 5-6)
        var_i = box_mean(guide * guide, radius) - mean_i ** 2
        a = cov_ip / (var_i + eps)  # (H, W, 1)
    else:  # colour guide: a is a 3-vector per window (Eq. 14)
        outer = guide[..., :, None] * guide[..., None, :]  # (H, W, 3, 3)
        sigma = box_mean(outer.reshape(*outer.shape[:2], 9), radius).reshape(outer.shape)
        sigma -= mean_i[..., :, None] * mean_i[..., None, :]
        a = np.linalg.solve(sigma + eps * np.eye(3), cov_ip[..., None])[..., 0]  # (H, W, 3)
    b = mean_p - (a * mean_i).sum(-1)  # (H, W)
    return box_mean(a, radius), box_mean(b, radius)  # Eq. 8


def guided_filter(guide: np.ndarray, src: np.ndarray, *, radius: int = 8, eps: float = 1e-3,
                  subsample: int | None = 1) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (H, W) steered by ``guide`` (H, W) or (H, W, 3).

    He et al. (TPAMI 2013): in each window w_k, ``q_i = a_k . I_i + b_k`` (Eq. 1) with
    ``a_k = (Sigma_k + eps U)^-1 cov_k(I, p)`` and ``b_k = mean_k(p) - a_k . mean_k(I)`` (Eq. 5-6
    and 14 for a colour guide); every pixel then averages the (a, b) of the windows covering it
    (Eq. 8). ``eps`` sets what counts as an edge: an image variance well above eps keeps a ~ 1
    (the edge is copied into q), well below it gives a ~ 0 (q is the local mean of p).

    ``subsample`` > 1 (or None: ``fast_step`` chooses) is the fast guided filter (He and Sun,
    arXiv:1505.00996, Alg. 2): a and b are found on images ``s`` times smaller with radius r / s
    (``s = fast_step(radius, subsample)``), then upsampled bilinearly and applied to the full-size
    guide. They vary on the scale of a window, so sampling them every s pixels loses little, and
    the work on the small images shrinks by s^2; what is left at full size is one resize and one
    multiply-add.
    """
    guide = np.asarray(guide, dtype=np.float32)
    src = np.asarray(src, dtype=np.float32)
    if guide.shape[:2] != src.shape or src.ndim != 2:
        raise ValueError(f"guide {guide.shape} and src {src.shape} must share (H, W); src is 2-D")
    if subsample is not None and subsample < 1:
        raise ValueError(f"subsample must be >= 1 or None, got {subsample}")
    colour = guide if guide.ndim == 3 else guide[..., None]  # (H, W, C), C = 1 or 3
    size, step = src.shape, fast_step(radius, subsample)
    if step == 1:
        mean_a, mean_b = _coefficients(colour, src, radius, eps)
    else:
        small = (max(1, size[0] // step), max(1, size[1] // step))
        mean_a, mean_b = _coefficients(resize(colour, small), resize(src, small),
                                       max(1, round(radius / step)), eps)
        both = np.concatenate([mean_a, mean_b[..., None]], axis=-1).astype(np.float32)
        both = resize(both, size)  # (H, W, C + 1): a and b upsampled in one pass
        mean_a, mean_b = both[..., :-1], both[..., -1]
    q = mean_b.astype(np.float32)  # + sum over channels of a_c I_c, one (H, W) plane at a time
    for c in range(colour.shape[-1]):
        q = q + mean_a[..., c] * colour[..., c]
    return q.astype(np.float32, copy=False)


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
    step (``guided_filter``; 1 = the full filter; None = ``fast_step``'s choice, radius / 8).

    The default is the fast guided filter with a step of an eighth of the radius. Measured on
    people-val and ccp-val at 512 px (radius 16, so step 2) and 1024 px (radius 32, step 4), the
    network at 256 px replaced by the true mask at its output stride: mIoU, boundary F and trimap
    IoU within 0.35 point of the full filter's, in a fraction of its time; a step of a quarter of
    the radius drifted by up to 0.95 point (``benchmarks/refine_step.py``, the README's table).
    """

    method: str = "guided"
    threshold: float | None = 0.5
    radius: int | None = None
    eps: float = 1e-3
    subsample: int | None = None

    def __post_init__(self) -> None:
        if self.method not in REFINE_METHODS:
            raise ValueError(f"method must be one of {REFINE_METHODS}, got {self.method!r}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or None, got {self.threshold}")
        if (self.radius is not None and self.radius < 0) or self.eps <= 0 or \
                (self.subsample is not None and self.subsample < 1):
            raise ValueError("need radius >= 0 (or None), eps > 0 and subsample >= 1 (or None), "
                             f"got {self.radius}, {self.eps}, {self.subsample}")


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

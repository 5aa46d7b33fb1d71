"""Soft edges: from a network's coarse probability map to an alpha matte that follows the photo.

A segmentation network answers "which class is this pixel?" at its own, small working size (often
1/8 of the input inside the network, then upsampled). Cutting a person out with that hard mask gives
jagged, blocky edges: the seed article's Figure 5 shows exactly that, and names background matting
as future work. ``guided_filter`` (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) fits, in
every small window, a linear model ``alpha = a * I + b`` of the *image* ``I`` to the coarse mask (their
Eq. 1-6): where the image has an edge, alpha gets one; where the image is flat, alpha is smoothed.
``feather`` (a plain blur) is the baseline that softens edges without looking at the image.
``refine_alpha`` chooses between them, as a ``RefineConfig`` says.

Arrays here are NumPy: images (H, W, 3) float in [0, 1] (or uint8 in [0, 255], as video frames come),
masks and alphas (H, W). The pixel work (resizing, window sums) is OpenCV's (``cv2``): vectorised
and multi-threaded, it is what lets a 1280x720 video run in real time; the filter itself (the
linear model, its closed-form solution) is written out here, equation by equation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

REFINE_METHODS = ("guided", "feather", "none")


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, C) array to ``size`` = (h, w), float32 (uint8 stays
    uint8). Pixel centres are aligned as in PyTorch's ``interpolate(..., align_corners=False)``, so
    the network's probability map lands where its training put it."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = array.astype(np.float32, copy=False)
    if tuple(array.shape[:2]) == tuple(size):
        return array
    out = cv2.resize(np.ascontiguousarray(array), (int(size[1]), int(size[0])),
                     interpolation=cv2.INTER_LINEAR)  # cv2 takes (w, h)
    return out[..., None] if array.ndim == 3 and out.ndim == 2 else out  # cv2 drops a last axis of 1


def _window_counts(shape: tuple[int, int], radius: int) -> np.ndarray:
    """(H, W) float32: how many real pixels the (2r+1) x (2r+1) window around each pixel holds once
    clipped at the border: the product of its row count and its column count."""
    def count(n: int) -> np.ndarray:  # real pixels in each clipped 1-D window
        i = np.arange(n)
        return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(np.float32)

    return count(shape[0])[:, None] * count(shape[1])[None, :]


def box_mean(x: np.ndarray, radius: int, counts: np.ndarray | None = None) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window around every pixel; windows are clipped at the border
    (divided by the pixels they really hold). (H, W) or (H, W, C), float32.

    The window sums are ``cv2.boxFilter``'s (zero padding, running sums: O(1) per pixel whatever
    the radius, as the guided filter paper recommends, Sec. 3.5). ``counts``: the
    ``_window_counts`` of this size and radius, when the caller averages many planes alike."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    x = np.asarray(x, dtype=np.float32)
    if radius == 0:
        return x
    side = 2 * radius + 1
    sums = cv2.boxFilter(x, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    sums = sums.reshape(x.shape)  # cv2 drops a last axis of 1
    counts = _window_counts(x.shape[:2], radius) if counts is None else counts
    sums /= counts[..., None] if x.ndim == 3 else counts
    return sums


def solve_symmetric_3x3(m: Sequence[np.ndarray], v: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Solve ``m x = v`` at every pixel: ``m`` holds six planes, the upper triangle ``m00, m01,
    m02, m11, m12, m22`` of a symmetric 3x3 matrix; ``v`` three planes. Returns x as three planes.
    Cramer's rule: the adjugate (the cofactors; symmetric too) times ``v``, over the determinant:
    a few vectorised products over whole planes instead of one small LAPACK call per pixel
    (``np.linalg.solve``)."""
    a, b, c, d, e, f = m
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d  # cofactors of the first row
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    inverse_det = 1.0 / (a * c00 + b * c01 + c * c02)  # determinant expanded along the first row
    x, y, z = v
    return [(c00 * x + c01 * y + c02 * z) * inverse_det,
            (c01 * x + c11 * y + c12 * z) * inverse_det,
            (c02 * x + c12 * y + c22 * z) * inverse_det]


UPPER = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # the upper triangle of a 3x3, row by row


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


def working_size(size: tuple[int, int], step: int) -> tuple[int, int]:
    """The (h, w) at which the guided filter fits a and b for an image of ``size`` = (H, W):
    ``step`` times smaller each way (``fast_step``), at least 1 pixel."""
    return max(1, size[0] // step), max(1, size[1] // step)


def _coefficients(guide: list[np.ndarray], src: np.ndarray, radius: int,
                  eps: float) -> tuple[list[np.ndarray], np.ndarray]:
    """The window-averaged linear model of He et al.: ``mean_a`` (one (H, W) plane per guide
    channel) and ``mean_b`` (H, W) such that ``q = sum_c mean_a[c] I_c + mean_b`` (Eq. 5-6 for a
    grey guide, Eq. 14 for a colour one, then the average over the windows covering each pixel,
    Eq. 8). ``guide`` is a list of C = 1 or 3 float32 (H, W) planes, ``src`` (H, W) float32.

    Everything is kept plane by plane: each window mean is one ``cv2.boxFilter`` over a contiguous
    (H, W) array, the fastest layout for it."""
    counts = _window_counts(src.shape, radius)

    def mean(x: np.ndarray) -> np.ndarray:
        return box_mean(x, radius, counts)

    mean_i = [mean(g) for g in guide]  # C planes
    mean_p = mean(src)
    cov_ip = [mean(g * src) - m * mean_p for g, m in zip(guide, mean_i)]  # C planes
    if len(guide) == 1:  # grey guide: scalar a, b (Eq. 5-6)
        var_i = mean(guide[0] * guide[0]) - mean_i[0] ** 2
        a = [cov_ip[0] / (var_i + eps)]
    else:  # colour guide: a is a 3-vector per window (Eq. 14)
        sigma = [mean(guide[i] * guide[j]) - mean_i[i] * mean_i[j] for i, j in UPPER]  # 6 planes:
        for k in (0, 3, 5):  # the covariance Sigma_k is symmetric, 6 of its 9 entries suffice
            sigma[k] += eps  # + eps U, on the diagonal
        a = solve_symmetric_3x3(sigma, cov_ip)  # (Sigma + eps U)^-1 cov(I, p)
    b = mean_p - sum(a_c * m for a_c, m in zip(a, mean_i))
    return [mean(a_c) for a_c in a], mean(b)  # Eq. 8


def guided_filter(guide: np.ndarray, src: np.ndarray, *, radius: int = 8, eps: float = 1e-3,
                  subsample: int | None = 1) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (H, W) steered by ``guide`` (H, W) or (H, W, 3).

    He et al. (TPAMI 2013): in each window w_k, ``q_i = a_k . I_i + b_k`` (Eq. 1) with
    ``a_k = (Sigma_k + eps U)^-1 cov_k(I, p)`` and ``b_k = mean_k(p) - a_k . mean_k(I)`` (Eq. 5-6
    and 14 for a colour guide); every pixel then averages the (a, b) of the windows covering it
    (Eq. 8). ``eps`` sets what counts as an edge: an image variance well above eps keeps a ~ 1
    (the edge is copied into q), well below it gives a ~ 0 (q is the local mean of p).

    ``src`` may have another size than the guide: it is resized (bilinear) to the size the filter
    works at, ``working_size``. ``subsample`` > 1 (or None: ``fast_step`` chooses) is the fast
    guided filter (He and Sun, arXiv:1505.00996, Alg. 2): a and b are found on images ``s`` times
    smaller with radius r / s (``s = fast_step(radius, subsample)``), then upsampled bilinearly and
    applied to the full-size guide. They vary on the scale of a window, so sampling them every s
    pixels loses little, and the work on the small images shrinks by s^2; what is left at full size
    is, per guide channel, one resize and one multiply-add, done in place.

    A uint8 ``guide`` (a video frame) is read as value / 255 without making a float copy of it:
    the 1/255 goes into a instead, on the small images.
    """
    guide = np.asarray(guide)
    scale = np.float32(1 / 255 if guide.dtype == np.uint8 else 1)  # the guide's units -> [0, 1]
    if guide.dtype != np.uint8:
        guide = guide.astype(np.float32, copy=False)
    src = np.asarray(src, dtype=np.float32)
    if src.ndim != 2 or guide.ndim not in (2, 3) or (guide.ndim == 3 and guide.shape[2] != 3):
        raise ValueError(f"need a 2-D src and an (H, W) or (H, W, 3) guide, got {src.shape} and "
                         f"{guide.shape}")
    if subsample is not None and subsample < 1:
        raise ValueError(f"subsample must be >= 1 or None, got {subsample}")
    colour = guide if guide.ndim == 3 else guide[..., None]  # (H, W, C), C = 1 or 3
    size, step = guide.shape[:2], fast_step(radius, subsample)
    small = working_size(size, step)
    src = resize(src, small)  # a src of another size (e.g. the network's) is read at this size
    fit_on = colour if step == 1 else resize(colour, small)  # the guide at the working size
    planes = [np.ascontiguousarray(fit_on[..., c], dtype=np.float32) * scale
              for c in range(colour.shape[-1])]  # C contiguous (h, w) planes in [0, 1]
    small_radius = radius if step == 1 else max(1, round(radius / step))  # r / s on the small image
    mean_a, mean_b = _coefficients(planes, src, small_radius, eps)
    q = resize(mean_b, size)  # (H, W); the same array at step 1
    for c, a_c in enumerate(mean_a):  # q = sum over channels of a_c I_c + b (Eq. 8), in place
        a_c = resize(a_c * scale, size)  # a new (H, W) array: the guide's units folded in
        a_c *= colour[..., c]
        q += a_c
    return q


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
    the radius drifted by up to 0.98 point (``benchmarks/refine_step.py``, the README's table).
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
    """(H, W, 3) image, float in [0, 1] or uint8 (a video frame), and (H, W) foreground probability
    -> (H, W) float32 alpha in [0, 1].

    ``prob`` of another size (the network's) is resized to the image first (bilinear)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = image.astype(np.float32, copy=False)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    prob = np.asarray(prob, dtype=np.float32)
    radius = default_radius(image.shape, prob.shape) if config.radius is None else config.radius
    size = image.shape[:2]
    if config.method == "guided":  # the guided filter reads its src at its working size only
        size = working_size(size, fast_step(radius, config.subsample))
    prob = resize(prob, size)
    alpha = prob if config.threshold is None else (prob >= config.threshold).astype(np.float32)
    if config.method == "guided":
        alpha = guided_filter(image, alpha, radius=radius, eps=config.eps,
                              subsample=config.subsample)
    elif config.method == "feather":
        alpha = feather(alpha, radius=radius)
    else:
        return np.clip(alpha, 0.0, 1.0)  # a new array: ``prob`` may be the caller's
    return np.clip(alpha, 0.0, 1.0, out=alpha)  # the filter's own array, clipped where it lies

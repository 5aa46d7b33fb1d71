"""Answer key for lesson 09 · From a searched network to a steady background replacement
(lessons/09_background.md).

Run it from the repository root::

    python lessons/solutions/09_background.py          # quick: tiny settings, well under a minute
    python lessons/solutions/09_background.py --full   # larger images, longer clips

Each ``exercise_N`` does what exercise N of the lesson asks, with the library, and returns what it
measured as a dict; its docstring restates the question and gives the answer in words.

Exercises 1 and 2 are about the refinement alone, so the network is replaced by a stand-in whose
errors are known: the true mask of a synthetic portrait seen at 1/8 resolution (what a network with
output stride 8 can express at best). Exercise 3 needs a real network's noise sensitivity and uses
the small Fast-SCNN of notebook 00 (from the cache when notebook 00 ran).
"""
from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segnas_lite.data import SyntheticPortraits
from segnas_lite.data.transforms import normalize
from segnas_lite.deploy.predictor import network_probability
from segnas_lite.metrics import boundary_f_score, flip_rate, trimap_iou
from segnas_lite.portrait.clips import still_clip
from segnas_lite.portrait.refine import RefineConfig, default_radius, feather, guided_filter, refine_alpha
from segnas_lite.portrait.smooth import EMASmoother, ema_lag_frames
from segnas_lite.teaching.notebook_utils import setup, trained_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
# notebook 00's quick recipe: the Fast-SCNN every quick notebook shares through the cache
QUICK_RECIPE = dict(image_size=64, epochs=3, train_length=160, val_length=16)


def _portrait(size: int, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic val portrait: (H, W, 3) image in [0, 1] and its (H, W) bool person mask."""
    picture, labels = SyntheticPortraits(length=index + 1, image_size=size, seed=SEED + 1).render(index)
    return picture.astype(np.float32) / 255.0, labels == 1


def _coarse(mask: np.ndarray, stride: int = 8) -> np.ndarray:
    """The stand-in network: the true mask averaged over stride x stride blocks."""
    t = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    return F.avg_pool2d(t, stride)[0, 0].numpy()


def exercise_1(*, quick: bool = True) -> dict:
    """Radius 0, then 16: what happens to the edge; why does a too large radius leak?

    Answer: with radius 0 every window is one pixel, so the image's variance there is 0, a = 0
    and b = p: the guided filter returns the hard cut unchanged, blocky steps included. A radius
    about half a network output pixel (``default_radius``) spans the steps, so each window sees
    both sides of the true edge in the image and the fitted line a I + b moves alpha's edge onto
    the image edge: boundary F and trimap IoU rise. Far larger radii fit one linear model to
    windows that hold the person, the background *and* other edges (hair, arms, a busy
    background): the averaging of (a, b) over many windows (Eq. 8) blurs alpha again, thin parts
    fade and background colours that resemble the person's leak in, so the scores fall back.
    """
    size = 128 if quick else 256
    image, truth = _portrait(size)
    prob = _coarse(truth)
    best = default_radius(image.shape, image.shape)  # the stand-in's input is the image itself
    rows = {}
    for radius in sorted({0, best, 16, 4 * best}):
        alpha = refine_alpha(image, prob, RefineConfig(method="guided", radius=radius))
        rows[radius] = {"boundary_f": boundary_f_score(alpha >= 0.5, truth).f,
                        "trimap_iou": trimap_iou(alpha >= 0.5, truth)}
    hard = refine_alpha(image, prob, RefineConfig(method="none"))
    return {"size": size, "default_radius": best, "rows": rows,
            "hard_boundary_f": boundary_f_score(hard >= 0.5, truth).f,
            "radius_0_is_the_hard_cut": bool(np.array_equal(
                refine_alpha(image, prob, RefineConfig(method="guided", radius=0)), hard))}


def exercise_2(*, quick: bool = True) -> dict:
    """Why does the guided filter with a large eps behave like the feather?

    Answer: a_k = cov_k(I, p) / (var_k(I) + eps). When eps is much larger than the image's local
    variance (intensities in [0, 1] have variances of 0.001-0.05), a_k -> 0 and b_k -> mean_k(p):
    the output is the mean over windows of the local means of p, i.e. two box blurs of p, which
    is exactly ``feather`` with the same radius. The image no longer steers anything. A small eps
    (1e-3) keeps a_k ~ 1 at edges whose contrast exceeds sqrt(eps) ~ 0.03, so edges are copied.
    """
    size = 128 if quick else 256
    image, truth = _portrait(size)
    hard = refine_alpha(image, _coarse(truth), RefineConfig(method="none"))
    radius = default_radius(image.shape, image.shape)
    blurred = feather(hard, radius=radius)
    gap = {eps: float(np.abs(guided_filter(image, hard, radius=radius, eps=eps) - blurred).mean())
           for eps in (1e-3, 1e-1, 10.0)}
    return {"radius": radius, "mean_abs_difference_to_feather": gap}


def exercise_3(*, quick: bool = True) -> dict:
    """A noisier static clip (noise 0.06): how does the raw flip rate change, and which momentum
    brings it back to the old (noise 0.02) value?

    Answer: more sensor noise moves more probabilities across 0.5 from frame to frame, so the raw
    flip rate rises (here by several times). An EMA with momentum m averages about (1 + m) / (1 - m)
    frames of noise, shrinking its standard deviation by sqrt((1 - m) / (1 + m)); to undo a 3x
    increase in noise needs roughly (1 - m) / (1 + m) <= 1/9, m ~ 0.8. The loop below finds the
    smallest momentum of a grid that gets the flip rate back under the old raw value, at the price
    of ``ema_lag_frames(m)`` frames of lag.
    """
    setup(quick=quick, seed=SEED)
    model, _ = trained_model("fast_scnn", seed=SEED, **QUICK_RECIPE)
    model.eval()
    size, frames = (64, 16) if quick else (64, 48)
    image, _ = _portrait(size, index=1)
    picture = (image * 255).round().astype(np.uint8)

    prob = network_probability(model, None)  # (3, H, W) frame -> (H, W) p(person)

    def probabilities(noise: float) -> list[np.ndarray]:
        return [prob(normalize(frame)) for frame in still_clip(picture, frames, noise=noise, seed=SEED)]

    def smoothed_flip_rate(probs: list[np.ndarray], momentum: float) -> float:
        ema = EMASmoother(momentum)
        return flip_rate(np.stack([ema(p) >= 0.5 for p in probs]))

    quiet, noisy = probabilities(0.02), probabilities(0.06)
    old = smoothed_flip_rate(quiet, 0.0)
    grid = [round(0.1 * k, 1) for k in range(10)] + [0.95]
    rates = {m: smoothed_flip_rate(noisy, m) for m in grid}
    enough = next((m for m in grid if rates[m] <= old), None)
    return {"raw_flip_rate_noise_0.02": old, "raw_flip_rate_noise_0.06": rates[0.0],
            "flip_rate_by_momentum": rates, "smallest_momentum_back_to_old": enough,
            "lag_frames": None if enough is None else ema_lag_frames(enough)}


def exercise_4(*, quick: bool = True) -> dict:
    """Lag of m = 0.95 by hand and with ema_lag_frames; in milliseconds at 25 FPS?

    Answer: after a step from 0 to 1 the average is 1 - m^n after n frames; it crosses 0.5 when
    m^n <= 1/2, i.e. n >= log(1/2) / log(0.95) = 13.5, so n = 14 frames. At 25 FPS a frame lasts
    40 ms: 14 x 40 = 560 ms, more than half a second: a waving hand would leave a visible trail.
    """
    m = 0.95
    by_hand = math.ceil(math.log(0.5) / math.log(m))
    ema, state, simulated = EMASmoother(m), None, 0
    ema(np.zeros(1, np.float32))
    while state is None or state[0] < 0.5:
        state = ema(np.ones(1, np.float32))
        simulated += 1
    return {"by_hand": by_hand, "library": ema_lag_frames(m), "simulated": simulated,
            "milliseconds_at_25_fps": by_hand * 1000 / 25}


def exercise_5(*, quick: bool = True) -> dict:
    """The FPS cell with THREADS = 1: does the async queue still help?

    Answer: with 2 threads the THROUGHPUT hint makes 2 streams of 1 thread, and while one frame
    runs, the next is prepared and started on the other: the cores stay busy between frames. With
    1 thread there is 1 stream: the async queue can only overlap Python's bookkeeping (starting
    the next request) with inference, so the gain shrinks to a few percent at most, and a busy
    machine can hide it entirely. (Measure on a quiet machine; lines marked busy are not quotable.)
    """
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.zoo import build_model
    from segnas_lite.deploy.throughput import time_throughput
    torch.manual_seed(SEED)
    size, frames = (128, 40) if quick else (256, 300)
    with tempfile.TemporaryDirectory() as folder:
        ir = Path(folder) / "fast_scnn.xml"
        to_openvino(build_model("fast_scnn", num_classes=2).eval(), input_size=(size, size),
                    out_path=ir)
        fps = {}
        for threads in (1, 2):
            for mode in ("sync", "async"):
                result = time_throughput(ir, (1, 3, size, size), mode=mode, frames=frames,
                                         threads=threads)
                fps[(threads, mode)] = {"fps": result.fps, "requests": result.requests,
                                        "busy": result.busy}
    gain = {t: fps[(t, "async")]["fps"] / fps[(t, "sync")]["fps"] for t in (1, 2)}
    return {"size": size, "fps": fps, "async_gain": gain}


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5)


def main(argv=None) -> None:
    run(EXERCISES, lesson="09", argv=argv)


if __name__ == "__main__":
    main()

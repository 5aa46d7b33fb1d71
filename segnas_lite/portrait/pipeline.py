"""The two pipelines behind ``segnas replace-background`` and ``segnas video``.

Both run the same chain: the network's foreground probability (``deploy.predictor``) -> (video:
temporal smoothing, ``smooth.EMASmoother``) -> edge-aware refinement on the full-size picture
(``refine.refine_alpha``) -> alpha composite over a new background (``composite``).

* ``cut_out(image, prob_fn, refine=..., background=...)`` does it for one photo and returns a
  ``CutOut`` (probability, alpha, composite; ``save`` writes the PNGs); ``cut_out_from(picture,
  prob, ...)`` is the same once the probability is known.
* ``process_video(frames, predictor, smoothing=..., refine=..., background=...)`` returns a
  ``VideoRun``: iterating it yields the output frames, and it counts as it goes (frames per second,
  time per stage, flip rate before and after smoothing, foreground IoU when the true masks are
  known); ``summary()`` says it in words.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from segnas_lite.data import denormalize
from segnas_lite.data.palette import overlay
from segnas_lite.data.transforms import normalize
from segnas_lite.metrics import IoUMeter, flip_rate
from segnas_lite.portrait.composite import (check_background, composite, composite_uint8,
                                            is_per_frame, make_background)
from segnas_lite.portrait.refine import RefineConfig, refine_alpha, resize
from segnas_lite.portrait.smooth import EMASmoother
from segnas_lite.portrait.videoio import VideoError

ProbFn = Callable[[torch.Tensor], np.ndarray]  # normalised (3, H, W) -> (h, w) p(foreground)


def to_uint8(image01: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 (clipped, rounded): what image and video files hold."""
    return (np.clip(image01, 0, 1) * 255).round().astype(np.uint8)


def _show(picture: np.ndarray, alpha: np.ndarray, backdrop: np.ndarray | None) -> np.ndarray:
    """The composite over ``backdrop``, or without one the mask drawn over the picture."""
    if backdrop is None:
        return overlay(picture, (alpha >= 0.5).astype(np.int64))
    return composite(picture, backdrop, alpha)


# --------------------------------------------------------------------------- photos
@dataclass
class CutOut:
    """One photo cut out and put on a new background."""

    picture: np.ndarray  # (H, W, 3) the photo in [0, 1]
    prob: np.ndarray  # (h, w) p(foreground) at the network's size
    alpha: np.ndarray  # (H, W) refined alpha in [0, 1]
    result: np.ndarray  # (H, W, 3) in [0, 1]: the composite (or the mask drawn over the photo)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the refined cut (alpha >= 0.5)."""
        return self.alpha >= 0.5

    def hard_mask(self, threshold: float = 0.5) -> np.ndarray:
        """(H, W) bool: the cut before refinement (the probability upsampled, >= threshold)."""
        return resize(self.prob, self.picture.shape[:2]) >= threshold

    @property
    def foreground_share(self) -> float:
        return float(self.mask.mean())

    def save(self, folder: str | Path, stem: str) -> Path:
        """Write ``STEM_composite.png`` and ``STEM_alpha.png`` into ``folder``; returns the first."""
        from PIL import Image
        folder = Path(folder)
        Image.fromarray(to_uint8(self.result)).save(folder / f"{stem}_composite.png")
        Image.fromarray(to_uint8(self.alpha)).save(folder / f"{stem}_alpha.png")
        return folder / f"{stem}_composite.png"


def cut_out(image: torch.Tensor, prob_fn: ProbFn, *, refine: RefineConfig = RefineConfig(),
            background: str | None = "blur") -> CutOut:
    """Cut the foreground of one photo out and put it on ``background``.

    ``image``: a normalised (3, H, W) photo at its own size (``data.load_image``, a data set item);
    ``prob_fn``: its (h, w) foreground probability at the network's size, e.g.
    ``OpenVINOPredictor.probability`` or ``predictor.network_probability(model, size)``;
    ``background``: ``composite.make_background``'s spec, or None to draw the mask over the photo.
    """
    image = torch.as_tensor(image, dtype=torch.float32)
    picture = denormalize(image).permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1]
    return cut_out_from(picture, prob_fn(image), refine=refine, background=background)


def cut_out_from(picture: np.ndarray, prob: np.ndarray, *, refine: RefineConfig = RefineConfig(),
                 background: str | None = "blur") -> CutOut:
    """``cut_out`` once the network has answered: ``picture`` (H, W, 3) in [0, 1] and its (h, w)
    foreground probability at the network's size."""
    picture = np.asarray(picture, dtype=np.float32)
    alpha = refine_alpha(picture, prob, refine)
    backdrop = None if background is None else make_background(background, picture)
    return CutOut(picture, np.asarray(prob), alpha, _show(picture, alpha, backdrop))


# --------------------------------------------------------------------------- video
class VideoRun:
    """The frames of ``process_video``: iterate to get each output frame ((H, W, 3) uint8).

    While it runs it counts: ``frames_done``, ``seconds`` (wall clock, end to end), ``fps``,
    ``stage_seconds`` (decode: taking the next frame from ``frames``, e.g. reading a video file;
    preparation: shrinking the uint8 frame to the network's fixed input size, when the predictor
    has one (``ir_size``), then a normalised tensor; network: inference and waiting for the
    probability, with ``mode="async"`` only the wait, since the network runs meanwhile; then
    smoothing, refinement (guided by the uint8 frame itself) and compositing: uint8 in, uint8 out,
    no float copy of a full frame), ``flip_rates`` (the mean
    share of mask pixels that flip between consecutive frames, raw and smoothed; ``metrics.flip_rate``
    on each pair), and ``foreground_iou`` against ``truths`` (per frame, then the mean).
    """

    def __init__(self, frames: Iterable[np.ndarray], predictor, *, smoothing: float,
                 refine: RefineConfig, background: str | None,
                 truths: Sequence[np.ndarray] | None) -> None:
        check_background(background)  # a bad spec fails before the first frame
        self._frames, self.predictor, self.truths = frames, predictor, truths
        self.smoothing, self.refine, self.background = smoothing, refine, background
        self.frames_done, self.seconds = 0, 0.0
        self.stage_seconds = {"decode": 0.0, "preparation": 0.0, "network": 0.0,
                              "smoothing": 0.0, "refinement": 0.0, "compositing": 0.0}
        self._flips: dict[str, list[float]] = {"raw": [], "smoothed": []}
        self._iou = IoUMeter(num_classes=2, class_index=1, reduction="per_image")

    @property
    def fps(self) -> float:
        return self.frames_done / self.seconds if self.seconds else 0.0

    @property
    def flip_rates(self) -> dict[str, float | None]:
        return {name: float(np.mean(rates)) if rates else None
                for name, rates in self._flips.items()}

    def ms_per_frame(self) -> dict[str, float]:
        """Milliseconds per frame of each stage, then ``outside`` (the time between frames that no
        stage holds: the caller's, e.g. encoding the output file) and ``total`` (1000 / fps: end
        to end). The stages and ``outside`` add up to ``total``."""
        if not self.frames_done:
            return {}
        ms = {name: 1000 * s / self.frames_done for name, s in self.stage_seconds.items()}
        total = 1000 * self.seconds / self.frames_done
        return {**ms, "outside": max(0.0, total - sum(ms.values())), "total": total}

    @property
    def foreground_iou(self) -> float | None:
        return self._iou.compute() if self.truths is not None and self.frames_done else None

    def __iter__(self) -> Iterator[np.ndarray]:
        pending: deque = deque()  # frames sent to the network whose probability is not back yet

        fed = 0.0  # seconds spent in feed() since the last lap: not the network's

        size = getattr(self.predictor, "ir_size", None)  # a fixed input size of the network

        def feed() -> Iterator[torch.Tensor]:
            nonlocal fed
            frames = iter(self._frames)
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                t1 = time.perf_counter()
                if frame is None:
                    fed += t1 - t0
                    self.stage_seconds["decode"] += t1 - t0
                    return
                frame = np.asarray(frame)
                if frame.dtype != np.uint8:  # float frames in [0, 1]
                    frame = to_uint8(frame)
                pending.append(frame)
                if size is not None:  # shrink the uint8 frame first: far fewer pixels to convert
                    frame = resize(frame, size)
                tensor = normalize(frame)  # (3, h, w)
                t2 = time.perf_counter()
                self.stage_seconds["decode"] += t1 - t0
                self.stage_seconds["preparation"] += t2 - t1
                fed += t2 - t0
                yield tensor

        smoother, backdrop = EMASmoother(self.smoothing), None
        per_frame = is_per_frame(self.background)
        previous: dict[str, np.ndarray | None] = {"raw": None, "smoothed": None}
        probs = iter(self.predictor.probabilities(feed()))
        start = clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock, fed
            now = time.perf_counter()
            self.stage_seconds[stage] += now - clock - fed  # feed() ran inside this lap
            clock, fed = now, 0.0

        for prob in probs:
            lap("network")
            frame = pending.popleft()
            smooth = smoother(prob)
            for name, p in (("raw", prob), ("smoothed", smooth)):
                mask = p >= 0.5
                if previous[name] is not None:
                    self._flips[name].append(flip_rate([previous[name], mask]))
                previous[name] = mask
            lap("smoothing")
            alpha = refine_alpha(frame, smooth, self.refine)  # the uint8 frame is the guide
            lap("refinement")
            if self.background is None:  # the mask drawn over the frame
                shown = to_uint8(_show(frame.astype(np.float32) / 255.0, alpha, None))
            else:
                if backdrop is None or per_frame:  # blur: this frame's own, else made once
                    backdrop = make_background(self.background, frame)  # uint8, as the frame
                shown = composite_uint8(frame, backdrop, alpha)
            lap("compositing")
            if self.truths is not None:
                self._iou.update(alpha >= 0.5, np.asarray(self.truths[self.frames_done]) == 1)
            self.frames_done += 1
            self.seconds = time.perf_counter() - start
            yield shown
            clock = time.perf_counter()  # the consumer's time (writing the file) is not a stage
        if self.frames_done == 0:
            raise VideoError("the video gave no frames")

    def summary(self) -> str:
        """The flip rates, the IoU against the true masks and the time per stage, one per line."""
        lines = []
        for name, rate in self.flip_rates.items():
            if rate is not None:
                label = "raw" if name == "raw" else f"smoothed (m = {self.smoothing})"
                lines.append(f"  flip rate {label}: {100 * rate:.2f}% of pixels per frame")
        if self.foreground_iou is not None:
            lines.append(f"  foreground IoU against the clip's true masks: {self.foreground_iou:.3f}")
        if self.frames_done:
            stages = ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.ms_per_frame().items())
            lines.append(f"  time per frame: {stages} ({self.fps:.1f} FPS end to end)")
        return "\n".join(lines)


def process_video(frames: Iterable[np.ndarray], predictor, *, smoothing: float = 0.5,
                  refine: RefineConfig = RefineConfig(), background: str | None = None,
                  truths: Sequence[np.ndarray] | None = None) -> VideoRun:
    """Cut the foreground out of every (H, W, 3) uint8 frame, steadily.

    ``predictor``: a ``deploy.predictor.OpenVINOPredictor`` (``mode="async"`` keeps several frames
    in flight); ``smoothing``: the EMA momentum of the probabilities (0 = off); ``refine``: the
    refinement (``RefineConfig()``: the fast guided filter, as for photos);
    ``background``: a ``make_background`` spec, or None to draw the mask over the frames;
    ``truths``: the clip's true (H, W) masks (1 = foreground), to report the foreground IoU.
    Returns a ``VideoRun`` to iterate (for example into ``videoio.write_video``)."""
    return VideoRun(frames, predictor, smoothing=smoothing, refine=refine, background=background,
                    truths=truths)

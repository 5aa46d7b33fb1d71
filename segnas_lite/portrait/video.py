"""Steady video: segment frame after frame, measure the flicker, smooth it, keep up with the camera.

A network that segments one photo well can still flicker on video: a pixel near the edge whose
probability hovers around 0.5 flips between person and background from one frame to the next
because of sensor noise alone (the seed article's "jitter"). This module

* reads frames (``read_video``: OpenCV, the optional extra ``segnas_lite[video]``), or makes them:
  ``still_clip`` turns one photo into a static scene with sensor noise and a little camera shake
  (the ideal mask never changes, so every flip is jitter); ``data.synthetic_video`` is a moving one;
* segments them through an OpenVINO IR (``FrameSegmenter``), synchronously or with an
  ``AsyncInferQueue`` that keeps several frames in flight (OpenVINO's THROUGHPUT mode);
* measures temporal stability: ``flip_rate`` (the share of pixels whose label changes between
  consecutive frames) and ``consecutive_iou`` (foreground IoU of consecutive masks);
* smooths: ``EMASmoother`` keeps an exponential moving average of the probabilities,
  ``p_t = m * p_(t-1) + (1 - m) * q_t``. A larger momentum m steadies the mask and makes it lag: after
  a sudden change the average needs ``ema_lag_frames(m)`` frames to cross 0.5 (``m^n <= 1/2``).
  ``smoothing_tradeoff`` measures both sides on a static and a moving clip.

Frames are (H, W, 3) uint8 RGB arrays; probabilities and masks (H, W).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from segnas_lite.errors import SegnasError
from segnas_lite.data.transforms import normalize


class VideoError(SegnasError, RuntimeError):
    """A video that cannot be read or written."""


def _cv2():
    """OpenCV, or a message saying how to install it."""
    try:
        import cv2  # noqa: PLC0415 (optional dependency)
    except ImportError:
        from segnas_lite.runio import MissingDependencyError
        raise MissingDependencyError("reading and writing .mp4/.avi needs OpenCV: "
                                     "pip install 'segnas_lite[video]' (opencv-python-headless); "
                                     "a .gif output needs nothing extra") from None
    return cv2


# --------------------------------------------------------------------------- frames in
def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float, int]:
    """Open a video file -> (frames, fps, frame count); frames yields (H, W, 3) uint8 RGB."""
    cv2 = _cv2()
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no video file at {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"OpenCV cannot open {path} (an unsupported codec or not a video)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames

    def frames() -> Iterator[np.ndarray]:
        done = 0
        try:
            while max_frames is None or done < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                done += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
    return frames(), float(fps), count


def still_clip(image: np.ndarray, num_frames: int, *, noise: float = 0.02, shake: int = 1,
               seed: int = 0) -> list[np.ndarray]:
    """A static scene from one photo: every frame is the photo plus fresh Gaussian sensor noise
    (std ``noise`` in [0, 1] units) shifted by up to ``shake`` pixels (a hand-held camera).
    image: (H, W, 3) uint8 or float in [0, 1] -> ``num_frames`` (H, W, 3) uint8 frames."""
    image = np.asarray(image)
    base = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num_frames):
        dy, dx = rng.integers(-shake, shake + 1, size=2) if shake else (0, 0)
        moved = np.roll(base, (int(dy), int(dx)), axis=(0, 1))
        noisy = moved + rng.normal(0.0, noise, size=base.shape)
        frames.append((np.clip(noisy, 0, 1) * 255).round().astype(np.uint8))
    return frames


def panned_clip(image: np.ndarray, mask: np.ndarray, num_frames: int, *, step: int = 2,
                noise: float = 0.02, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A moving scene with a known truth: the photo and its mask slide sideways by ``step`` pixels
    a frame (a camera pan; the picture wraps around), with fresh sensor noise in every frame.
    Returns (frames (H, W, 3) uint8, masks (H, W)) for measuring what smoothing costs in motion."""
    frames = still_clip(image, num_frames, noise=noise, shake=0, seed=seed)
    shifts = [step * t for t in range(num_frames)]
    frames = [np.roll(frame, shift, axis=1) for frame, shift in zip(frames, shifts)]
    masks = [np.roll(np.asarray(mask), shift, axis=1) for shift in shifts]
    return frames, masks


# --------------------------------------------------------------------------- inference
class FrameSegmenter:
    """Frames -> foreground probabilities at the IR's own size, through OpenVINO.

    ``mode="sync"``: one infer request, one frame at a time (lowest latency per frame).
    ``mode="async"``: an ``AsyncInferQueue`` of ``requests`` requests compiled with the THROUGHPUT
    hint: the next frames are prepared and started while earlier ones still run, so both cores stay
    busy; results come back in frame order, a few frames late. Preprocessing (normalise, resize to
    the IR's input) happens here, in the calling thread.
    """

    def __init__(self, model, *, mode: str = "sync", precision: str = "default",
                 threads: int | None = 2, requests: int | None = None, foreground: int = 1) -> None:
        from segnas_lite.deploy.export import static_input_size
        from segnas_lite.timing import compile_openvino
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        self.mode, self.foreground = mode, foreground
        hint = "LATENCY" if mode == "sync" else "THROUGHPUT"
        self.compiled = compile_openvino(model, precision=precision, threads=threads, hint=hint)
        self.size = static_input_size(self.compiled)  # (h, w), or None for a dynamic IR
        if mode == "async":
            optimal = self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            self.requests = int(requests or optimal)
        else:
            self.requests = 1

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 frame -> (1, 3, h, w) float32 network input."""
        x = normalize(frame)[None]  # (1, 3, H, W)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x.numpy()

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """(1, C, h, w) logits -> (h, w) foreground probability."""
        return torch.softmax(torch.from_numpy(logits[0]), dim=0)[self.foreground].numpy()

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield one (h, w) probability map per frame, in frame order."""
        if self.mode == "sync":
            request = self.compiled.create_infer_request()
            for frame in frames:
                logits = request.infer({0: self.prepare(frame)})[0]
                yield self.probability(logits)
            return
        import openvino as ov
        queue = ov.AsyncInferQueue(self.compiled, self.requests)
        done: dict[int, np.ndarray] = {}

        def finished(request, index: int) -> None:  # runs in OpenVINO's thread
            done[index] = self.probability(request.get_output_tensor(0).data.copy())

        queue.set_callback(finished)
        next_out = 0
        for index, frame in enumerate(frames):
            queue.start_async({0: self.prepare(frame)}, index)  # waits for an idle request
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        queue.wait_all()
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1


# --------------------------------------------------------------------------- stability
def _as_masks(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3 or len(masks) < 2:
        raise ValueError(f"need at least two (H, W) masks of one size, got shape {masks.shape}")
    return masks


def flip_rate(masks: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean share of pixels whose label changes between consecutive frames (0 = perfectly steady).
    On a static scene every flip is jitter."""
    masks = _as_masks(masks)
    return float((masks[1:] != masks[:-1]).mean())


def consecutive_iou(masks: Sequence[np.ndarray] | np.ndarray, *, foreground: int = 1) -> float:
    """Mean foreground IoU between consecutive masks (1 = steady; pairs with no foreground at all
    count as 1)."""
    fg = _as_masks(masks) == foreground  # (T, H, W)
    inter = (fg[1:] & fg[:-1]).sum(axis=(1, 2))
    union = (fg[1:] | fg[:-1]).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


class EMASmoother:
    """Exponential moving average of probability maps: ``p_t = m p_(t-1) + (1 - m) q_t``.

    ``momentum`` m = 0 switches smoothing off. The first frame is taken as it is; ``reset()``
    starts again (call it at a scene cut)."""

    def __init__(self, momentum: float) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.state: np.ndarray | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, prob: np.ndarray) -> np.ndarray:
        prob = np.asarray(prob, dtype=np.float32)
        if self.state is None or self.state.shape != prob.shape:
            self.state = prob.copy()
        else:
            self.state = self.momentum * self.state + (1.0 - self.momentum) * prob
        return self.state


def ema_lag_frames(momentum: float) -> int:
    """Frames until the average crosses 0.5 after a step from 0 to 1: the smallest n >= 1 with
    ``momentum ** n <= 0.5`` (0 momentum: 1 frame, i.e. no lag beyond the current frame)."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return 1 if momentum <= 0.5 else math.ceil(math.log(0.5) / math.log(momentum))


@dataclass
class SmoothingRow:
    momentum: float
    flip_rate_static: float  # jitter on the static clip (lower is steadier)
    iou_moving: float  # foreground IoU against the truth on the moving clip (lag lowers it)
    lag_frames: int


def smoothing_tradeoff(static_probs: Sequence[np.ndarray], moving_probs: Sequence[np.ndarray],
                       moving_truth: Sequence[np.ndarray], momenta: Sequence[float], *,
                       threshold: float = 0.5) -> list[SmoothingRow]:
    """Steadiness against lag, one row per momentum: the flip rate of the smoothed masks on a static
    clip, and the foreground IoU of the smoothed masks against the true masks of a moving clip
    (over all its pixels). Probabilities and truths must have the same (H, W)."""
    rows = []
    for m in momenta:
        ema = EMASmoother(m)
        static = [ema(p) >= threshold for p in static_probs]
        ema = EMASmoother(m)
        moving = np.stack([ema(p) >= threshold for p in moving_probs])  # (T, H, W)
        truth = np.stack([np.asarray(t) == 1 for t in moving_truth])
        if moving.shape != truth.shape:
            raise ValueError(f"moving probabilities {moving.shape} and truths {truth.shape} differ")
        union = (moving | truth).sum()
        rows.append(SmoothingRow(m, flip_rate(np.stack(static)),
                                 float((moving & truth).sum() / union) if union else 1.0,
                                 ema_lag_frames(m)))
    return rows


# --------------------------------------------------------------------------- frames out
class VideoWriter:
    """Write (H, W, 3) uint8 RGB frames to ``.mp4``/``.avi`` (OpenCV) or ``.gif`` (Pillow).

    The file appears only when ``close()`` succeeds (written under a temporary name, then renamed),
    so an interrupted run never leaves a half-written video under the final name."""

    def __init__(self, path: str | os.PathLike, *, fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".avi", ".gif"):
            raise VideoError(f"{self.path}: the output must end in .mp4, .avi or .gif")
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.fps, self.suffix = fps, suffix
        self._writer = None
        self._gif: list = []
        if suffix != ".gif":
            self._cv2 = _cv2()

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VideoError(f"frames must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
        if self.suffix == ".gif":
            from PIL import Image
            self._gif.append(Image.fromarray(frame))
            return
        cv2 = self._cv2
        if self._writer is None:
            code = "mp4v" if self.suffix == ".mp4" else "MJPG"
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*code),
                                           self.fps, (width, height))
            if not self._writer.isOpened():
                raise VideoError(f"OpenCV cannot write {self.suffix} files here ({code} codec)")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        if self.suffix == ".gif":
            if not self._gif:
                raise VideoError("no frames were written")
            self._gif[0].save(self.partial, format="GIF", save_all=True, append_images=self._gif[1:],
                              duration=max(1, round(1000 / self.fps)), loop=0)
        else:
            if self._writer is None:
                raise VideoError("no frames were written")
            self._writer.release()
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Drop a failed run's partial file."""
        if self._writer is not None:
            self._writer.release()
        self.partial.unlink(missing_ok=True)

"""Clips with a known truth, for measuring jitter and lag without a camera.

``still_clip`` turns one photo into a static scene with sensor noise and a little camera shake (the
ideal mask never changes, so every flip is jitter); ``panned_clip`` slides a photo and its mask
sideways (a camera pan: smoothing's lag shows); ``synthetic_clip`` is ``data.synthetic_video`` as
video frames (a person walking across a gradient, masks known).

Frames are (H, W, 3) uint8 RGB arrays; masks (H, W).
"""
from __future__ import annotations

import numpy as np

from segnas_lite.data import denormalize, synthetic_video


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


def synthetic_clip(num_frames: int, *, size: int = 256, seed: int = 0
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``data.synthetic_video`` as a video: (frames (H, W, 3) uint8, masks (H, W) int64, 1 = person)
    of side ``size``."""
    clip = synthetic_video(num_frames, image_size=(size, size), seed=seed)
    frames = [(denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
              for image, _ in clip]  # (H, W, 3) uint8
    return frames, [mask.numpy() for _, mask in clip]

"""A synthetic video: a short clip of a silhouette walking across the frame (the OpenVINO FPS demo)."""
from __future__ import annotations

import numpy as np
import torch

from segnas_lite.data.transforms import normalize


def synthetic_video(
    num_frames: int, *, image_size: tuple[int, int] = (256, 256), seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A short clip of a person silhouette (head + shoulders) walking left to right.

    Returns ``num_frames`` pairs ``(image, mask)``: image (3, H, W) float ImageNet-normalised,
    mask (H, W) int64 with 1 = person, 0 = background. The background is a seeded colour gradient
    with mild noise; the silhouette moves by a constant step per frame and bobs up and down, so
    consecutive frames are similar, as in a real video. Deterministic for a given ``seed``.
    """
    height, width = image_size
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(height, 1)
    xs = torch.linspace(0, 1, width).view(1, width)
    top, bottom = torch.rand(3, generator=gen), torch.rand(3, generator=gen)
    background = top.view(3, 1, 1) * (1 - ys) + bottom.view(3, 1, 1) * ys  # (3, H, 1)
    background = background.expand(3, height, width) * (0.8 + 0.2 * xs)  # (3, H, W)
    person_colour = torch.rand(3, generator=gen)
    skin_rgb = torch.tensor([0.85, 0.65, 0.5])

    frames = []
    for t in range(num_frames):
        cx = 0.2 + 0.6 * t / max(num_frames - 1, 1)  # centre x in [0.2, 0.8]
        cy = 0.35 + 0.02 * np.sin(t)  # head centre bobs while walking
        head = ((xs - cx) / 0.09) ** 2 + ((ys - cy) / 0.12) ** 2 <= 1.0  # (H, W) ellipse
        torso = ((xs - cx) / 0.25) ** 2 + ((ys - (cy + 0.45)) / 0.33) ** 2 <= 1.0
        torso = torso & (ys >= cy + 0.15)
        mask = (head | torso).to(torch.int64)  # (H, W)
        image = torch.where(head, skin_rgb.view(3, 1, 1), background)
        image = torch.where(torso, person_colour.view(3, 1, 1), image)
        noise = 0.03 * torch.randn(3, height, width, generator=gen)
        image01 = (image + noise).clamp(0, 1)  # (3, H, W)
        frames.append((normalize(image01.permute(1, 2, 0).numpy()), mask))
    return frames

"""Colours for class masks: the palette, a mask as colours, a mask over its photo.

Plain arrays in, arrays out (no matplotlib), so data loading, the CLI and the plots share them.
"""
from __future__ import annotations

import numpy as np
import torch

from segnas_lite.data.transforms import IGNORE_INDEX


def palette(num_classes: int = 256) -> np.ndarray:
    """(num_classes, 3) uint8 colours, the Pascal VOC rule: the bits of the class index are spread
    over the high bits of R, G and B. Class 0 is black; index 255 (ignore) is a pale cream."""
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        colours[index] = (r, g, b)
    return colours


def to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def colorize(mask, colours: np.ndarray | None = None) -> np.ndarray:
    """Class-index mask (H, W) -> uint8 RGB (H, W, 3). ``colours`` defaults to ``palette(256)``;
    ignore pixels (255) get the palette's entry 255 when the table has one, else white."""
    mask = to_numpy(mask).astype(np.int64)
    table = palette(256) if colours is None else np.asarray(colours, dtype=np.uint8)
    if len(table) < 256:  # pad so that any index in 0..255 has a colour (unknown ones white)
        table = np.concatenate([table, np.full((256 - len(table), 3), 255, np.uint8)])
    return table[np.clip(mask, 0, 255)]


def overlay(image01, mask, alpha: float = 0.5, colours: np.ndarray | None = None) -> np.ndarray:
    """Blend class colours over an image for display -> float (H, W, 3) in [0, 1].

    ``image01`` is (H, W, 3) in [0, 1] or a (3, H, W) tensor in [0, 1] (use ``denormalize`` first).
    Background (class 0) and ignore pixels keep the photo; every other class is mixed with its colour:
    ``out = (1 - alpha) * image + alpha * colour``.
    """
    image = to_numpy(image01).astype(np.float32)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    mask = to_numpy(mask).astype(np.int64)
    colour = colorize(mask, colours).astype(np.float32) / 255.0
    tint = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(tint, (1.0 - alpha) * image + alpha * colour, image).clip(0.0, 1.0)

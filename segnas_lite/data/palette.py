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


# --------------------------------------------------------------------------- colours as codes
def colour_code(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) int32 codes ``R << 16 | G << 8 | B``."""
    rgb = np.asarray(rgb, dtype=np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def hex_colour(code: int) -> str:
    """A colour code -> ``"#rrggbb"``."""
    return f"#{int(code):06x}"


VOC_CODES = {int(code): index for index, code in enumerate(colour_code(palette(256)))}
"""Pascal VOC's colour of every index 0..255 -> the index (256 distinct colours)."""


def voc_indices(rgb: np.ndarray) -> np.ndarray | None:
    """The class indices of a colour mask whose every colour is in the VOC palette, else None."""
    codes = colour_code(rgb)
    found, inverse = np.unique(codes.ravel(), return_inverse=True)
    if not all(int(code) in VOC_CODES for code in found):
        return None
    lookup = np.array([VOC_CODES[int(code)] for code in found], dtype=np.uint8)
    return lookup[inverse].reshape(codes.shape)


def colours_text(rgb: np.ndarray, *, limit: int = 6) -> str:
    """The colours of one mask, most pixels first: ``"#000000 59%, #800000 41%"``."""
    found, counts = np.unique(colour_code(rgb).ravel(), return_counts=True)
    order = np.argsort(-counts)[:limit]
    text = ", ".join(f"{hex_colour(found[i])} {100 * counts[i] / counts.sum():.0f}%"
                     for i in order)
    return text + (f" and {len(found) - limit} more" if len(found) > limit else "")


# --------------------------------------------------------------------------- drawing masks
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

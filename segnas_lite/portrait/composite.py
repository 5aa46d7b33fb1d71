"""A new background behind a cut-out: the matting equation and the backgrounds it blends with.

``composite`` applies ``I = alpha F + (1 - alpha) B`` (Porter and Duff, SIGGRAPH 1984; Smith and
Blinn, SIGGRAPH 1996) with a background made by ``make_background``: an image file, a colour, or the
photo itself blurred (the "portrait mode" look). Arrays: (H, W, 3) float in [0, 1], alpha (H, W).
``composite_uint8`` is the same equation on uint8 frames, as a video holds them (no float copy of a
1280x720 frame is made: that alone costs about as much as the network).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import ImageColor

from segnas_lite.errors import SegnasError
from segnas_lite.portrait.refine import feather

BACKGROUND_HELP = "an image file, a colour ('#00b140', 'green', '0,177,64') or 'blur[:RADIUS]'"


class BackgroundError(SegnasError, ValueError):
    """A ``--background`` that is neither an image file, a colour nor ``blur``."""


def composite(image: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The matting equation, per pixel: ``alpha * image + (1 - alpha) * background``.

    image, background: (H, W, 3) float in [0, 1]; alpha (H, W) in [0, 1]. (Treating the photo as
    the foreground colour F is an approximation: at a soft edge the photo already mixes the old
    background in, which shows as a faint halo; true matting would estimate F too.)"""
    image, background = np.asarray(image, np.float32), np.asarray(background, np.float32)
    alpha = np.asarray(alpha, np.float32)
    if image.shape != background.shape or image.shape[:2] != alpha.shape:
        raise ValueError(f"image {image.shape}, background {background.shape} and alpha "
                         f"{alpha.shape} must share (H, W)")
    if alpha.min() < 0.0 or alpha.max() > 1.0:
        raise ValueError("alpha must lie in [0, 1]")
    a = alpha[..., None]  # (H, W, 1): one weight for the three colour channels
    return a * image + (1.0 - a) * background


def composite_uint8(image: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``composite`` for uint8 (H, W, 3) frames: the same equation, rounded to uint8, in one pass
    (``cv2.blendLinear``: ``(w1 * image + w2 * background) / (w1 + w2)`` with ``w1 = alpha``,
    ``w2 = 1 - alpha``)."""
    image, background = np.asarray(image), np.asarray(background)
    if image.dtype != np.uint8 or background.dtype != np.uint8:
        raise ValueError(f"image and background must be uint8, got {image.dtype} and {background.dtype}")
    if image.shape != background.shape or image.shape[:2] != np.shape(alpha):
        raise ValueError(f"image {image.shape}, background {background.shape} and alpha "
                         f"{np.shape(alpha)} must share (H, W)")
    alpha = np.asarray(alpha, np.float32)
    return cv2.blendLinear(image, background, alpha, 1.0 - alpha)


def blur(image: np.ndarray, radius: int) -> np.ndarray:
    """``image`` (H, W, 3) blurred by two ``feather`` passes of ``radius`` (four box means: close
    to a Gaussian), in the image's own dtype (float in [0, 1], or uint8).

    A wide blur keeps no detail that the full size would show, so it runs on a copy ``k`` times
    smaller (``k = radius // 4``, area-averaged) with radius ``radius / k``, and is scaled back
    (bilinear): the work drops by ``k^2``, which is what lets every frame of a video have its own
    blurred background."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    k = max(1, int(radius) // 4)
    small = cv2.resize(image, (max(1, width // k), max(1, height // k)), interpolation=cv2.INTER_AREA) \
        if k > 1 else image
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    r = max(1, round(radius / k))
    soft = np.clip(feather(feather(small.astype(np.float32) / scale, radius=r), radius=r), 0, 1)
    if image.dtype == np.uint8:  # back to uint8 on the small copy: the full size stays uint8
        soft = (soft * 255.0 + 0.5).astype(np.uint8)
    return cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR) if k > 1 else soft


def is_per_frame(spec: str | None) -> bool:
    """Whether a background spec changes with every frame (``blur``: each frame blurred)."""
    return spec is not None and (spec == "blur" or spec.startswith("blur:"))


def parse_colour(text: str) -> tuple[float, float, float] | None:
    """'#00b140', 'green' (a CSS colour name) or '0,177,64' -> RGB in [0, 1]; else None.

    Names and hex codes are read by Pillow's ``ImageColor`` (the 147 CSS colour names, ``#rgb``,
    ``#rrggbb``, ``rgb(...)``, ``hsl(...)``)."""
    parts = text.split(",")
    if len(parts) == 3:
        try:
            values = [int(p) for p in parts]
        except ValueError:
            return None
        if all(0 <= v <= 255 for v in values):
            return tuple(v / 255 for v in values)  # type: ignore[return-value]
        return None
    try:
        rgb = ImageColor.getrgb(text.strip())[:3]  # a 4th value (alpha) is dropped
    except ValueError:
        return None
    return tuple(v / 255 for v in rgb)  # type: ignore[return-value]


def make_background(spec: str, image: np.ndarray) -> np.ndarray:
    """A background the size of ``image`` (H, W, 3) from ``spec``:

    * ``blur`` or ``blur:R``: the photo itself blurred with radius R (default: 1/30 of its larger
      side), the "portrait mode" look;
    * a colour: ``#00b140``, ``green``, ``0,177,64``;
    * an image file: scaled to cover the photo, centre-cropped.

    It has the image's dtype: float32 in [0, 1], or uint8 for a uint8 frame.
    """
    height, width = image.shape[:2]
    frame = np.asarray(image).dtype == np.uint8  # a video frame: the background is uint8 too
    if is_per_frame(spec):
        radius = max(1, max(height, width) // 30)
        if spec.startswith("blur:"):
            try:
                radius = int(spec[5:])
            except ValueError:
                raise BackgroundError(f"blur radius must be an integer, got {spec!r}") from None
            if radius < 1:
                raise BackgroundError(f"blur radius must be >= 1, got {radius}")
        return blur(image, radius)
    path = Path(spec)
    if path.is_file():
        from PIL import Image
        from segnas_lite.data.errors import DatasetError
        from segnas_lite.data.io import read_rgb
        try:
            picture = Image.fromarray(read_rgb(path))  # RGB and upright (data.io's rules)
        except DatasetError as error:
            raise BackgroundError(f"cannot use background image {path}: {error}") from None
        scale = max(width / picture.width, height / picture.height)  # cover, then crop
        new = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
        picture = picture.resize(new, Image.BILINEAR)
        left, top = (new[0] - width) // 2, (new[1] - height) // 2
        picture = picture.crop((left, top, left + width, top + height))
        if frame:
            return np.asarray(picture, dtype=np.uint8).copy()
        return np.asarray(picture, dtype=np.float32) / 255.0
    colour = parse_colour(spec)
    if colour is None:
        raise BackgroundError(f"background {spec!r} is not {BACKGROUND_HELP}")
    value = np.round(np.asarray(colour) * 255).astype(np.uint8) if frame else \
        np.asarray(colour, np.float32)
    return np.broadcast_to(value, (height, width, 3)).copy()


def check_background(spec: str | None) -> None:
    """Raise ``BackgroundError`` now for a ``spec`` that cannot make a background (None: no
    background, fine), so that a command fails before it loads a model or writes a file."""
    if spec is not None:
        make_background(spec, np.zeros((2, 2, 3), np.float32))

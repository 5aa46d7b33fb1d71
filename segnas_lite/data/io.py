"""Image and mask files: reading them (with one channel rule) and resizing them.

Channel rule for files: every image is converted to RGB with PIL (grayscale is copied to the three
channels, the alpha channel of RGBA/LA is dropped, palette images are expanded). Images in modes
that have no 8-bit RGB meaning (16-bit "I;16", 32-bit "I", float "F") raise ``ChannelMismatchError``.
A mask must be single-channel (or palette indices); an RGB mask is accepted only when its three
channels are identical.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segnas_lite.data.errors import ChannelMismatchError, MissingFolderError, UnreadableImageError
from segnas_lite.data.transforms import normalize

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def natural_key(path: Path):
    """Sort "2.jpg" before "10.jpg": digits compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise MissingFolderError(f"folder {folder} does not exist; check the path")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=natural_key)


def open_image(path: Path) -> Image.Image:
    """Open a file with PIL, turning any decoding failure into ``UnreadableImageError``."""
    try:
        image = Image.open(path)
        image.load()
        return image
    except Exception as error:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise UnreadableImageError(
            f"cannot read {path}: {error}. Remove the file or re-save it as PNG/JPEG.") from error


def read_rgb(path: Path) -> np.ndarray:
    """Image file -> (H, W, 3) uint8, following the channel rule of the module docstring."""
    image = open_image(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise ChannelMismatchError(
            f"{path} is a {image.mode} (16/32-bit or float) image; save it as 8-bit RGB or grayscale")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """Mask file -> (H, W) integer array of raw values (palette PNGs give their indices)."""
    mask = open_image(path)
    if mask.mode in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(mask.convert("L") if mask.mode == "1" else mask)
    if mask.mode == "LA":
        return np.asarray(mask)[..., 0]
    if mask.mode in ("RGB", "RGBA"):
        rgb = np.asarray(mask)[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
            return rgb[..., 0]
        raise ChannelMismatchError(
            f"mask {path} has 3 colour channels that differ: masks must hold one class index per "
            "pixel. Convert the colours to indices (e.g. a palette PNG or a grayscale PNG).")
    raise ChannelMismatchError(f"mask {path} has unsupported mode {mask.mode}; save it as 8-bit grayscale")


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[0], size[1], 3), bilinear."""
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) integer mask -> (size[0], size[1]) with nearest neighbour (labels are never mixed)."""
    if mask.dtype == np.uint8:
        return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
    rows = (np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]
    cols = (np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]
    return mask[rows.astype(np.int64)][:, cols.astype(np.int64)]


def load_image(path, *, image_size: int | None = None) -> torch.Tensor:
    """Read one image file -> (3, H, W) float32 tensor, ImageNet-normalised (used by ``segnas
    predict``). With ``image_size`` the image is resized (bilinear) to image_size x image_size."""
    image = read_rgb(Path(path))
    if image_size is not None:
        image = resize_rgb(image, (image_size, image_size))
    return normalize(image)

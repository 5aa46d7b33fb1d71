"""Data for segnas_lite: synthetic scenes made on the fly, folder readers, paired augmentation.

Everything a training loop needs in one file:

* ``SyntheticPortraits`` (2 classes) and ``SyntheticScenes`` (4 classes): procedurally drawn images,
  deterministic per ``(seed, index)``, so the package trains and tests with no download.
* ``SegmentationFolder`` (images + masks paired by file stem) and readers for the Pascal VOC
  (Everingham et al., 2010) and Cityscapes (Cordts et al., 2016) layouts, plus ``people_dataset``.
* ``PairedAugment``: random scale/crop, horizontal flip, cutout, brightness/contrast, blur/sharpen,
  the augmentation list of the ProxylessNAS segmentation seed (Cai et al., 2019).
* Helpers: ImageNet normalisation, ``load_image``, ``split_indices``, ``open_dataset``, palettes,
  ``colorize`` and ``overlay``.

Conventions (the whole package): an image is a float32 tensor (3, H, W) normalised with the ImageNet
mean and std; a mask is an int64 tensor (H, W) with class indices and 255 = ignore.

Channel rule for files: every image is converted to RGB with PIL (grayscale is copied to the three
channels, the alpha channel of RGBA/LA is dropped, palette images are expanded). Images in modes
that have no 8-bit RGB meaning (16-bit "I;16", 32-bit "I", float "F") raise ``ChannelMismatchError``.
A mask must be single-channel (or palette indices); an RGB mask is accepted only when its three
channels are identical.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from torch.utils.data import Dataset, Subset

# ImageNet statistics (Deng et al., 2009), used by every pretrained backbone in the package.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_STD = np.array(IMAGENET_STD, dtype=np.float32)
_MEAN_T = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD_T = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
_SCALE_U8 = 1.0 / (255.0 * _STD_T)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
class DatasetError(Exception):
    """Base class of every data error in segnas_lite (catch this one to catch them all)."""


class MissingFolderError(DatasetError, FileNotFoundError):
    """A folder the dataset needs does not exist."""


class EmptyDatasetError(DatasetError):
    """A folder (or split list) holds no usable image."""


class UnreadableImageError(DatasetError):
    """PIL cannot decode a file (corrupt, truncated or not an image)."""


class MissingMaskError(DatasetError):
    """An image has no mask with the same file stem."""


class MissingImageError(DatasetError):
    """A file list (e.g. a VOC split) names an image that is not in the image folder."""


class MaskValueError(DatasetError):
    """A mask holds values outside the class set."""


class ChannelMismatchError(DatasetError):
    """An image or mask has a channel layout that cannot be used."""


class UnknownSourceError(DatasetError):
    """``open_dataset`` got a source that is neither a known name nor a known folder layout."""


# --------------------------------------------------------------------------------------------------
# Normalisation, palettes, visualisation
# --------------------------------------------------------------------------------------------------
def normalize(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) image -> (3, H, W) float32 tensor, ImageNet-normalised: (x - mean) / std per channel.

    Accepts floats in [0, 1] or uint8 in [0, 255] (then x = value / 255). The channel move is done on
    the compact uint8 data before the float conversion, which is the fastest order on the CPU."""
    image = np.asarray(image)
    if not image.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        image = image.copy()
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()  # (3, H, W)
    out = chw.to(torch.float32)
    if image.dtype == np.uint8:
        out.mul_(_SCALE_U8)  # (v / 255) / std
    else:
        out.sub_(_MEAN_T).mul_(1.0 / _STD_T)
        return out
    return out.sub_(_MEAN_T / _STD_T)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo ``normalize``: (3, H, W) or (N, 3, H, W) tensor -> same shape, float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)


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


def _to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def colorize(mask, colours: np.ndarray | None = None) -> np.ndarray:
    """Class-index mask (H, W) -> uint8 RGB (H, W, 3). ``colours`` defaults to ``palette(256)``;
    ignore pixels (255) get the palette's entry 255 when the table has one, else white."""
    mask = _to_numpy(mask).astype(np.int64)
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
    image = _to_numpy(image01).astype(np.float32)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    mask = _to_numpy(mask).astype(np.int64)
    colour = colorize(mask, colours).astype(np.float32) / 255.0
    tint = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(tint, (1.0 - alpha) * image + alpha * colour, image).clip(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Paired augmentation
# --------------------------------------------------------------------------------------------------
@dataclass
class PairedAugment:
    """Random augmentation applied identically to an image and its mask.

    ``__call__(image, mask, rng)`` takes an image (H, W, 3), uint8 or float in [0, 1], a mask (H, W)
    of class indices and a ``numpy.random.Generator``; it returns (image, mask) with the same shapes
    and dtypes. The same generator state gives the same result. The work is done on 8-bit PIL images
    (fast C code). Order: scale/crop and flip (one affine map) -> brightness/contrast -> blur or
    sharpen -> cutout.

    * scale/crop: zoom by s ~ U(scale_range) and keep an H x W window at a random place
      (random scaling as in DeepLab, Chen et al., 2017). Output pixel u reads source x0 + u / s for
      the image (bilinear) and the mask (nearest) alike, so labels stay aligned. Where a zoom-out
      uncovers area outside the source, the image is filled with the ImageNet mean colour (0 after
      normalisation) and the mask with ``ignore_index`` (no loss there).
    * flip: mirror left-right, image and mask together.
    * brightness/contrast: ``x -> (x - mean) * c + mean + b`` on the image only.
    * blur (Gaussian) or sharpen (unsharp mask ``x + a (x - blur(x))``), image only.
    * cutout (DeVries & Taylor, 2017): a random square of the IMAGE is set to the mean colour; the
      mask is left unchanged, so the network learns to infer hidden labels from context.
    """

    scale_prob: float = 0.8
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip_prob: float = 0.5
    color_prob: float = 0.8
    brightness: float = 0.25  # additive shift ~ U(-b, b), in units of the full range
    contrast: float = 0.25  # factor ~ U(1 - c, 1 + c)
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # in pixels
    sharpen_prob: float = 0.1
    sharpen_amount: tuple[float, float] = (0.3, 1.0)
    cutout_prob: float = 0.3
    cutout_fraction: tuple[float, float] = (0.1, 0.35)  # side of the square, fraction of min(H, W)
    ignore_index: int = IGNORE_INDEX

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        was_float = np.asarray(image).dtype != np.uint8
        if was_float:
            image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        mask = np.asarray(mask)
        if mask.max(initial=0) > 255 or mask.min(initial=0) < 0:
            raise MaskValueError("PairedAugment needs mask values in 0..255")
        height, width = mask.shape
        picture, labels = Image.fromarray(np.asarray(image)), Image.fromarray(mask.astype(np.uint8))

        # Geometry: one affine map (output u -> source a * u + c) per axis, shared by both.
        s = rng.uniform(*self.scale_range) if rng.random() < self.scale_prob else 1.0
        y0 = rng.uniform(min(0.0, height - height / s), max(0.0, height - height / s))
        x0 = rng.uniform(min(0.0, width - width / s), max(0.0, width - width / s))
        ax, cx = 1.0 / s, x0
        if rng.random() < self.flip_prob:
            ax, cx = -1.0 / s, x0 + width / s  # u -> x0 + (W - u) / s
        if s != 1.0 or ax < 0:
            affine = (ax, 0.0, cx, 0.0, 1.0 / s, y0)  # PIL: (x, y) -> (a x + b y + c, d x + e y + f)
            mean = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)
            picture = picture.transform((width, height), Image.AFFINE, affine, Image.BILINEAR,
                                        fillcolor=mean)
            labels = labels.transform((width, height), Image.AFFINE, affine, Image.NEAREST,
                                      fillcolor=self.ignore_index)

        # Photometric changes on the image only (a lookup table: every pixel value maps alike).
        if rng.random() < self.color_prob:
            shift = rng.uniform(-self.brightness, self.brightness) * 255
            factor = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
            grey = float(np.asarray(picture).mean())
            table = [min(255, max(0, int(round((v - grey) * factor + grey + shift)))) for v in range(256)]
            picture = picture.point(table * 3)
        pick = rng.random()
        if pick < self.blur_prob:
            picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(*self.blur_sigma)))
        elif pick < self.blur_prob + self.sharpen_prob:
            percent = int(100 * rng.uniform(*self.sharpen_amount))
            picture = picture.filter(ImageFilter.UnsharpMask(radius=1.0, percent=percent, threshold=0))

        image = np.array(picture)  # writable copy
        if rng.random() < self.cutout_prob:
            side = int(rng.uniform(*self.cutout_fraction) * min(height, width))
            top = int(rng.integers(0, max(1, height - side + 1)))
            left = int(rng.integers(0, max(1, width - side + 1)))
            image[top:top + side, left:left + side] = np.round(255 * _MEAN).astype(np.uint8)
        mask = np.asarray(labels).astype(np.int64)
        if was_float:
            return image.astype(np.float32) / 255.0, mask
        return image, mask


def _item_rng(seed: int, index: int, stream: int, epoch: int = 0) -> np.random.Generator:
    """Independent generator per (seed, index, stream, epoch): stream 0 draws the content, stream 1
    the augmentation, so switching augmentation on never changes the underlying sample."""
    return np.random.default_rng([int(seed), int(index), int(stream), int(epoch)])


# --------------------------------------------------------------------------------------------------
# Synthetic data: drawing helpers
# --------------------------------------------------------------------------------------------------
SKIN_TONES = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                       (141, 85, 36), (92, 56, 30)], dtype=np.float64)
HAIR_COLOURS = np.array([(20, 15, 12), (55, 38, 25), (105, 70, 40), (185, 150, 95),
                         (150, 150, 150), (140, 55, 25)], dtype=np.float64)


def _jitter(rng, base, amount=15.0) -> tuple[int, int, int]:
    colour = np.clip(np.asarray(base, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return tuple(int(c) for c in colour)


def _skin(rng):
    return _jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 18)


def _hair(rng):
    if rng.random() < 0.1:  # dyed hair: any colour
        return tuple(int(c) for c in rng.integers(0, 256, 3))
    return _jitter(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 12)


def _any_colour(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _distractor_colour(rng):
    """Colours for background clutter: often skin, hair or clothing-like, so that colour alone does
    not tell person from background."""
    pick = rng.random()
    if pick < 0.35:
        return _skin(rng)
    if pick < 0.5:
        return _hair(rng)
    return _any_colour(rng)


def _ellipse(cx, cy, rx, ry, angle=0.0, n=28) -> np.ndarray:
    """(n, 2) polygon approximating an ellipse rotated by ``angle`` (radians)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _transform(points, pivot, angle) -> list[tuple[float, float]]:
    """Rotate points (a list of (x, y) or an (n, 2) array) by ``angle`` about the origin, then move
    the origin to ``pivot``. Plain Python: faster than numpy for a handful of points."""
    c, s = math.cos(angle), math.sin(angle)
    px, py = pivot
    if isinstance(points, np.ndarray):
        points = points.tolist()
    return [(px + c * x - s * y, py + s * x + c * y) for x, y in points]


def _ramp(rng, size: int, low: float = 0.0, high: float = 255.0) -> Image.Image:
    """(S, S) "L" image: a linear ramp from ``low`` to ``high`` along a random direction.

    A plane a*y + b*x + c splits into a row part and a column part, so the (S, S) image is one
    integer addition of two broadcast vectors (cheap)."""
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(-0.5, 0.5, size) / (abs(math.sin(angle)) + abs(math.cos(angle)))
    rows = np.rint((high - low) * (axis * math.sin(angle) + 0.5) + low).astype(np.int16)  # (S,)
    cols = np.rint((high - low) * axis * math.cos(angle)).astype(np.int16)  # (S,)
    ramp = np.clip(rows[:, None] + cols[None, :], 0, 255).astype(np.uint8)  # (S, S)
    return Image.fromarray(ramp)


def _solid(size: int, colour) -> Image.Image:
    return Image.new("RGB", (size, size), tuple(int(c) for c in colour))


def _smooth_noise(rng, size: int, cells: int, mode: str = "L") -> Image.Image:
    """Smooth random field: a cells x cells grid of random values upsampled bilinearly."""
    shape = (cells, cells) if mode == "L" else (cells, cells, 3)
    coarse = rng.integers(0, 256, shape, dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.BILINEAR)


def _texture(rng, size: int, base, strength: float = 1.0) -> Image.Image:
    """An RGB texture image: solid, stripes, checks, smooth noise or two-tone, around ``base``.
    Built as ``composite(second colour, base colour, weight)`` with an "L" weight image."""
    kind = rng.choice(["solid", "stripes", "checks", "noise", "twotone"], p=[0.3, 0.25, 0.1, 0.2, 0.15])
    if kind == "solid":
        return _solid(size, base)
    second = _any_colour(rng)
    axis = np.arange(size, dtype=np.float32)
    if kind == "stripes":
        angle = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
        period = rng.uniform(4, 24) * size / 256
        phase = axis[:, None] * math.sin(angle) + axis[None, :] * math.cos(angle)  # (S, S)
        weight = Image.fromarray(((phase % period) < period / 2).astype(np.uint8) * 255)
    elif kind == "checks":
        period = int(rng.uniform(6, 28) * size / 256) + 1
        cells = (np.arange(size) // period) % 2
        weight = Image.fromarray((cells[:, None] ^ cells[None, :]).astype(np.uint8) * 255)
    elif kind == "noise":
        weight = _smooth_noise(rng, size, int(rng.integers(4, 24)))
        second = _jitter(rng, base, 80)
    else:  # two-tone: one hard split across the garment
        threshold = int(rng.uniform(100, 230))
        weight = _ramp(rng, size).point(lambda v: 255 if v > threshold else 0)
    if strength < 1.0:
        weight = weight.point(lambda v: int(v * strength))
    texture = _solid(size, base)
    texture.paste(tuple(int(c) for c in second), mask=weight)  # second colour where weight is high
    return texture


def _draw_clutter(rng, canvas: Image.Image, size: int, count: int, fill=None) -> None:
    """Random ellipses, boxes, polygons and thick lines painted on ``canvas``, each in a distractor
    colour (or in ``fill`` when given, e.g. 255 to draw a stencil into an "L" image)."""
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        colour = _distractor_colour(rng) if fill is None else fill
        cx, cy = rng.uniform(-0.1, 1.1, 2) * size
        r = rng.uniform(0.03, 0.25) * size
        kind = rng.integers(4)
        if kind == 0:
            draw.polygon(_transform(_ellipse(0, 0, r, r * rng.uniform(0.3, 1.0), n=20), (cx, cy),
                                    rng.uniform(0, np.pi)), fill=colour)
        elif kind == 1:
            draw.rectangle([cx - r, cy - r * rng.uniform(0.2, 1.5), cx + r, cy + r], fill=colour)
        elif kind == 2:
            n = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = r * rng.uniform(0.4, 1.0, n)
            pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
            draw.polygon([tuple(p) for p in pts.tolist()], fill=colour)
        else:
            x2, y2 = rng.uniform(-0.1, 1.1, 2) * size
            draw.line([(cx, cy), (x2, y2)], fill=colour, width=max(1, int(r * 0.3)))


# _NOISE_LUTS[amp] maps a random byte to 0..2*amp (one table per band, three bands).
_NOISE_LUTS = [[v * 2 * amp // 255 for v in range(256)] * 3 for amp in range(64)]


def _finish(rng, canvas: Image.Image, size: int, blur_prob=0.3, noise_max=12) -> np.ndarray:
    """Camera effects on a uint8 canvas: optional blur, a lighting ramp (darker on one side), an
    occasional brightening and uniform pixel noise. Returns (S, S, 3) uint8."""
    if rng.random() < blur_prob:  # box blur: the cheapest blur PIL has, close enough to a Gaussian
        canvas = canvas.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.5) * size / 256))
    if rng.random() < 0.75:  # uneven light: multiply by a ramp (255 = unchanged)
        light = _ramp(rng, size, 255 * rng.uniform(0.45, 1.0), 255 * rng.uniform(0.85, 1.0))
        canvas = ImageChops.multiply(canvas, Image.merge("RGB", (light, light, light)))
    if rng.random() < 0.3:  # brighten: gain > 1 through a lookup table
        gain = rng.uniform(1.1, 1.5)
        canvas = canvas.point([min(255, int(v * gain)) for v in range(256)] * 3)
    if rng.random() < 0.7:
        amp = int(rng.integers(2, noise_max + 1))
        noise = Image.frombytes("RGB", (size, size), rng.bytes(size * size * 3))
        noise = noise.point(_NOISE_LUTS[amp])  # uniform in 0..2 amp
        canvas = ImageChops.add(canvas, noise, 1.0, -amp)  # canvas + noise - amp, clipped
    return np.asarray(canvas, dtype=np.uint8)


class _SyntheticBase(Dataset):
    """Shared plumbing: length, seed, augmentation and the (seed, index) -> generator rule."""

    num_classes = 2
    class_names: tuple[str, ...] = ()

    def __init__(self, *, length: int = 1000, image_size: int = 256, seed: int = 0,
                 augment: PairedAugment | None = None):
        if length < 0 or image_size < 16:
            raise ValueError(f"need length >= 0 and image_size >= 16, got {length}, {image_size}")
        self.length, self.image_size, self.seed, self.augment = length, image_size, seed, augment
        self.palette = palette(self.num_classes)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New augmentation draws each epoch (the engine calls this); the pictures stay the same."""
        self.epoch = epoch

    def __getitem__(self, index: int):
        """Any index >= 0 is valid (the dataset is infinite; ``length`` is what ``len`` reports)."""
        if index < 0:
            raise IndexError(f"index must be >= 0, got {index}")
        image, mask = self.render(index)  # (S, S, 3) uint8, (S, S) uint8
        mask = mask.astype(np.int64)
        if self.augment is not None:
            image, mask = self.augment(image, mask, _item_rng(self.seed, index, 1, self.epoch))
        return normalize(image), torch.from_numpy(mask)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw sample ``index`` -> (image (S, S, 3) uint8, mask (S, S) uint8 class indices)."""
        raise NotImplementedError


class SyntheticPortraits(_SyntheticBase):
    """Person silhouettes (head, hair, neck, shoulders and torso, optional arms and a face) on
    cluttered backgrounds. Two classes: 0 background, 1 person.

    Background clutter is often painted in skin, hair or clothing colours, clothes can have any
    colour and texture, and lighting, blur and noise vary, so per-pixel colour cannot solve the task:
    a model must use shape and context.
    """

    num_classes = 2
    class_names = ("background", "person")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = _item_rng(self.seed, index, 0)
        size = self.image_size
        canvas = self._background(rng, size)
        mask = Image.new("L", (size, size), 0)
        self._person(rng, canvas, mask, size)
        if rng.random() < 0.15:  # foreground occluder (plant, table edge): hides part of the person
            occluder = Image.new("L", (size, size), 0)
            _draw_clutter(rng, occluder, size, 1, fill=255)
            canvas.paste(_distractor_colour(rng), mask=occluder)
            mask.paste(0, mask=occluder)
        return _finish(rng, canvas, size), np.asarray(mask, dtype=np.uint8)

    @staticmethod
    def _background(rng, size: int) -> Image.Image:
        c0, c1 = _any_colour(rng), _distractor_colour(rng)
        canvas = _solid(size, c0)
        canvas.paste(c1, mask=_ramp(rng, size))  # linear gradient from c0 to c1
        kind = rng.random()
        if kind < 0.4:  # blotchy texture (foliage, walls)
            blotches = _smooth_noise(rng, size, int(rng.integers(6, 40)), mode="RGB")
            canvas = Image.blend(canvas, blotches, rng.uniform(0.1, 0.45))
        elif kind < 0.55:  # stripes / tiles
            canvas = Image.blend(canvas, _texture(rng, size, c0), 0.4)
        _draw_clutter(rng, canvas, size, int(rng.integers(0, 9)))
        return canvas

    @staticmethod
    def _person(rng, canvas: Image.Image, mask: Image.Image, size: int) -> None:
        """Draw one person into ``canvas`` (colours) and ``mask`` (value 1), in body coordinates:
        origin at the middle of the shoulder line, y down, unit = pixels."""
        draw, label = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
        r = size * 0.12 * rng.uniform(0.55, 1.4)  # head half-height
        rx = r * rng.uniform(0.7, 0.85)  # head half-width
        pivot = (size * rng.uniform(0.2, 0.8), size * rng.uniform(0.35, 0.75))
        if rng.random() < 0.2:  # sometimes the frame cuts the person at the side
            pivot = (size * rng.choice([rng.uniform(-0.05, 0.15), rng.uniform(0.85, 1.05)]), pivot[1])
        lean = rng.normal(0.0, 0.08)  # body lean, radians
        tilt = lean + rng.normal(0.0, 0.12)  # head tilt
        skin, hair, cloth = _skin(rng), _hair(rng), _any_colour(rng)

        def body(points):
            return _transform(points, pivot, lean)

        def head(points):  # head parts rotate about the top of the neck
            neck_top = _transform([(0, -0.45 * r)], pivot, lean)[0]
            points = points.tolist() if isinstance(points, np.ndarray) else points
            return _transform([(x, y + 0.45 * r) for x, y in points], neck_top, tilt)

        def fill(polygon, colour):
            draw.polygon(polygon, fill=colour)
            label.polygon(polygon, fill=1)

        # Torso (and arms) in a clothing layer with a texture.
        half_w = rx * rng.uniform(1.9, 2.7)
        length = r * rng.uniform(3.0, 9.0)
        hip = half_w * rng.uniform(0.75, 1.1)
        torso = body([(-half_w, 0.5 * r), (-half_w + 0.45 * r, 0.0), (half_w - 0.45 * r, 0.0),
                      (half_w, 0.5 * r), (hip, length), (-hip, length)])
        clothes = Image.new("L", (size, size), 0)
        cdraw = ImageDraw.Draw(clothes)
        cdraw.polygon(torso, fill=255)
        label.polygon(torso, fill=1)
        hands = []
        if rng.random() < 0.6:
            width = max(2, int(r * rng.uniform(0.55, 0.8)))
            short_sleeves = rng.random() < 0.3
            for side in (-1, 1):
                shoulder = (side * (half_w - 0.25 * r), 0.35 * r)
                up = side * rng.uniform(0.05, 0.6) if rng.random() < 0.85 else side * rng.uniform(1.5, 2.6)
                elbow = (shoulder[0] + 2.6 * r * math.sin(up), shoulder[1] + 2.6 * r * math.cos(up))
                bend = up - side * rng.uniform(0.0, 1.6)
                hand = (elbow[0] + 2.4 * r * math.sin(bend), elbow[1] + 2.4 * r * math.cos(bend))
                arm = body([shoulder, elbow, hand])
                if short_sleeves:  # sleeve stops at the elbow; the forearm is skin
                    cdraw.line(arm[:2], fill=255, width=width, joint="curve")
                    draw.line(arm[1:], fill=skin, width=width, joint="curve")
                else:
                    cdraw.line(arm, fill=255, width=width, joint="curve")
                label.line(arm, fill=1, width=width, joint="curve")
                hands.append(arm[2])
        legs = length < size  # legs only when the torso ends inside a small-ish frame
        if legs and rng.random() < 0.7:
            width = max(2, int(hip * 0.8))
            for side in (-1, 1):
                leg = body([(side * hip * 0.5, length - 0.2 * r), (side * hip * 0.6, length + 4.5 * r)])
                draw.line(leg, fill=_any_colour(rng), width=width)
                label.line(leg, fill=1, width=width)
        canvas.paste(_texture(rng, size, cloth), mask=clothes)
        for hx, hy in hands:
            fill([(hx + x, hy + y) for x, y in _ellipse(0, 0, 0.4 * r, 0.45 * r, n=12).tolist()], skin)

        # Neck, hair behind the head, head, fringe on top, face.
        neck_w = rx * rng.uniform(0.45, 0.65)
        fill(body([(-neck_w, -0.6 * r), (neck_w, -0.6 * r), (neck_w, 0.15 * r), (-neck_w, 0.15 * r)]),
             _jitter(rng, skin, 8))
        centre = (0.0, -1.35 * r)  # head centre, body coordinates
        bald = rng.random() < 0.1
        if not bald:
            if rng.random() < 0.35:  # long hair falling behind the neck to the shoulders
                fill(head([(-rx * 1.1, -1.4 * r), (rx * 1.1, -1.4 * r), (rx * 1.25, 0.3 * r),
                           (-rx * 1.25, 0.3 * r)]), hair)
            fill(head(_ellipse(centre[0], centre[1] - 0.12 * r, rx * 1.1, r * 1.05)), hair)
        fill(head(_ellipse(*centre, rx, r)), skin)
        if not bald:
            cap = _ellipse(centre[0], centre[1] - 0.12 * r, rx * 1.1, r * 1.05, n=32)
            line = centre[1] - r * rng.uniform(0.3, 0.6)
            cap = cap[cap[:, 1] < line]
            if len(cap) >= 3:
                fill(head(cap), hair)
        if rng.random() < 0.7:  # eyes and mouth: dark spots inside the person
            dark = _jitter(rng, (40, 30, 30), 20)
            for side in (-1, 1):
                draw.polygon(head(_ellipse(side * 0.38 * rx, centre[1] - 0.05 * r, 0.14 * rx,
                                           0.08 * r, n=8)), fill=dark)
            draw.polygon(head(_ellipse(0, centre[1] + 0.5 * r, 0.3 * rx, 0.07 * r, n=8)),
                         fill=_jitter(rng, (150, 60, 60), 30))


class SyntheticScenes(_SyntheticBase):
    """Street-like scenes with four classes: 0 sky, 1 ground (grass, road, hills), 2 person,
    3 object (cars and boxes). Objects further away are smaller and drawn first, so nearer ones
    occlude them in the image and the mask alike."""

    num_classes = 4
    class_names = ("sky", "ground", "person", "object")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = _item_rng(self.seed, index, 0)
        size = self.image_size
        horizon = size * rng.uniform(0.3, 0.6)
        slope = rng.normal(0.0, 0.08) * size
        # Sky: vertical gradient between two colours, with a few clouds (still sky).
        top = _jitter(rng, rng.choice([(70, 120, 200), (150, 170, 190), (230, 150, 90)]), 30)
        low = _jitter(rng, (200, 215, 230), 30)
        ramp = np.linspace(0, 255, size).astype(np.uint8)  # (S,) top -> bottom
        ramp = Image.fromarray(np.ascontiguousarray(np.broadcast_to(ramp[:, None], (size, size))))
        canvas = _solid(size, top)
        canvas.paste(low, mask=ramp)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(0, 4))):
            cx, cy = rng.uniform(0, size), rng.uniform(0, horizon)
            draw.polygon(_ellipse(cx, cy, size * rng.uniform(0.05, 0.2), size * rng.uniform(0.02, 0.06),
                                  n=16).tolist(), fill=_jitter(rng, (235, 235, 240), 15))
        mask = Image.new("L", (size, size), 0)
        label = ImageDraw.Draw(mask)
        # Ground: hills line + textured field, an optional road trapezoid with lane marks.
        xs = np.linspace(-1, size + 1, 12)
        hills = horizon + slope * (xs / size - 0.5) - np.abs(rng.normal(0, 0.05, 12)) * size
        ground_poly = list(zip(xs.tolist(), hills.tolist())) + [(size + 1, size + 1), (-1, size + 1)]
        field = _texture(rng, size, _jitter(rng, rng.choice([(80, 130, 60), (150, 130, 90),
                                                            (110, 110, 100)]), 30), strength=0.25)
        ground = Image.new("L", (size, size), 0)
        ImageDraw.Draw(ground).polygon(ground_poly, fill=255)
        canvas.paste(field, mask=ground)
        label.polygon(ground_poly, fill=1)
        if rng.random() < 0.7:
            vx = size * rng.uniform(0.2, 0.8)
            road = [(vx - size * 0.01, horizon), (vx + size * 0.01, horizon),
                    (size * rng.uniform(0.8, 1.5), size + 1), (size * rng.uniform(-0.5, 0.2), size + 1)]
            draw.polygon(road, fill=_jitter(rng, (90, 90, 95), 20))
            label.polygon(road, fill=1)
            for t0 in np.arange(0.05, 1.0, 0.15):  # dashed centre line, perspective spacing
                t1 = t0 + 0.06
                y0, y1 = horizon + (size - horizon) * t0 ** 2, horizon + (size - horizon) * t1 ** 2
                mx = (road[2][0] + road[3][0]) / 2
                x0, x1 = vx + (mx - vx) * t0 ** 2, vx + (mx - vx) * t1 ** 2
                draw.line([(x0, y0), (x1, y1)], fill=(230, 230, 210), width=max(1, int(3 * t1 * size / 256)))
        # Things standing on the ground, far (small) to near (large).
        feet = np.sort(rng.uniform(horizon + 4, size * 1.15, int(rng.integers(1, 7))))
        for foot in feet:
            depth = (foot - horizon) / (size - horizon)  # 0 at horizon, 1 at the bottom edge
            x = rng.uniform(-0.1, 1.1) * size
            if rng.random() < 0.5:
                self._person(rng, draw, label, x, foot, size * (0.1 + 0.5 * depth))
            else:
                self._thing(rng, draw, label, x, foot, size * (0.08 + 0.4 * depth))
        return _finish(rng, canvas, size, blur_prob=0.3, noise_max=8), np.asarray(mask, np.uint8)

    @staticmethod
    def _person(rng, draw, label, x, foot, height):
        skin, shirt, trousers = _skin(rng), _any_colour(rng), _any_colour(rng)
        r = height * 0.07
        w = max(1, int(height * 0.09))
        parts = [  # (kind, geometry, colour)
            ("line", [(x - r * 0.8, foot), (x - r * 0.5, foot - height * 0.47)], trousers),
            ("line", [(x + r * 0.8, foot), (x + r * 0.5, foot - height * 0.47)], trousers),
            ("poly", [(x - 1.5 * r, foot - height * 0.8), (x + 1.5 * r, foot - height * 0.8),
                      (x + 1.2 * r, foot - height * 0.45), (x - 1.2 * r, foot - height * 0.45)], shirt),
            ("line", [(x - 1.6 * r, foot - height * 0.78), (x - 2.2 * r, foot - height * 0.5)], shirt),
            ("line", [(x + 1.6 * r, foot - height * 0.78), (x + 2.0 * r, foot - height * 0.5)], shirt),
            ("poly", _ellipse(x, foot - height * 0.88, r * 0.9, r * 1.15, n=16).tolist(), skin),
        ]
        for kind, geometry, colour in parts:
            if kind == "line":
                draw.line(geometry, fill=colour, width=w)
                label.line(geometry, fill=2, width=w)
            else:
                draw.polygon([tuple(p) for p in geometry], fill=colour)
                label.polygon([tuple(p) for p in geometry], fill=2)

    @staticmethod
    def _thing(rng, draw, label, x, foot, height):
        colour = _distractor_colour(rng)
        if rng.random() < 0.6:  # car: body, cabin, wheels, windows
            length = height * rng.uniform(2.0, 2.8)
            body = [(x, foot - height * 0.2), (x + length, foot - height * 0.2),
                    (x + length, foot - height * 0.6), (x, foot - height * 0.6)]
            cabin = [(x + length * 0.2, foot - height * 0.6), (x + length * 0.8, foot - height * 0.6),
                     (x + length * 0.65, foot - height), (x + length * 0.3, foot - height)]
            for polygon in (body, cabin):
                draw.polygon(polygon, fill=colour)
                label.polygon(polygon, fill=3)
            draw.polygon([(x + length * 0.3, foot - height * 0.65), (x + length * 0.7, foot - height * 0.65),
                          (x + length * 0.62, foot - height * 0.93), (x + length * 0.33, foot - height * 0.93)],
                         fill=_jitter(rng, (60, 80, 100), 20))
            for wx in (x + length * 0.2, x + length * 0.8):
                wheel = _ellipse(wx, foot - height * 0.2, height * 0.2, height * 0.2, n=14).tolist()
                draw.polygon([tuple(p) for p in wheel], fill=(25, 25, 25))
                label.polygon([tuple(p) for p in wheel], fill=3)
        else:  # box with a lighter top face
            w = height * rng.uniform(0.6, 1.4)
            front = [(x, foot), (x + w, foot), (x + w, foot - height), (x, foot - height)]
            top = [(x, foot - height), (x + w, foot - height), (x + w * 1.2, foot - height * 1.2),
                   (x + w * 0.2, foot - height * 1.2)]
            draw.polygon(front, fill=colour)
            draw.polygon(top, fill=_jitter(rng, colour, 30))
            label.polygon(front, fill=3)
            label.polygon(top, fill=3)


# --------------------------------------------------------------------------------------------------
# Files on disk
# --------------------------------------------------------------------------------------------------
def _natural_key(path: Path):
    """Sort "2.jpg" before "10.jpg": digits compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise MissingFolderError(f"folder {folder} does not exist; check the path")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_natural_key)


def _open(path: Path) -> Image.Image:
    """Open a file with PIL, turning any decoding failure into ``UnreadableImageError``."""
    try:
        image = Image.open(path)
        image.load()
        return image
    except Exception as error:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise UnreadableImageError(
            f"cannot read {path}: {error}. Remove the file or re-save it as PNG/JPEG.") from error


def _read_rgb(path: Path) -> np.ndarray:
    """Image file -> (H, W, 3) uint8, following the channel rule of the module docstring."""
    image = _open(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise ChannelMismatchError(
            f"{path} is a {image.mode} (16/32-bit or float) image; save it as 8-bit RGB or grayscale")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _read_mask(path: Path) -> np.ndarray:
    """Mask file -> (H, W) integer array of raw values (palette PNGs give their indices)."""
    mask = _open(path)
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


def _resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[0], size[1], 3), bilinear."""
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) integer mask -> (size[0], size[1]) with nearest neighbour (labels are never mixed)."""
    if mask.dtype == np.uint8:
        return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
    rows = (np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]
    cols = (np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]
    return mask[rows.astype(np.int64)][:, cols.astype(np.int64)]


def load_image(path, *, image_size: int | None = None) -> torch.Tensor:
    """Read one image file -> (3, H, W) float32 tensor, ImageNet-normalised (used by ``segnas
    predict``). With ``image_size`` the image is resized (bilinear) to image_size x image_size."""
    image = _read_rgb(Path(path))
    if image_size is not None:
        image = _resize_rgb(image, (image_size, image_size))
    return normalize(image)


class PairedFiles(Dataset):
    """Dataset over a list of (image path, mask path) pairs: the loading logic every reader shares.

    Per item: read the image as RGB and the mask as raw values; if the mask size differs from the
    image, resize the mask to the image (nearest); map raw values to class indices; with
    ``image_size`` stretch both to image_size x image_size (bilinear / nearest; the aspect ratio is
    not kept, but no pixel is cropped away and no padding has to be ignored); augment; normalise.

    ``mask_mapping`` maps raw mask values to class indices, e.g. {0: 0, 255: 1}; without it raw values
    must already be class indices in 0..num_classes-1. Either way a value equal to ``ignore_index``
    stays ignore, and any other value raises ``MaskValueError`` when the item is loaded.
    """

    def __init__(self, pairs: Sequence[tuple[Path, Path]], *, image_size: int | None = None,
                 mask_mapping: dict[int, int] | None = None, ignore_index: int = IGNORE_INDEX,
                 num_classes: int = 2, augment: PairedAugment | None = None, seed: int = 0,
                 class_names: Sequence[str] | None = None, check_sizes: bool = True):
        if not pairs:
            raise EmptyDatasetError("no image/mask pairs to read")
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        self.image_size, self.ignore_index, self.num_classes = image_size, ignore_index, num_classes
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.class_names = tuple(class_names) if class_names else tuple(f"class{i}" for i in range(num_classes))
        self.palette = palette(num_classes)
        self.mask_mapping = dict(mask_mapping) if mask_mapping is not None else None
        self._lut = self._build_lut()
        self.resized_masks = self._check_sizes() if check_sizes else 0

    def _build_lut(self) -> np.ndarray:
        """256-entry table raw value -> class index, -1 meaning "not allowed"."""
        lut = np.full(256, -1, dtype=np.int64)
        if 0 <= self.ignore_index < 256:  # ignore stays ignore unless the mapping says otherwise
            lut[self.ignore_index] = self.ignore_index
        if self.mask_mapping is None:
            lut[:self.num_classes] = np.arange(self.num_classes)
        else:
            for raw, target in self.mask_mapping.items():
                if not (0 <= target < self.num_classes or target == self.ignore_index):
                    raise ValueError(f"mask_mapping sends {raw} to {target}, outside 0..{self.num_classes - 1}")
                if 0 <= raw < 256:
                    lut[raw] = target
        return lut

    def _check_sizes(self) -> int:
        """Read every header (cheap: PIL reads no pixels here); warn once about mask sizes."""
        mismatched, first = 0, None
        for image_path, mask_path in self.pairs:
            sizes = []
            for path in (image_path, mask_path):
                try:
                    with Image.open(path) as handle:
                        sizes.append(handle.size)
                except Exception as error:
                    raise UnreadableImageError(
                        f"cannot read {path}: {error}. Remove the file or re-save it as PNG/JPEG.") from error
            if sizes[0] != sizes[1]:
                mismatched += 1
                first = first or (mask_path, sizes[1], sizes[0])
        if mismatched:
            path, mask_size, image_size = first
            warnings.warn(
                f"{mismatched} of {len(self.pairs)} masks differ in size from their images (first: "
                f"{path}, {mask_size[0]}x{mask_size[1]} vs image {image_size[0]}x{image_size[1]}); "
                "each is resized to its image with nearest neighbour", stacklevel=3)
        return mismatched

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (they depend on (seed, index, epoch)) for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def map_mask(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw mask values -> int64 class indices; unknown values raise ``MaskValueError``."""
        if raw.dtype == np.uint8:
            mapped = self._lut[raw]
        else:  # wider masks (16-bit): map through the dict or the identity, rare and slower
            mapped = np.full(raw.shape, -1, dtype=np.int64)
            for value in np.unique(raw).tolist():
                target = int(self._lut[value]) if 0 <= value < 256 else -1
                mapped[raw == value] = target
        if (mapped < 0).any():
            bad = np.unique(raw[mapped < 0])
            allowed = (sorted(self.mask_mapping) if self.mask_mapping is not None
                       else f"0..{self.num_classes - 1}")
            raise MaskValueError(
                f"mask {path} holds values {bad[:10].tolist()} outside the class set (allowed: "
                f"{allowed}, and {self.ignore_index} = ignore). Pass mask_mapping, e.g. "
                "{0: 0, 255: 1} for 0/255 binary masks, or fix num_classes.")
        return mapped

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) int64 mask, before augmentation and normalisation."""
        image_path, mask_path = self.pairs[index]
        image, raw = _read_rgb(image_path), _read_mask(mask_path)
        if raw.shape != image.shape[:2]:
            raw = _resize_mask(raw, image.shape[:2])
        mask = self.map_mask(raw, mask_path)
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            image = _resize_rgb(image, size)
            mask = _resize_mask(mask.astype(np.uint8), size).astype(np.int64)  # values < 256 here
        return image, mask

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image, mask = self.load(index)
        if self.augment is not None:
            image, mask = self.augment(image, mask, _item_rng(self.seed, index, 1, self.epoch))
        return normalize(image), torch.from_numpy(np.ascontiguousarray(mask))


class SegmentationFolder(PairedFiles):
    """Images in ``images_dir`` paired with masks in ``masks_dir`` by file stem.

    Any extension in ``IMAGE_EXTENSIONS`` (case-insensitive) is accepted for both. ``files``
    optionally restricts and orders the set (stems or file names). Pairing is checked when the
    dataset is built: a missing mask raises ``MissingMaskError`` there, not at training time.
    """

    def __init__(self, images_dir, masks_dir, *, image_size: int | None = None,
                 mask_mapping: dict[int, int] | None = None, ignore_index: int = IGNORE_INDEX,
                 num_classes: int = 2, augment: PairedAugment | None = None,
                 files: Sequence[str] | None = None, seed: int = 0,
                 class_names: Sequence[str] | None = None):
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        images = _list_images(images_dir)
        if not masks_dir.is_dir():
            raise MissingFolderError(f"mask folder {masks_dir} does not exist; check the path")
        masks: dict[str, Path] = {}
        for mask in _list_images(masks_dir):  # when several files share a stem, prefer the PNG
            if mask.stem not in masks or mask.suffix.lower() == ".png":
                masks[mask.stem] = mask
        if files is not None:
            by_stem = {p.stem: p for p in images}
            wanted = [Path(f).stem for f in files]
            missing = [stem for stem in wanted if stem not in by_stem]
            if missing:
                raise MissingImageError(f"{len(missing)} listed files have no image in {images_dir}, "
                                        f"e.g. {missing[:3]}; check the file list")
            images = [by_stem[stem] for stem in wanted]
        if not images:
            raise EmptyDatasetError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {images_dir}; check the path")
        pairs = []
        for image in images:
            if image.stem not in masks:
                raise MissingMaskError(
                    f"image {image.name} has no mask named {image.stem}.<png|jpg|...> in {masks_dir}; "
                    "add the mask or remove the image")
            pairs.append((image, masks[image.stem]))
        super().__init__(pairs, image_size=image_size, mask_mapping=mask_mapping,
                         ignore_index=ignore_index, num_classes=num_classes, augment=augment,
                         seed=seed, class_names=class_names)
        self.images_dir, self.masks_dir = images_dir, masks_dir


VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


def _voc_root(root: Path) -> Path | None:
    """The folder holding JPEGImages/ and SegmentationClass/, accepting VOCdevkit parents."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    return None


class VOCSegmentation(SegmentationFolder):
    """Pascal VOC 2012 segmentation (Everingham et al., 2010): JPEGImages/*.jpg, SegmentationClass/*.png
    (palette indices 0..20, 255 = object borders and "difficult", ignored) and the split lists
    ImageSets/Segmentation/{train,val,trainval}.txt. 21 classes."""

    def __init__(self, root, *, split: str = "train", image_size: int | None = None,
                 augment: PairedAugment | None = None, seed: int = 0):
        base = _voc_root(Path(root))
        if base is None:
            raise MissingFolderError(f"{root} is not a Pascal VOC folder: expected JPEGImages/ and "
                                     "SegmentationClass/ (or VOCdevkit/VOC2012/ holding them)")
        split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not split_file.is_file():
            raise MissingFolderError(f"split list {split_file} not found; splits are train, val, trainval")
        stems = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        if not stems:
            raise EmptyDatasetError(f"split list {split_file} is empty")
        super().__init__(base / "JPEGImages", base / "SegmentationClass", image_size=image_size,
                         num_classes=21, augment=augment, files=stems, seed=seed, class_names=VOC_CLASSES)


# Official Cityscapes labelId -> trainId table (cityscapesScripts, helpers/labels.py).
# Ids not listed (and "license plate", id -1) map to 255 = ignore.
CITYSCAPES_TRAIN_IDS = {
    7: 0,    # road
    8: 1,    # sidewalk
    11: 2,   # building
    12: 3,   # wall
    13: 4,   # fence
    17: 5,   # pole
    19: 6,   # traffic light
    20: 7,   # traffic sign
    21: 8,   # vegetation
    22: 9,   # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
                      "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)],
    dtype=np.uint8)


class CityscapesSegmentation(PairedFiles):
    """Cityscapes fine annotations (Cordts et al., 2016): leftImg8bit/<split>/<city>/*_leftImg8bit.png
    with gtFine/<split>/<city>/*_gtFine_labelIds.png; the 34 label ids are mapped to the 19 training
    classes with ``CITYSCAPES_TRAIN_IDS`` (everything else -> 255, ignored)."""

    def __init__(self, root, *, split: str = "train", image_size: int | None = None,
                 augment: PairedAugment | None = None, seed: int = 0):
        root = Path(root)
        image_root, mask_root = root / "leftImg8bit" / split, root / "gtFine" / split
        if not image_root.is_dir() or not mask_root.is_dir():
            raise MissingFolderError(f"{root} is not a Cityscapes folder for split {split!r}: expected "
                                     f"{image_root} and {mask_root}")
        images = sorted(image_root.glob("*/*_leftImg8bit.png"))
        if not images:
            raise EmptyDatasetError(f"no */*_leftImg8bit.png files in {image_root}")
        pairs = []
        for image in images:
            stem = image.name[: -len("_leftImg8bit.png")]
            mask = mask_root / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not mask.is_file():
                raise MissingMaskError(f"image {image.name} has no mask {mask.name} in {mask.parent}")
            pairs.append((image, mask))
        mapping = {label_id: IGNORE_INDEX for label_id in range(256)}  # every id is allowed ...
        mapping.update(CITYSCAPES_TRAIN_IDS)  # ... and the 19 used ones become train ids
        super().__init__(pairs, image_size=image_size, mask_mapping=mapping, num_classes=19,
                         augment=augment, seed=seed, class_names=CITYSCAPES_CLASSES)
        self.palette = CITYSCAPES_PALETTE.copy()


def people_dataset(root, *, image_size: int | None, augment: PairedAugment | None = None,
                   seed: int = 0) -> SegmentationFolder:
    """The people layout: root/Training_Images/N.jpg with root/Ground_Truth/N.png, 0/255 masks."""
    root = Path(root)
    return SegmentationFolder(root / "Training_Images", root / "Ground_Truth", image_size=image_size,
                              mask_mapping={0: 0, 255: 1}, num_classes=2, augment=augment, seed=seed,
                              class_names=("background", "person"))


def default_people_dir() -> Path:
    """Where the shared people set lives: $SEGNAS_PEOPLE_DIR, else ../shared/data/people next to the
    repository (it is never copied into the repository)."""
    env = os.environ.get("SEGNAS_PEOPLE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "people"


# --------------------------------------------------------------------------------------------------
# Splits and the one-stop opener
# --------------------------------------------------------------------------------------------------
def split_indices(n: int, *, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic shuffle-and-cut of range(n) -> (train indices, val indices), each sorted.
    At least one item goes to each side when n >= 2 and 0 < val_fraction < 1."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class DatasetSplit(Subset):
    """A ``torch.utils.data.Subset`` that keeps ``num_classes``, ``class_names`` and ``palette``."""

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.class_names

    @property
    def palette(self) -> np.ndarray:
        return self.dataset.palette

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


_VAL_SEED_OFFSET = 1_000_003  # synthetic val sets use seed + this, so they never repeat train images


def open_dataset(source, *, image_size: int, split: str, seed: int = 0, val_fraction: float = 0.2,
                 augment: PairedAugment | None = None, length: int | None = None,
                 num_classes: int = 2, mask_mapping: dict[int, int] | None = None) -> Dataset:
    """One entry point for every data source; ``split`` is "train" or "val".

    * ``"synthetic"`` / ``"synthetic-scenes"``: SyntheticPortraits / SyntheticScenes with ``length``
      items (default 1000 train, 200 val); val uses seed + 1_000_003.
    * a folder, recognised by its layout: people (Training_Images/ + Ground_Truth/), Pascal VOC,
      Cityscapes (their own official splits), or images/ + masks/ (masks hold class indices, or pass
      ``mask_mapping``/``num_classes``). People and images/masks folders are split with
      ``split_indices(n, val_fraction=..., seed=...)``.

    ``augment`` is used for the train split only; ``length`` also caps folder datasets.
    Note for images/ + masks/ folders: without ``mask_mapping`` the value 255 means "ignore" (the VOC
    convention), so 0/255 binary masks need ``mask_mapping={0: 0, 255: 1}``.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    train = split == "train"
    augment = augment if train else None
    if source in ("synthetic", "synthetic-scenes"):
        cls = SyntheticPortraits if source == "synthetic" else SyntheticScenes
        n = length if length is not None else (1000 if train else 200)
        return cls(length=n, image_size=image_size, seed=seed if train else seed + _VAL_SEED_OFFSET,
                   augment=augment)
    root = Path(source)
    if not root.is_dir():
        raise UnknownSourceError(
            f"unknown data source {str(source)!r}: use 'synthetic', 'synthetic-scenes' or a folder path")
    if _voc_root(root) is not None:
        dataset = VOCSegmentation(root, split=split, image_size=image_size, augment=augment, seed=seed)
        return _cap(dataset, length)
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        dataset = CityscapesSegmentation(root, split=split, image_size=image_size, augment=augment, seed=seed)
        return _cap(dataset, length)
    if (root / "Training_Images").is_dir() and (root / "Ground_Truth").is_dir():
        full = people_dataset(root, image_size=image_size, augment=augment, seed=seed)
    elif (root / "images").is_dir() and (root / "masks").is_dir():
        full = SegmentationFolder(root / "images", root / "masks", image_size=image_size, augment=augment,
                                  num_classes=num_classes, mask_mapping=mask_mapping, seed=seed)
    else:
        raise UnknownSourceError(
            f"folder {root} has no known layout. Expected one of: Training_Images/ + Ground_Truth/ "
            "(people), JPEGImages/ + SegmentationClass/ (Pascal VOC), leftImg8bit/ + gtFine/ "
            "(Cityscapes), or images/ + masks/ (masks named like their images)")
    train_idx, val_idx = split_indices(len(full), val_fraction=val_fraction, seed=seed)
    indices = train_idx if train else val_idx
    return DatasetSplit(full, indices[:length] if length is not None else indices)


def _cap(dataset: Dataset, length: int | None) -> Dataset:
    if length is None or length >= len(dataset):
        return dataset
    return DatasetSplit(dataset, list(range(length)))

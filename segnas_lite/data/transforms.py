"""ImageNet normalisation and the paired augmentation of image and mask.

Conventions (the whole package): an image is a float32 tensor (3, H, W) normalised with the ImageNet
mean and std; a mask is an int64 tensor (H, W) with class indices and ``IGNORE_INDEX`` (255) = ignore.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter

from segnas_lite.data.errors import MaskValueError

# ImageNet statistics (Deng et al., 2009), used by every pretrained backbone in the package.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255  # mask value with no loss and no score (VOC object borders, uncovered pixels)

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_MEAN_T = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD_T = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
_SCALE_U8 = 1.0 / (255.0 * _STD_T)

# Random streams of one item (see ``item_rng``).
CONTENT_STREAM = 0  # what a synthetic picture shows
AUGMENT_STREAM = 1  # how it is augmented


def item_rng(seed: int, index: int, stream: int, epoch: int = 0) -> np.random.Generator:
    """Independent generator per (seed, index, stream, epoch): ``CONTENT_STREAM`` draws the content,
    ``AUGMENT_STREAM`` the augmentation, so switching augmentation on never changes the sample."""
    return np.random.default_rng([int(seed), int(index), int(stream), int(epoch)])


def normalize(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) image -> (3, H, W) float32 tensor, ImageNet-normalised: (x - mean) / std per channel.

    Accepts floats in [0, 1] or uint8 in [0, 255] (then x = value / 255). The channel move is done on
    the compact uint8 data before the float conversion, which is the fastest order on the CPU."""
    image = np.asarray(image)
    if not image.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        image = image.copy()
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()  # (3, H, W)
    out = chw.to(torch.float32)
    if image.dtype != np.uint8:
        return out.sub_(_MEAN_T).div_(_STD_T)
    return out.mul_(_SCALE_U8).sub_(_MEAN_T / _STD_T)  # (v / 255) / std - mean / std


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo ``normalize``: (3, H, W) or (N, 3, H, W) tensor -> same shape, float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)


@dataclass
class PairedAugment:
    """Random augmentation applied identically to an image and its mask.

    ``__call__(image, mask, rng)`` takes an image (H, W, 3), uint8 or float in [0, 1], a mask (H, W)
    of class indices and a ``numpy.random.Generator``; it returns (image, mask) with the same shapes
    and dtypes. The same generator state gives the same result. The work is done on 8-bit PIL images
    (fast C code). Order: scale/crop and flip (one affine map) -> brightness/contrast -> blur or
    sharpen -> cutout. This is the augmentation list of the ProxylessNAS segmentation seed
    (Cai et al., 2019).

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
    * crop (last, off by default): keep a random ``crop`` x ``crop`` window of both. A training step
      on a 160 px crop of a 256 px image costs about (160/256)^2 = 0.4 of a full one, so the same
      minutes buy more steps; the fully convolutional network still predicts whole images.

    ``PairedAugment.preset("light" | "default" | "strong")`` gives the three strengths that
    ``benchmarks/recipe.py`` compares.
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
    crop: int | None = None  # side of the random square window kept at the end; None = whole image

    @classmethod
    def preset(cls, strength: str, **changes) -> "PairedAugment":
        """``"light"``: mild zoom and colour, no cutout; ``"default"``: the fields' defaults;
        ``"strong"``: wider zoom, stronger colour, more blur and cutout. ``changes`` override fields."""
        presets = {
            "light": dict(scale_range=(0.75, 1.33), brightness=0.15, contrast=0.15, blur_prob=0.1,
                          sharpen_prob=0.05, cutout_prob=0.0),
            "default": {},
            "strong": dict(scale_range=(0.4, 2.5), brightness=0.4, contrast=0.4, blur_prob=0.3,
                           blur_sigma=(0.3, 2.5), sharpen_prob=0.15, cutout_prob=0.5),
        }
        if strength not in presets:
            raise ValueError(f"augmentation strength must be one of {', '.join(presets)}, "
                             f"got {strength!r}")
        return cls(**{**presets[strength], **changes})

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
                 soft: np.ndarray | None = None):
        """``soft`` (optional): an (H, W) uint8 map that moves with the geometry only (zoom, flip,
        crop; bilinear, 0 where a zoom-out uncovers area), e.g. a teacher's saved p(class) x 255
        (``soft_targets.py``). It draws nothing from ``rng``: with or without it, the image and
        mask get the same augmentation. Returns (image, mask), or (image, mask, soft) with it."""
        was_float = np.asarray(image).dtype != np.uint8
        if was_float:
            image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        mask = np.asarray(mask)
        if mask.max(initial=0) > 255 or mask.min(initial=0) < 0:
            raise MaskValueError("PairedAugment needs mask values in 0..255")
        picture, labels = Image.fromarray(np.asarray(image)), Image.fromarray(mask.astype(np.uint8))
        extra = None if soft is None else Image.fromarray(np.asarray(soft, dtype=np.uint8))
        picture, labels, extra = self._scale_crop_flip(picture, labels, rng, extra)
        picture = self._brightness_contrast(picture, rng)
        picture = self._blur_or_sharpen(picture, rng)
        image = self._cutout(np.array(picture), rng)  # np.array: a writable copy
        mask = np.asarray(labels).astype(np.int64)
        soft = None if extra is None else np.array(extra)
        if self.crop is not None:
            image, mask, soft = self._crop(image, mask, rng, soft)
        if was_float:
            image = image.astype(np.float32) / 255.0
        return (image, mask) if soft is None else (image, mask, soft)

    def _scale_crop_flip(self, picture: Image.Image, labels: Image.Image, rng,
                         extra: Image.Image | None = None):
        """Geometry: one affine map (output u -> source a * u + c) per axis, shared by all."""
        width, height = labels.size
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
            if extra is not None:
                extra = extra.transform((width, height), Image.AFFINE, affine, Image.BILINEAR,
                                        fillcolor=0)
        return picture, labels, extra

    def _brightness_contrast(self, picture: Image.Image, rng) -> Image.Image:
        """Image only, as a lookup table: every pixel value maps alike."""
        if rng.random() < self.color_prob:
            shift = rng.uniform(-self.brightness, self.brightness) * 255
            factor = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
            grey = float(np.asarray(picture).mean())
            table = [min(255, max(0, int(round((v - grey) * factor + grey + shift)))) for v in range(256)]
            picture = picture.point(table * 3)
        return picture

    def _blur_or_sharpen(self, picture: Image.Image, rng) -> Image.Image:
        pick = rng.random()
        if pick < self.blur_prob:
            return picture.filter(ImageFilter.GaussianBlur(rng.uniform(*self.blur_sigma)))
        if pick < self.blur_prob + self.sharpen_prob:
            percent = int(100 * rng.uniform(*self.sharpen_amount))
            return picture.filter(ImageFilter.UnsharpMask(radius=1.0, percent=percent, threshold=0))
        return picture

    def _crop(self, image: np.ndarray, mask: np.ndarray, rng, soft: np.ndarray | None = None):
        """The same random ``crop`` x ``crop`` window of the (H, W, 3) image, the (H, W) mask and
        the optional (H, W) soft map -> (image, mask, soft)."""
        height, width = mask.shape
        if self.crop > min(height, width):
            raise ValueError(f"crop {self.crop} is larger than the {width}x{height} image: lower "
                             "the crop or raise the image size")
        top = int(rng.integers(0, height - self.crop + 1))
        left = int(rng.integers(0, width - self.crop + 1))
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        soft = None if soft is None else np.ascontiguousarray(soft[window])
        return np.ascontiguousarray(image[window]), np.ascontiguousarray(mask[window]), soft

    def _cutout(self, image: np.ndarray, rng) -> np.ndarray:
        """Paint a random square of the (H, W, 3) uint8 image, in place, with the mean colour."""
        height, width = image.shape[:2]
        if rng.random() < self.cutout_prob:
            side = int(rng.uniform(*self.cutout_fraction) * min(height, width))
            top = int(rng.integers(0, max(1, height - side + 1)))
            left = int(rng.integers(0, max(1, width - side + 1)))
            image[top:top + side, left:left + side] = np.round(255 * _MEAN).astype(np.uint8)
        return image

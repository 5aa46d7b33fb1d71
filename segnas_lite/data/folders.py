"""Image/mask folders on disk: the shared loader ``PairedFiles`` and ``SegmentationFolder``.

* ``PairedFiles``: a list of (image, mask) pairs -> normalised image and class-index mask tensors,
  with the class set (number of classes, raw "no label" value, raw value -> class mapping);
* ``SegmentationFolder``: images + masks paired by file stem (``folder_pairs``, ``match_by_stem``).

Files are read with ``io.py`` (its channel rule); the public sets (Pascal VOC, Cityscapes, people)
are in ``public.py``.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from segnas_lite.data.errors import (EmptyDatasetError, MaskMappingError, MaskValueError, MissingFolderError,
                                     MissingImageError, MissingMaskError, SharedNameError)
from segnas_lite.data.io import (IMAGE_EXTENSIONS, drawn_on_stored_pixels, fit_mask, list_images,
                                 natural_key, read_mask, read_rgb, resize_mask, resize_rgb,
                                 upright_size)
from segnas_lite.data.palette import palette
from segnas_lite.data.transforms import AUGMENT_STREAM, IGNORE_INDEX, PairedAugment, item_rng, normalize

MAPPING_HINT = ("Give the class set: --num-classes N, --ignore-index V (the raw 'no label' value), "
                "--mask-mapping '0:0,255:1' (raw value -> class), or --unmapped ignore "
                "(Python: num_classes=, ignore_index=, mask_mapping=, unmapped=)")
LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")
LOSSY_HINT = ("Masks saved as JPEG carry compression noise (in-between values along every edge): "
              "save the masks as PNG, which keeps every value exactly. ")


def value_hint(mask_paths) -> str:
    """How to fix masks with values outside the class set: re-save them as PNG when one is a JPEG
    (its noise is the likely cause), and the class-set flags."""
    lossy = any(Path(p).suffix.lower() in LOSSY_EXTENSIONS for p in mask_paths)
    return (LOSSY_HINT if lossy else "") + MAPPING_HINT


def binary_hint(values) -> str:
    """A mask holding 0 and one other value v only is a binary mask (v = the object): say how to
    read it as classes 0 and 1. Empty for any other set of values."""
    values = sorted(int(v) for v in values)
    if len(values) != 2 or values[0] != 0 or values[1] <= 1:
        return ""
    return (f"A mask of 0 and {values[1]} only is a binary mask: --mask-mapping 0:0,{values[1]}:1 "
            f"reads {values[1]} as class 1 (Python: mask_mapping={{0: 0, {values[1]}: 1}}). ")


def only_ignore_labelled(class_pixels: np.ndarray, ignored: int, ignore_index: int) -> str | None:
    """The silent failure of binary 0/255 masks in a folder whose 255 means "no label": every
    labelled pixel is class 0, and the object's pixels are ignored. The message that says so and
    how to fix it, or None when some other class is labelled (or nothing is ignored)."""
    total = int(class_pixels.sum()) + ignored
    if len(class_pixels) < 2 or not ignored or class_pixels[1:].any():
        return None
    return (f"no pixel of any class but 0 is labelled, and {ignored:,} pixels "
            f"({100 * ignored / total:.1f}%) hold {ignore_index}, the 'no label' value: training "
            f"would learn class 0 alone. Binary masks of 0 and {ignore_index} are read this way; "
            f"if {ignore_index} marks the object, pass --mask-mapping 0:0,{ignore_index}:1 "
            f"(Python: mask_mapping={{0: 0, {ignore_index}: 1}}), or give the 'no label' value "
            "your masks really use with --ignore-index")


class PairedFiles(Dataset):
    """Dataset over a list of (image path, mask path) pairs: the loading logic every reader shares.

    Per item: read the image as RGB and the mask as raw values; if the mask size differs from the
    image, resize the mask to the image (nearest); map raw values to class indices; with
    ``image_size`` stretch both to image_size x image_size (bilinear / nearest; the aspect ratio is
    not kept, but no pixel is cropped away and no padding has to be ignored); augment; normalise.

    ``mask_mapping`` maps raw mask values to class indices, e.g. {0: 0, 255: 1}; without it raw values
    must already be class indices in 0..num_classes-1. ``ignore_index`` is the raw value that means
    "no label" in the files (255 by default, 11 in SegNet's CamVid): it becomes ``IGNORE_INDEX`` in
    every mask this class returns, as does a mapping target equal to ``IGNORE_INDEX``. Any other value
    raises ``MaskValueError`` when the item is loaded, unless ``unmapped="ignore"`` (then it is
    ignored too). ``data.check.scan_masks`` finds such values in every mask before training starts.
    """

    def __init__(self, pairs: Sequence[tuple[Path, Path]], *, image_size: int | None = None,
                 mask_mapping: dict[int, int] | None = None, ignore_index: int = IGNORE_INDEX,
                 num_classes: int = 2, augment: PairedAugment | None = None, seed: int = 0,
                 class_names: Sequence[str] | None = None, check_sizes: bool = True,
                 unmapped: str = "error"):
        if not pairs:
            raise EmptyDatasetError("no image/mask pairs to read")
        if unmapped not in ("error", "ignore"):
            raise MaskMappingError(f"unmapped must be 'error' or 'ignore', got {unmapped!r}")
        if num_classes < 1 or num_classes > IGNORE_INDEX:
            raise MaskMappingError(f"num_classes must be in 1..{IGNORE_INDEX}, got {num_classes}")
        self.unmapped = unmapped
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        self.image_size, self.ignore_index, self.num_classes = image_size, ignore_index, num_classes
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.class_names = tuple(class_names) if class_names else tuple(f"class{i}" for i in range(num_classes))
        self.palette = palette(num_classes)
        self.mask_mapping = dict(mask_mapping) if mask_mapping is not None else None
        self._lut = self._build_lut()
        self.resized_masks = self._check_sizes() if check_sizes else 0

    def _build_lut(self) -> np.ndarray:
        """65536-entry table raw value -> class index (or ``IGNORE_INDEX``); -1 means "not allowed"."""
        lut = np.full(65536, IGNORE_INDEX if self.unmapped == "ignore" else -1, dtype=np.int64)
        if self.mask_mapping is None:
            lut[:self.num_classes] = np.arange(self.num_classes)
        else:
            for raw, target in self.mask_mapping.items():
                if not (0 <= target < self.num_classes or target == IGNORE_INDEX):
                    raise MaskMappingError(
                        f"the mask mapping sends {raw} to class {target}, outside 0..{self.num_classes - 1}"
                        f" (and {IGNORE_INDEX} = ignore): raise the number of classes or fix the mapping")
                if not 0 <= raw < 65536:
                    raise MaskMappingError(f"mask values are 0..65535; the mapping names {raw}")
                lut[raw] = target
        if 0 <= self.ignore_index < 65536 and (self.mask_mapping is None
                                               or self.ignore_index not in self.mask_mapping):
            lut[self.ignore_index] = IGNORE_INDEX  # the file's "no label" value, unless mapped
        return lut

    def _check_sizes(self) -> int:
        """Read every header (cheap: PIL reads no pixels here); warn once about masks of another
        size than their upright photo (``io.fit_mask`` brings them to it)."""
        mismatched, turned, first = 0, 0, None
        for image_path, mask_path in self.pairs:
            image_size, mask_size = upright_size(image_path), upright_size(mask_path)
            if image_size == mask_size:
                continue
            if drawn_on_stored_pixels(mask_size, image_path):
                turned += 1
            mismatched += 1
            first = first or (mask_path, mask_size, image_size)
        if mismatched:
            path, mask_size, image_size = first
            warnings.warn(
                f"{mismatched} of {len(self.pairs)} masks differ in size from their images (first: "
                f"{path}, {mask_size[0]}x{mask_size[1]} vs image {image_size[0]}x{image_size[1]}); "
                "each is resized to its image with nearest neighbour"
                + (f"; {turned} of them match the stored pixels of a photo that its EXIF tag turns "
                   "by 90 degrees, and are turned with it first" if turned else ""), stacklevel=3)
        return mismatched

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (they depend on (seed, index, epoch)) for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def map_mask(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw mask values -> int64 class indices; unknown values raise ``MaskValueError``."""
        if raw.dtype in (np.uint8, np.uint16):
            mapped = self._lut[raw]
        else:  # 32-bit masks: values past the table are never allowed
            inside = (raw >= 0) & (raw < len(self._lut))
            mapped = np.where(inside, self._lut[np.clip(raw, 0, len(self._lut) - 1)],
                              IGNORE_INDEX if self.unmapped == "ignore" else -1)
        if (mapped < 0).any():
            bad = np.unique(raw[mapped < 0])
            raise MaskValueError(f"mask {path} holds values {bad[:10].tolist()} outside the class "
                                 f"set ({self.allowed_values()}). {binary_hint(np.unique(raw))}"
                                 f"{value_hint([path])}")
        return mapped

    def allowed_values(self) -> str:
        """The raw values a mask may hold, in words (for error messages and ``segnas data check``)."""
        known = (f"0..{self.num_classes - 1}" if self.mask_mapping is None
                 else ", ".join(str(v) for v in sorted(self.mask_mapping)))
        if self.mask_mapping is not None and self.ignore_index in self.mask_mapping:
            return f"allowed: {known}"  # the file's "no label" value is a class here
        return f"allowed: {known}, and {self.ignore_index} = ignore"

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) int64 mask, before augmentation and normalisation."""
        image_path, mask_path = self.pairs[index]
        image, raw = read_rgb(image_path), read_mask(mask_path)  # both upright
        raw = fit_mask(raw, image.shape[:2], image_path)
        mask = self.map_mask(raw, mask_path)
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            image = resize_rgb(image, size)
            mask = resize_mask(mask.astype(np.uint8), size).astype(np.int64)  # values < 256 here
        return image, mask

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image, mask = self.load(index)
        if self.augment is not None:
            image, mask = self.augment(image, mask, item_rng(self.seed, index, AUGMENT_STREAM, self.epoch))
        return normalize(image), torch.from_numpy(np.ascontiguousarray(mask))


def masks_by_stem(masks_dir: Path, image_stems: set[str] | None = None) -> dict[str, Path]:
    """The mask files of a folder by file stem; when several share a stem, the PNG wins.

    With ``image_stems``: when no mask has an image's stem but the masks add one ending to them
    (``photo_mask.png`` for ``photo.jpg``; ``_mask``, ``-gt``, ``.label``, ...), they are keyed by
    the image stem, and a warning names the ending (``mask_suffix``)."""
    masks: dict[str, Path] = {}
    for mask in list_images(masks_dir):
        if mask.stem not in masks or mask.suffix.lower() == ".png":
            masks[mask.stem] = mask
    if not image_stems or image_stems & masks.keys():
        return masks
    suffix = mask_suffix(image_stems, masks)
    if not suffix:
        return masks
    example = next(stem for stem in masks if stem.endswith(suffix))
    warnings.warn(f"no mask in {masks_dir} has the name of a photo, but they add {suffix!r} to "
                  f"it ({example[:-len(suffix)]} -> {masks[example].name}): paired that way",
                  stacklevel=3)
    return {(stem[:-len(suffix)] if stem.endswith(suffix) else stem): mask
            for stem, mask in masks.items()}


def mask_suffix(image_stems: set[str], mask_stems) -> str:
    """The ending that most masks add to the stem of a photo ("_mask" for photo_mask.png beside
    photo.jpg), or "" when none does for at least half of the masks. Each mask stem is cut at
    every position and the head looked up among the photo stems (a set)."""
    mask_stems = list(mask_stems)
    endings = Counter(next((stem[cut:] for cut in range(len(stem) - 1, 0, -1)
                            if stem[:cut] in image_stems), None) for stem in mask_stems)
    endings.pop(None, None)  # masks whose name starts with no photo's
    if not endings:
        return ""
    suffix, found = endings.most_common(1)[0]
    return suffix if 2 * found >= len(mask_stems) else ""


def shared_stems(images: Sequence[Path]) -> dict[str, list[Path]]:
    """The file stems that several images of one folder share (``a.jpg`` and ``a.png``), each
    with its files: masks pair by stem, so one mask would label all of them."""
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_stem.setdefault(image.stem, []).append(image)
    return {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}


def shared_stem_text(stem: str, paths: Sequence[Path]) -> str:
    """What to say about one shared stem (``SharedNameError`` and ``segnas data check``)."""
    return (f"{', '.join(p.name for p in paths)} in {paths[0].parent} share the name {stem!r}, "
            f"so the mask {stem}.* would label each of them: keep one photo (the same photo in "
            "two formats is counted twice) or rename the other and give it its own mask")


def match_by_stem(images_dir, masks_dir) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pair the images of one folder with the masks of another by file stem, without raising on
    strays: (pairs, images without a mask, masks without an image). ``segnas data check`` reports
    the strays; ``SegmentationFolder`` refuses them."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    images = list_images(images_dir)
    if not masks_dir.is_dir():
        raise MissingFolderError(f"mask folder {masks_dir} does not exist; check the path")
    stems = {image.stem for image in images}
    masks = masks_by_stem(masks_dir, stems)
    pairs = [(image, masks[image.stem]) for image in images if image.stem in masks]
    lonely_images = [image for image in images if image.stem not in masks]
    lonely_masks = [mask for stem, mask in masks.items() if stem not in stems]
    return pairs, lonely_images, sorted(lonely_masks, key=natural_key)


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
                 class_names: Sequence[str] | None = None, unmapped: str = "error"):
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        super().__init__(folder_pairs(images_dir, masks_dir, files), image_size=image_size,
                         mask_mapping=mask_mapping, ignore_index=ignore_index,
                         num_classes=num_classes, augment=augment, seed=seed,
                         class_names=class_names, unmapped=unmapped)
        self.images_dir, self.masks_dir = images_dir, masks_dir


def folder_pairs(images_dir: Path, masks_dir: Path,
                 files: Sequence[str] | None = None) -> list[tuple[Path, Path]]:
    """Every (image, mask) pair of two folders, in natural order (or the order of ``files``);
    an image without a mask raises ``MissingMaskError``, an empty folder ``EmptyDatasetError``."""
    images = list_images(images_dir)
    if not masks_dir.is_dir():
        raise MissingFolderError(f"mask folder {masks_dir} does not exist; check the path")
    shared = shared_stems(images)
    if shared:
        stem, paths = next(iter(shared.items()))
        more = f" ({len(shared) - 1} more names are shared too)" if len(shared) > 1 else ""
        raise SharedNameError(shared_stem_text(stem, paths) + more +
                              "; `segnas data check` lists them all")
    masks = masks_by_stem(masks_dir, {image.stem for image in images})
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
                "add the mask or remove the image (`segnas data check` lists every stray file)")
        pairs.append((image, masks[image.stem]))
    return pairs

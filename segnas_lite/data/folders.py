"""Images and masks on disk: file readers, a generic image/mask folder, Pascal VOC, Cityscapes, people.

* ``SegmentationFolder``: images + masks paired by file stem; ``PairedFiles`` is the shared loader.
* ``VOCSegmentation`` (Everingham et al., 2010) and ``CityscapesSegmentation`` (Cordts et al., 2016)
  read the official layouts; ``people_dataset`` reads the people set (0/255 masks).

Channel rule for files: every image is converted to RGB with PIL (grayscale is copied to the three
channels, the alpha channel of RGBA/LA is dropped, palette images are expanded). Images in modes
that have no 8-bit RGB meaning (16-bit "I;16", 32-bit "I", float "F") raise ``ChannelMismatchError``.
A mask must be single-channel (or palette indices); an RGB mask is accepted only when its three
channels are identical.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from segnas_lite.data.errors import (ChannelMismatchError, EmptyDatasetError, MaskMappingError, MaskValueError,
                     MissingFolderError, MissingImageError, MissingMaskError, UnreadableImageError)
from segnas_lite.data.transforms import AUGMENT_STREAM, IGNORE_INDEX, PairedAugment, item_rng, normalize
from segnas_lite.data.palette import palette

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAPPING_HINT = ("Give the class set: --num-classes N, --ignore-index V (the raw 'no label' value), "
                "--mask-mapping '0:0,255:1' (raw value -> class), or --unmapped ignore "
                "(Python: num_classes=, ignore_index=, mask_mapping=, unmapped=)")


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
        if raw.dtype in (np.uint8, np.uint16):
            mapped = self._lut[raw]
        else:  # 32-bit masks: values past the table are never allowed
            inside = (raw >= 0) & (raw < len(self._lut))
            mapped = np.where(inside, self._lut[np.clip(raw, 0, len(self._lut) - 1)],
                              IGNORE_INDEX if self.unmapped == "ignore" else -1)
        if (mapped < 0).any():
            bad = np.unique(raw[mapped < 0])
            raise MaskValueError(f"mask {path} holds values {bad[:10].tolist()} outside the class "
                                 f"set ({self.allowed_values()}). {MAPPING_HINT}")
        return mapped

    def allowed_values(self) -> str:
        """The raw values a mask may hold, in words (for error messages and ``segnas data check``)."""
        known = (f"0..{self.num_classes - 1}" if self.mask_mapping is None
                 else ", ".join(str(v) for v in sorted(self.mask_mapping)))
        return f"allowed: {known}, and {self.ignore_index} = ignore"

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
            image, mask = self.augment(image, mask, item_rng(self.seed, index, AUGMENT_STREAM, self.epoch))
        return normalize(image), torch.from_numpy(np.ascontiguousarray(mask))


def masks_by_stem(masks_dir: Path) -> dict[str, Path]:
    """The mask files of a folder by file stem; when several share a stem, the PNG wins."""
    masks: dict[str, Path] = {}
    for mask in _list_images(masks_dir):
        if mask.stem not in masks or mask.suffix.lower() == ".png":
            masks[mask.stem] = mask
    return masks


def match_by_stem(images_dir, masks_dir) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pair the images of one folder with the masks of another by file stem, without raising on
    strays: (pairs, images without a mask, masks without an image). ``segnas data check`` reports
    the strays; ``SegmentationFolder`` refuses them."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    images = _list_images(images_dir)
    if not masks_dir.is_dir():
        raise MissingFolderError(f"mask folder {masks_dir} does not exist; check the path")
    masks = masks_by_stem(masks_dir)
    stems = {image.stem for image in images}
    pairs = [(image, masks[image.stem]) for image in images if image.stem in masks]
    lonely_images = [image for image in images if image.stem not in masks]
    lonely_masks = [mask for stem, mask in masks.items() if stem not in stems]
    return pairs, lonely_images, sorted(lonely_masks, key=_natural_key)


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
    images = _list_images(images_dir)
    if not masks_dir.is_dir():
        raise MissingFolderError(f"mask folder {masks_dir} does not exist; check the path")
    masks = masks_by_stem(masks_dir)
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
    (palette indices 0..20, ``IGNORE_INDEX`` = object borders and "difficult") and the split lists
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
# Ids not listed (and "license plate", id -1) map to IGNORE_INDEX.
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
    classes with ``CITYSCAPES_TRAIN_IDS`` (everything else -> ``IGNORE_INDEX``)."""

    def __init__(self, root, *, split: str = "train", image_size: int | None = None,
                 augment: PairedAugment | None = None, seed: int = 0):
        root = Path(root)
        splits = [s for s in ("train", "val", "test") if (root / "leftImg8bit" / s).is_dir()] \
            if split == "all" else [split]  # "all": every split present
        pairs = []
        for name in splits:
            pairs += self.split_pairs(root, name)
        if not pairs:
            raise EmptyDatasetError(f"no */*_leftImg8bit.png files in {root / 'leftImg8bit'}")
        mapping = {label_id: IGNORE_INDEX for label_id in range(256)}  # every id is allowed ...
        mapping.update(CITYSCAPES_TRAIN_IDS)  # ... and the 19 used ones become train ids
        super().__init__(pairs, image_size=image_size, mask_mapping=mapping, num_classes=19,
                         augment=augment, seed=seed, class_names=CITYSCAPES_CLASSES)
        self.palette = CITYSCAPES_PALETTE.copy()

    @staticmethod
    def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
        """(image, labelIds mask) pairs of one split; a missing mask raises ``MissingMaskError``."""
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
        return pairs


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
    repository = Path(__file__).resolve().parents[2]  # folders.py -> data/ -> segnas_lite/ -> repository
    return repository.parent / "shared" / "data" / "people"

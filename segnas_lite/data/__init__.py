"""Data for segnas_lite: synthetic sets made on the fly, folder readers, paired augmentation.

``open_dataset`` is the one entry point; the pieces live in

* ``synthetic.py``: ``SyntheticPortraits``, ``SyntheticScenes``, ``synthetic_video`` (no download);
  ``drawing.py`` holds their PIL drawing helpers;
* ``folders.py``: file readers, ``SegmentationFolder``, Pascal VOC, Cityscapes and the people set;
* ``transforms.py``: ImageNet normalisation, ``IGNORE_INDEX``, ``PairedAugment``;
* ``errors.py``: ``DatasetError`` and its named subclasses.

Conventions (the whole package): an image is a float32 tensor (3, H, W) normalised with the ImageNet
mean and std; a mask is an int64 tensor (H, W) with class indices and ``IGNORE_INDEX`` (255) = ignore.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from .errors import (ChannelMismatchError, DatasetError, EmptyDatasetError, MaskValueError,
                     MissingFolderError, MissingImageError, MissingMaskError, UnknownSourceError,
                     UnreadableImageError)
from .folders import (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CITYSCAPES_TRAIN_IDS, IMAGE_EXTENSIONS,
                      VOC_CLASSES, CityscapesSegmentation, PairedFiles, SegmentationFolder,
                      VOCSegmentation, _voc_root, default_people_dir, load_image, people_dataset)
from .synthetic import SyntheticPortraits, SyntheticScenes, synthetic_video
from .transforms import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, PairedAugment, denormalize, normalize

__all__ = [
    "CITYSCAPES_CLASSES", "CITYSCAPES_PALETTE", "CITYSCAPES_TRAIN_IDS", "IGNORE_INDEX", "IMAGENET_MEAN",
    "IMAGENET_STD", "IMAGE_EXTENSIONS", "VOC_CLASSES", "ChannelMismatchError", "CityscapesSegmentation",
    "DatasetError", "DatasetSplit", "EmptyDatasetError", "MaskValueError", "MissingFolderError",
    "MissingImageError", "MissingMaskError", "PairedAugment", "PairedFiles", "SegmentationFolder",
    "SyntheticPortraits", "SyntheticScenes", "UnknownSourceError", "UnreadableImageError",
    "VOCSegmentation", "default_people_dir", "denormalize", "load_image", "normalize", "open_dataset",
    "people_dataset", "split_indices", "synthetic_video",
]


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
    Note for images/ + masks/ folders: without ``mask_mapping`` the value 255 is ``IGNORE_INDEX``
    (the VOC convention), so 0/255 binary masks need ``mask_mapping={0: 0, 255: 1}``.
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

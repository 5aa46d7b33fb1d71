"""Data for segnas_lite: synthetic sets made on the fly, folder readers, paired augmentation.

``open_dataset`` is the one entry point (``open_datasets`` reads several sources as one); the
pieces live in

* ``sources.py``: ``open_dataset``, ``split_indices`` (a pool's train/val cut), ``DatasetSplit``;
* ``concat.py``: ``open_datasets`` and ``ConcatFolders`` (several folders, one class set);
* ``splits.py``: the train and validation sets of a run and the data facts saved with it
  (``training_splits``: what ``segnas train`` reads);
* ``synthetic/``: ``SyntheticPortraits``, ``SyntheticScenes``, ``synthetic_video`` (no download)
  and their PIL drawing helpers (``synthetic/drawing.py``);
* ``io.py``: reading image and mask files (the channel rule), resizing them, ``load_image``;
* ``folders.py``: ``PairedFiles`` (the shared loader) and ``SegmentationFolder``;
* ``public.py``: Pascal VOC, Cityscapes and the people set;
* ``layouts.py``: which layout a folder has, its splits, and ``DataOptions`` (the class set);
* ``check.py``: ``check_folder`` (``segnas data check``) and ``scan_masks`` (before training);
* ``soft_targets.py``: ``SoftTargets``, another model's soft masks saved as files, read beside each
  photo and augmented with it (a teacher we cannot import: ``segnas train --soft-teacher``);
* ``transforms.py``: ImageNet normalisation, ``IGNORE_INDEX``, ``PairedAugment``;
* ``palette.py``: colours for masks (and Pascal VOC's colours read back as indices);
* ``colour_masks.py``: masks painted in colours turned into index masks (``segnas data
  index-masks``);
* ``errors.py``: ``DatasetError`` and its named subclasses.

Conventions (the whole package): an image is a float32 tensor (3, H, W) normalised with the ImageNet
mean and std; a mask is an int64 tensor (H, W) with class indices and ``IGNORE_INDEX`` (255) = ignore.
"""
from __future__ import annotations

from segnas_lite.data.concat import ConcatFolders, class_set, open_datasets
from segnas_lite.data.errors import (ChannelMismatchError, ClassSetMismatchError, DatasetError,
                                     EmptyDatasetError, MaskMappingError, MaskValueError,
                                     MissingFolderError, MissingImageError, MissingMaskError,
                                     UnknownSourceError, UnreadableImageError)
from segnas_lite.data.folders import PairedFiles, SegmentationFolder, folder_pairs, match_by_stem
from segnas_lite.data.io import IMAGE_EXTENSIONS, load_image
from segnas_lite.data.layouts import (POOL, DataOptions, FolderLayout, find_layout, parse_class_names,
                                      parse_mask_mapping)
from segnas_lite.data.public import (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CITYSCAPES_TRAIN_IDS,
                                     VOC_CLASSES, CityscapesSegmentation, VOCSegmentation,
                                     default_people_dir, people_dataset)
from segnas_lite.data.sources import SYNTHETIC, DatasetSplit, open_dataset, split_indices
from segnas_lite.data.synthetic import SyntheticPortraits, SyntheticScenes, synthetic_video
from segnas_lite.data.transforms import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, PairedAugment, denormalize, normalize

__all__ = [
    "CITYSCAPES_CLASSES", "CITYSCAPES_PALETTE", "CITYSCAPES_TRAIN_IDS", "IGNORE_INDEX", "IMAGENET_MEAN",
    "IMAGENET_STD", "IMAGE_EXTENSIONS", "POOL", "SYNTHETIC", "VOC_CLASSES", "ChannelMismatchError",
    "CityscapesSegmentation", "ClassSetMismatchError", "ConcatFolders", "DataOptions", "DatasetError",
    "DatasetSplit", "EmptyDatasetError", "FolderLayout", "MaskMappingError", "MaskValueError",
    "MissingFolderError", "MissingImageError", "MissingMaskError", "PairedAugment", "PairedFiles",
    "SegmentationFolder", "SyntheticPortraits", "SyntheticScenes", "UnknownSourceError",
    "UnreadableImageError", "VOCSegmentation", "class_set", "default_people_dir", "denormalize",
    "find_layout", "folder_pairs", "load_image", "match_by_stem", "normalize", "open_dataset",
    "open_datasets", "parse_class_names", "parse_mask_mapping", "people_dataset", "split_indices",
    "synthetic_video",
]

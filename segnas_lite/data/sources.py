"""``open_dataset``: the one entry point for every data source, and the random train/val cut.

* ``open_dataset(source, split=...)``: "synthetic" / "synthetic-scenes" (drawn on the fly) or a
  folder, recognised by its layout (``layouts.find_layout``);
* ``split_indices``: the deterministic shuffle-and-cut of a pool folder into train and val;
* ``DatasetSplit``: a ``Subset`` that keeps the class set of the dataset under it.

Two seeds: ``seed`` draws the synthetic training pictures and the augmentation of a folder's
items; ``split_seed`` draws which pool items are val (and the synthetic val pictures). Without
``split_seed`` both are ``seed`` (one seed for everything, as before ``split_seed`` existed), so a
run that changes only ``seed`` and keeps ``split_seed`` keeps its val set.
"""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, Subset

from segnas_lite.data.errors import UnknownSourceError
from segnas_lite.data.folders import PairedFiles, folder_pairs
from segnas_lite.data.layouts import POOL, DataOptions, find_layout
from segnas_lite.data.public import CityscapesSegmentation, VOCSegmentation
from segnas_lite.data.synthetic import SyntheticPortraits, SyntheticScenes
from segnas_lite.data.transforms import IGNORE_INDEX, PairedAugment

SYNTHETIC = ("synthetic", "synthetic-scenes")  # the generated sources: names, not folders

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


_VAL_SEED_OFFSET = 1_000_003  # synthetic val sets use split_seed + this, so they never repeat train images


def open_dataset(source, *, image_size: int, split: str, seed: int = 0, split_seed: int | None = None,
                 val_fraction: float = 0.2, augment: PairedAugment | None = None,
                 length: int | None = None, num_classes: int | None = None,
                 mask_mapping: dict[int, int] | None = None, ignore_index: int = IGNORE_INDEX,
                 unmapped: str = "error", class_names=None) -> Dataset:
    """One entry point for every data source; ``split`` is "train", "val", "test" or "all".

    * ``"synthetic"`` / ``"synthetic-scenes"``: SyntheticPortraits / SyntheticScenes with ``length``
      items (default 1000 train, 200 val); train uses ``seed``, val ``split_seed`` + 1_000_003.
      Only "train" and "val".
    * a folder, recognised by its layout (``layouts.find_layout``: Pascal VOC, Cityscapes, split
      folders ``train/ + trainannot/ ...`` or ``images/<split>/ + masks/<split>/``, people,
      ``images/ + masks/``). A folder with its own splits is read as it is (without a val folder,
      its train folder is cut like a pool); a pool is cut with ``split_indices(n, val_fraction=...,
      seed=split_seed)``; "all" is every pair.

    ``seed`` also seeds the augmentation (train split); ``split_seed`` defaults to ``seed``.

    The class set (``layouts.DataOptions``): ``num_classes``, ``ignore_index`` (the raw "no label"
    value), ``mask_mapping`` (raw value -> class), ``unmapped`` ("error" or "ignore") and
    ``class_names``; unset ones take the layout's own (people: 0/255 -> 2 classes). Note for
    images/ + masks/ folders: without ``mask_mapping`` the value 255 is ignore (the VOC convention),
    so 0/255 binary masks need ``mask_mapping={0: 0, 255: 1}``.

    ``augment`` is used for the train split only; ``length`` also caps folder datasets.
    """
    valid = ("train", "val", "test", "trainval", POOL)
    if split not in valid:
        raise ValueError(f"split must be one of {', '.join(valid)}, got {split!r}")
    train = split == "train"
    augment = augment if train else None
    split_seed = seed if split_seed is None else split_seed
    if source in SYNTHETIC:
        if split not in ("train", "val"):
            raise UnknownSourceError(f"synthetic data has a train and a val split, not {split!r}")
        cls = SyntheticPortraits if source == "synthetic" else SyntheticScenes
        n = length if length is not None else (1000 if train else 200)
        return cls(length=n, image_size=image_size,
                   seed=seed if train else split_seed + _VAL_SEED_OFFSET, augment=augment)
    layout = find_layout(source)
    options = DataOptions(num_classes=num_classes, ignore_index=ignore_index,
                          mask_mapping=mask_mapping, unmapped=unmapped, class_names=class_names,
                          split_seed=split_seed).resolved(layout)
    if split not in layout.splits:
        raise UnknownSourceError(
            f"{layout.root} has no {split!r} split: it is a {layout.describe()}; use one of "
            f"{', '.join(layout.splits)}")
    if layout.kind == "voc":
        dataset = VOCSegmentation(layout.root, split="trainval" if split == POOL else split,
                                  image_size=image_size, augment=augment, seed=seed)
        return _cap(dataset, length)
    if layout.kind == "cityscapes":
        dataset = CityscapesSegmentation(layout.root, split=split, image_size=image_size,
                                         augment=augment, seed=seed)
        return _cap(dataset, length)
    kwargs = dict(image_size=image_size, augment=augment, seed=seed, **options.dataset_kwargs())
    if layout.own_splits and not (layout.cuts_val and split in ("train", "val")):
        names = layout.split_dirs if split == POOL else [split]
        pairs = [pair for name in names for pair in folder_pairs(*layout.split_dirs[name])]
        return _cap(PairedFiles(pairs, **kwargs), length)
    # a pool (or an own-split folder without val): cut at random into train and val
    pool = layout.split_dirs.get(POOL) or layout.split_dirs["train"]
    full = PairedFiles(folder_pairs(*pool), **kwargs)
    if split == POOL:
        return _cap(full, length)
    train_idx, val_idx = split_indices(len(full), val_fraction=val_fraction, seed=options.split_seed)
    indices = train_idx if train else val_idx
    return DatasetSplit(full, indices[:length] if length is not None else indices)


def _cap(dataset: Dataset, length: int | None) -> Dataset:
    if length is None or length >= len(dataset):
        return dataset
    return DatasetSplit(dataset, list(range(length)))

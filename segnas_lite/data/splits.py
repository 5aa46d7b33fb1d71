"""The datasets of a run: its train and validation splits, and the data facts saved with it.

``training_splits`` is what ``segnas train`` (and any script that trains like it) reads: the
augmented train split, the validation split and the ``data_info`` a checkpoint carries, so that
``evaluate`` and ``predict`` need no repeated flags (``evaluation_split`` reads it back).

A folder with its own splits gives its train and val folders; a pool is cut at random
(``open_dataset``). With a separate validation source the training folder is read whole (or its
own train split) and the validation source gives its val split, else all of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch.utils.data import Dataset

from segnas_lite.data import SYNTHETIC, PairedAugment, find_layout, open_dataset
from segnas_lite.data.concat import ConcatFolders, open_datasets
from segnas_lite.data.errors import ClassSetMismatchError, MaskMappingError

Sources = str | Sequence[str]  # one data source, or several read as one (``concat.py``)


def as_list(data: Sources) -> list[str]:
    """``data`` as a list of sources (one source is a list of one)."""
    return [data] if isinstance(data, (str, Path)) else [str(s) for s in data]


def is_synthetic(source: str | None) -> bool:
    return source in SYNTHETIC


def refuse_class_set_for_synthetic(data: Sources, given: Sequence[str]) -> None:
    """Synthetic data has its own classes: class-set settings (``given``, named as the caller
    spells them, e.g. ``--num-classes``) would be silently ignored there, so refuse them."""
    synthetic = [source for source in as_list(data) if is_synthetic(source)]
    if given and synthetic:
        raise MaskMappingError(f"{synthetic[0]} data has its own classes: {', '.join(given)} "
                               "applies to a dataset folder (--data PATH)")


def own_splits(layout) -> tuple[str, ...]:
    """The splits a folder layout has on disk (none for a pool)."""
    return tuple(layout.split_dirs) if layout.own_splits else ()


def val_split_of(source: str) -> str:
    """The split a validation folder is read with: its own ``val``, else ``all`` of it."""
    return "val" if "val" in own_splits(find_layout(source)) else "all"


def source_text(source: Sources | None) -> str | list[str] | None:
    """A data source as saved with a run: names as they are, folders as absolute paths (a list
    for several sources)."""
    if source is None or is_synthetic(source):
        return source
    if not isinstance(source, (str, Path)):
        return [source_text(s) for s in source]
    return str(Path(source).resolve())


def dataset_meta(dataset: Dataset) -> tuple[int, tuple[str, ...] | None]:
    """(num_classes, class_names) of a dataset or of the dataset under a ``Subset``."""
    base = getattr(dataset, "dataset", dataset)
    return base.num_classes, getattr(base, "class_names", None)


def scan_before_training(*datasets: Dataset, quiet: bool) -> None:
    """Every mask of the datasets against the class set, before the first step (``data.check``)."""
    from segnas_lite.data.check import scan_masks
    for dataset in datasets:
        scan_masks(dataset, quiet=quiet)


def training_splits(data: Sources, *, image_size: int, seed: int, class_set: dict | None = None,
                    val_data: str | None = None, train_size: int | None = None,
                    augment: PairedAugment | None = None,
                    split_seed: int | None = None) -> tuple[Dataset, Dataset, dict]:
    """(augmented train split, validation split, the ``data_info`` a run saves).

    ``data`` and ``val_data``: ``open_dataset`` sources; ``class_set``: its class-set keywords
    (``num_classes``, ``ignore_index``, ``mask_mapping``, ``unmapped``, ``class_names``), the ones
    given; ``augment`` defaults to ``PairedAugment()``. ``train_size`` is the number of synthetic
    training images or a cap on a folder's train split; validation then gets max(16, N / 8)
    images (synthetic without ``train_size``: 32; a folder: its whole val split).

    Several sources (``data`` a list) are read as one (``concat.open_datasets``): each keeps its
    own split, or its own random cut drawn with ``split_seed`` (default: ``seed``), so that a run
    can change its training seed without changing its validation images.
    """
    options = dict(class_set or {})
    sources = as_list(data)
    common = dict(image_size=image_size, seed=seed, split_seed=split_seed, **options)
    augment = augment or PairedAugment()
    if val_data:  # the training folders whole (or their own train split), val from val_data
        parts = [open_dataset(s, split="train" if is_synthetic(s) or "train" in own_splits(
            find_layout(s)) else "all", augment=augment, length=train_size, **common)
            for s in sources]
        train_set = parts[0] if len(parts) == 1 else ConcatFolders(parts, names=sources)
        val_sources, val_split = [val_data], val_split_of(val_data)
    else:
        train_set = open_datasets(sources, split="train", augment=augment, length=train_size,
                                  **common)
        val_sources, val_split = sources, "val"
    val_length = (max(16, (train_size or 256) // 8)
                  if train_size or any(is_synthetic(s) for s in val_sources)
                  else None)  # a folder's whole val split, unless train_size caps the run
    val_source = val_sources[0] if len(val_sources) == 1 else val_sources
    val_set = open_datasets(val_sources, split=val_split, length=val_length, **common)
    num_classes, class_names = dataset_meta(train_set)
    val_classes, _ = dataset_meta(val_set)
    if val_classes != num_classes:
        raise ClassSetMismatchError(f"{data} has {num_classes} classes but the validation data "
                                    f"{val_source} has {val_classes}: give --num-classes for both")
    info = {"data": source_text(sources[0] if len(sources) == 1 else sources),
            "val_data": source_text(val_data), "split_seed": split_seed,
            "image_size": image_size, "num_classes": num_classes,
            "class_names": list(class_names) if class_names else None,
            **{k: v for k, v in options.items() if k not in ("num_classes", "class_names")}}
    if info.get("mask_mapping") is not None:
        info["mask_mapping"] = {str(k): v for k, v in info["mask_mapping"].items()}
    return train_set, val_set, info


def evaluation_split(saved: dict, *, data: Sources | None, split: str) -> tuple[Sources, str]:
    """(source, split) to evaluate a run on: ``data`` if given, else the run's own (``saved``, its
    ``data_info``); the val split of a run trained with a separate validation source is that one."""
    if split == "val" and not data and saved.get("val_data"):
        return saved["val_data"], val_split_of(saved["val_data"])
    return data or saved.get("data") or "synthetic", split

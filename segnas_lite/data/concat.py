"""Several data sources read as one: ``open_datasets`` and the dataset it builds, ``ConcatFolders``.

Each source is opened with ``open_dataset`` and keeps its own split: a folder with its own splits
gives its own train (or val, test) folder, a pool its own random cut (``split_seed``); the parts are
then put end to end, never re-cut. Their class sets must agree (``class_set``), else
``ClassSetMismatchError`` names both sources and what differs. The result carries ``num_classes``,
``class_names`` and ``palette`` like a single folder dataset, so ``train``, ``evaluate`` and
``check.scan_masks`` take it as they take one folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from torch.utils.data import ConcatDataset, Dataset, Subset

from segnas_lite.data.errors import ClassSetMismatchError, DatasetError, UnknownSourceError
from segnas_lite.data.sources import SYNTHETIC, open_dataset
from segnas_lite.data.transforms import IGNORE_INDEX


def _base(dataset: Dataset) -> Dataset:
    """The dataset under any ``Subset`` wrappers (it holds the class set)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def class_set(dataset: Dataset) -> dict:
    """What the masks of a dataset mean, the part that must agree before datasets are read as one:
    the number of classes, their names, the raw "no label" value, and the classes the mask mapping
    gives (its result: the raw values themselves may differ, e.g. 0/255 people masks and 0/1 ones)."""
    dataset = _base(dataset)
    num_classes = dataset.num_classes
    names = getattr(dataset, "class_names", None)
    mapping = getattr(dataset, "mask_mapping", None)
    mapped = (tuple(range(num_classes)) if mapping is None
              else tuple(sorted({v for v in mapping.values() if v != IGNORE_INDEX})))
    return {"number of classes": num_classes,
            "class names": tuple(names) if names else None,
            "ignore value": getattr(dataset, "ignore_index", IGNORE_INDEX),
            "classes the mask mapping gives": mapped}


def class_set_mismatch(first_name: str, first: dict, name: str, other: dict) -> str | None:
    """What to tell a user whose two sources have different ``class_set``s, or None if they agree."""
    differ = [f"{key}: {first[key]} vs {other[key]}" for key in first if first[key] != other[key]]
    if not differ:
        return None
    return (f"{first_name} and {name} cannot be read as one: their class sets differ "
            f"({'; '.join(differ)}). Give both the same class set (--num-classes, --class-names, "
            "--mask-mapping, --ignore-index) or train on them separately")


class ConcatFolders(ConcatDataset):
    """Datasets read one after the other (``torch.utils.data.ConcatDataset``), with one class set.

    ``names`` (one per dataset, e.g. the folder paths) are used in error messages. Raises
    ``ClassSetMismatchError`` when a dataset's ``class_set`` differs from the first one's.
    ``set_epoch`` reaches every part (fresh augmentation each epoch, as for one folder).
    """

    def __init__(self, datasets: Sequence[Dataset], *, names: Sequence[str] | None = None):
        datasets = list(datasets)
        if not datasets:
            raise UnknownSourceError("no dataset to read: give at least one")
        names = [str(name) for name in names] if names is not None else [
            f"dataset {i}" for i in range(len(datasets))]
        if len(names) != len(datasets):
            raise ValueError(f"{len(names)} names for {len(datasets)} datasets")
        first = class_set(datasets[0])
        for name, dataset in zip(names[1:], datasets[1:]):
            problem = class_set_mismatch(names[0], first, name, class_set(dataset))
            if problem:
                raise ClassSetMismatchError(problem)
        super().__init__(datasets)
        self.names = tuple(names)
        self.num_classes: int = first["number of classes"]
        self.class_names: tuple[str, ...] | None = first["class names"]
        self.palette: np.ndarray = _base(datasets[0]).palette

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)


def open_datasets(sources: Sequence[str | Path], *, split: str, image_size: int, **options) -> Dataset:
    """``open_dataset`` for each source, read as one (``ConcatFolders``); one source gives exactly
    what ``open_dataset`` gives.

    ``options`` are ``open_dataset``'s keywords, the same for every source: ``seed``, ``split_seed``
    (each pool folder is cut with it, on its own), ``val_fraction``, ``augment``, ``length`` (a cap
    on EACH source: two sources give up to 2 x length items) and the class set (``num_classes``,
    ``ignore_index``, ``mask_mapping``, ``unmapped``, ``class_names``; unset ones take each folder's
    own layout defaults). A source given twice raises ``DatasetError``.
    """
    sources = list(sources)
    if not sources:
        raise UnknownSourceError("no data source given: name 'synthetic' or a dataset folder")
    keys = [source if source in SYNTHETIC else str(Path(source).resolve()) for source in sources]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise DatasetError(f"data source {repeated[0]} is given twice: each source is read once")
    datasets = [open_dataset(source, split=split, image_size=image_size, **options) for source in sources]
    if len(datasets) == 1:
        return datasets[0]
    return ConcatFolders(datasets, names=[str(source) for source in sources])

"""Soft masks saved as files, used as a teacher: distillation from a model we cannot import.

A teacher need not be a PyTorch model. Any segmenter that writes, per training photo, its
probability of the foreground class as an 8-bit grey PNG (0: surely background, 255: surely the
class) can teach a two-class student: ``SoftTargets`` reads that file beside each photo, moves it
with the photo's augmentation (the same zoom, flip and crop, bilinear: ``PairedAugment(soft=)``)
and ``train`` distils it as it distils a teacher model's output (``train/distill.py``, Hinton et al.
2015; ``distill.logits_from_probability`` turns p into the logits log(1 - p), log p).

Where the files are: for a photo ``<source>/<relative path>.jpg`` of the data folder ``source``,
``<soft_dir>/<source's folder name>/<relative path>.png``, at any size (resized bilinearly to the
photo). ``benchmarks/peers.py --write-soft-masks DIR`` writes MediaPipe Selfie Segmentation's that
way, for the train split of every ``--data`` folder. Every file is looked for when the dataset is
built: a missing one raises ``SoftTargetError`` there, not in the middle of a training run.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from segnas_lite.data.errors import DatasetError
from segnas_lite.data.folders import PairedFiles
from segnas_lite.data.transforms import AUGMENT_STREAM, item_rng, normalize


class SoftTargetError(DatasetError):
    """Soft masks that cannot be used: missing files, a source given twice by name, or a dataset
    that is not read from photo files (synthetic data has no saved soft masks)."""


def soft_mask_path(soft_dir: str | Path, source: str | Path, image: str | Path) -> Path:
    """Where the soft mask of ``image`` (a photo inside the data folder ``source``) lies."""
    source, image = Path(source).resolve(), Path(image).resolve()
    try:
        relative = image.relative_to(source)
    except ValueError:
        raise SoftTargetError(f"{image} is not inside the data folder {source}") from None
    return Path(soft_dir) / source.name / relative.with_suffix(".png")


def locate(dataset: Dataset, index: int) -> tuple[PairedFiles, int]:
    """The photo-file dataset under ``Subset`` and ``ConcatDataset`` wrappers that holds item
    ``index``, and the item's index there."""
    if isinstance(dataset, Subset):
        return locate(dataset.dataset, int(dataset.indices[index]))
    if isinstance(dataset, ConcatDataset):
        part = bisect.bisect_right(dataset.cumulative_sizes, index)
        start = dataset.cumulative_sizes[part - 1] if part else 0
        return locate(dataset.datasets[part], index - start)
    if isinstance(dataset, PairedFiles):
        return dataset, index
    raise SoftTargetError(f"soft masks need photos read from files, not a "
                          f"{type(dataset).__name__}: use a data folder (--data DIR)")


def read_soft(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An 8-bit grey soft mask as an (H, W) uint8 array of ``size`` (bilinear when resized); a
    colour file is read as grey. An unreadable file raises ``SoftTargetError`` naming it."""
    try:
        with Image.open(path) as picture:
            grey = picture.convert("L")
    except (OSError, ValueError) as exc:
        raise SoftTargetError(f"cannot read the soft mask {path} ({exc}); write it again") from None
    if grey.size != (size[1], size[0]):
        grey = grey.resize((size[1], size[0]), Image.BILINEAR)
    return np.array(grey, dtype=np.uint8)


class SoftTargets(Dataset):
    """``dataset``'s items with the saved soft mask of each: (image, mask, p) where ``p`` is a
    float32 (H, W) tensor in [0, 1], augmented with the image (see the module docstring).

    ``sources``: the data folders ``dataset`` was read from (``open_datasets``'s list), which
    name the sub-folders of ``soft_dir``. Two classes only: the file gives p(class 1).
    """

    def __init__(self, dataset: Dataset, soft_dir: str | Path, *, sources: Sequence[str | Path]):
        self.dataset, self.soft_dir = dataset, Path(soft_dir)
        roots = [Path(s).resolve() for s in sources]
        names = [root.name for root in roots]
        if len(set(names)) != len(names):
            raise SoftTargetError(f"two data folders share a name ({', '.join(names)}): their "
                                  f"soft masks under {soft_dir} would collide; rename one")
        self.num_classes = getattr(dataset, "num_classes", 2)
        if self.num_classes != 2:
            raise SoftTargetError(f"soft masks give p(class 1) of a two-class set; this one has "
                                  f"{self.num_classes} classes")
        self.class_names = getattr(dataset, "class_names", None)
        self.palette = getattr(dataset, "palette", None)
        self.items = [locate(dataset, index) for index in range(len(dataset))]  # (base, inner)
        self.paths = [self._path(base.pairs[inner][0], roots) for base, inner in self.items]
        missing = [path for path in self.paths if not path.is_file()]
        if missing:
            raise SoftTargetError(
                f"{len(missing)} of {len(self.paths)} soft masks are missing under {soft_dir} "
                f"(first: {missing[0]}); write them for the same folders and split (e.g. "
                "benchmarks/peers.py --write-soft-masks DIR --data ...) or drop --soft-teacher")

    def _path(self, image: Path, roots: list[Path]) -> Path:
        image = image.resolve()
        for root in roots:
            if root in image.parents:
                return soft_mask_path(self.soft_dir, root, image)
        raise SoftTargetError(f"{image} lies in none of the data folders given "
                              f"({', '.join(str(r) for r in roots)})")

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        base, inner = self.items[index]
        image, mask = base.load(inner)
        soft = read_soft(self.paths[index], mask.shape)
        if base.augment is not None:  # the draw PairedFiles.__getitem__ makes for this item
            rng = item_rng(base.seed, inner, AUGMENT_STREAM, base.epoch)
            image, mask, soft = base.augment(image, mask, rng, soft=soft)
        return (normalize(image), torch.from_numpy(np.ascontiguousarray(mask)),
                torch.from_numpy(soft.astype(np.float32) / 255.0))

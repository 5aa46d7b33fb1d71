"""The plumbing every synthetic dataset shares: length, seed, augmentation, and the rule
(seed, index) -> one ``numpy.random.Generator`` per sample (``transforms.item_rng``), so the same
(seed, index) always gives the same picture."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from segnas_lite.data.palette import palette
from segnas_lite.data.transforms import AUGMENT_STREAM, PairedAugment, item_rng, normalize


class SyntheticDataset(Dataset):
    """Shared plumbing: length, seed, augmentation and the (seed, index) -> generator rule.
    A subclass sets ``num_classes`` and ``class_names`` and draws one sample in ``render``."""

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
            image, mask = self.augment(image, mask, item_rng(self.seed, index, AUGMENT_STREAM, self.epoch))
        return normalize(image), torch.from_numpy(mask)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw sample ``index`` -> (image (S, S, 3) uint8, mask (S, S) uint8 class indices)."""
        raise NotImplementedError

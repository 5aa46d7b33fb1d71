"""Several folders read as one (data/concat.py) and the split seed (data/sources.py)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite.data import (ClassSetMismatchError, ConcatFolders, DataOptions, DatasetError,
                              MaskMappingError, MaskValueError, SyntheticPortraits, SyntheticScenes,
                              class_set, default_people_dir, open_dataset, open_datasets)
from segnas_lite.data.check import scan_masks
from segnas_lite.errors import SegnasError
from segnas_lite.train.engine import evaluate


def write_pool(root: Path, n: int, *, seed: int = 0, people: bool = False) -> Path:
    """``n`` 16x16 pairs: images/ + masks/ with 0/1 masks, or the people layout with 0/255 masks."""
    images, masks = ((root / "Training_Images", root / "Ground_Truth") if people
                     else (root / "images", root / "masks"))
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
        mask = np.zeros((16, 16), np.uint8)
        mask[4:12, 4:12] = 255 if people else 1
        Image.fromarray(mask).save(masks / f"{i}.png")
    return root


def write_split_folder(root: Path, counts: dict[str, int]) -> Path:
    """The split-annot layout (train/ + trainannot/, val/ + valannot/), 0/1 masks."""
    rng = np.random.default_rng(1)
    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / split / f"{split}_{i}.png")
            Image.fromarray((rng.random((16, 16)) < 0.5).astype(np.uint8)).save(
                root / f"{split}annot" / f"{split}_{i}.png")
    return root


def pairs_of(dataset) -> list[tuple[Path, Path]]:
    """The (image, mask) paths a one-folder dataset reads, in order (through a Subset)."""
    if hasattr(dataset, "indices"):
        return [dataset.dataset.pairs[i] for i in dataset.indices]
    return list(dataset.pairs)


@pytest.fixture
def two_folders(tmp_path):
    return write_pool(tmp_path / "pool", 10), write_split_folder(tmp_path / "split", {"train": 4, "val": 3})


# --------------------------------------------------------------------------------------------------
# Several folders as one
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["train", "val", "all"])
def test_concatenation_keeps_each_folders_own_split(two_folders, split):
    pool, split_folder = two_folders
    both = open_datasets([pool, split_folder], split=split, image_size=16, split_seed=3)
    alone = [open_dataset(source, split=split, image_size=16, split_seed=3)
             for source in (pool, split_folder)]
    assert isinstance(both, ConcatFolders)
    assert len(both) == len(alone[0]) + len(alone[1])
    assert [pairs_of(part) for part in both.datasets] == [pairs_of(part) for part in alone]
    expected = {"train": (8, 4), "val": (2, 3), "all": (10, 7)}[split]  # pool: 80/20 cut
    assert (len(alone[0]), len(alone[1])) == expected
    if split == "val":  # the split folder's val is its val/ folder, never a cut of train/
        assert all(image.parent.name == "val" for image, _ in pairs_of(both.datasets[1]))
    images = [both[i][0] for i in range(len(both))]  # items come from both folders, in order
    assert torch.equal(images[0], alone[0][0][0])
    assert torch.equal(images[len(alone[0])], alone[1][0][0])
    assert both.num_classes == 2 and both.class_names == ("class0", "class1")
    assert both.names == (str(pool), str(split_folder))


def test_one_source_is_open_dataset_itself(two_folders):
    pool, _ = two_folders
    one = open_datasets([pool], split="val", image_size=16, seed=4)
    assert not isinstance(one, ConcatFolders)
    assert pairs_of(one) == pairs_of(open_dataset(pool, split="val", image_size=16, seed=4))


def test_engine_and_mask_scan_take_a_concatenation(two_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    both = open_datasets(list(two_folders), split="train", image_size=16, length=3)
    assert len(both) == 6  # length caps each source
    assert scan_masks(both, quiet=True, cache=False) == 6
    model = torch.nn.Conv2d(3, both.num_classes, 1)
    metrics = evaluate(model, both, num_classes=both.num_classes, batch_size=4, quiet=True)
    assert 0.0 <= metrics.miou <= 1.0
    subset = torch.utils.data.Subset(both, [0, 4])  # one item from each folder
    assert scan_masks(subset, quiet=True, cache=False) == 2
    both.set_epoch(5)
    assert [part.dataset.epoch if hasattr(part, "dataset") else part.epoch
            for part in both.datasets] == [5, 5]


def test_a_bad_mask_in_the_second_folder_is_found(two_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    pool, split_folder = two_folders
    bad = split_folder / "trainannot" / "train_2.png"
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(bad)
    both = open_datasets([pool, split_folder], split="train", image_size=16)
    with pytest.raises(MaskValueError, match="train_2.png"):
        scan_masks(both, quiet=True, cache=False)


def test_class_set_mismatch_names_both_folders_and_what_differs(two_folders, tmp_path):
    pool, _ = two_folders
    people_like = write_pool(tmp_path / "people_like", 4, people=True)  # background/person names
    with pytest.raises(ClassSetMismatchError) as caught:
        open_datasets([pool, people_like], split="train", image_size=16)
    message = str(caught.value)
    assert str(pool) in message and str(people_like) in message and "class names" in message
    assert isinstance(caught.value, DatasetError) and isinstance(caught.value, SegnasError)
    with pytest.raises(ClassSetMismatchError, match="number of classes: 2 vs 4"):
        ConcatFolders([SyntheticPortraits(length=2, image_size=16), SyntheticScenes(length=2, image_size=16)],
                      names=["portraits", "scenes"])


def test_people_masks_and_synthetic_portraits_share_a_class_set(tmp_path):
    """0/255 masks mapped to 0/1 mean what synthetic 0/1 masks mean: the mapping's result counts."""
    people_like = write_pool(tmp_path / "people_like", 5, people=True)
    both = open_datasets(["synthetic", people_like], split="val", image_size=16, length=2)
    assert len(both) == 2 + 1 and both.class_names == ("background", "person")
    assert class_set(both.datasets[0]) == class_set(both.datasets[1])


def test_a_source_given_twice_or_none_is_refused(two_folders):
    pool, _ = two_folders
    with pytest.raises(DatasetError, match="twice"):
        open_datasets([pool, Path(str(pool) + "/")], split="train", image_size=16)
    with pytest.raises(DatasetError):
        open_datasets([], split="train", image_size=16)


# --------------------------------------------------------------------------------------------------
# The split seed
# --------------------------------------------------------------------------------------------------
def test_split_seed_is_independent_from_the_training_seed(two_folders):
    pool, _ = two_folders
    val = [open_dataset(pool, split="val", image_size=16, seed=seed, split_seed=11) for seed in (0, 1, 2)]
    assert pairs_of(val[0]) == pairs_of(val[1]) == pairs_of(val[2])
    train = [open_dataset(pool, split="train", image_size=16, seed=seed, split_seed=11) for seed in (0, 1)]
    assert pairs_of(train[0]) == pairs_of(train[1])
    assert train[0].dataset.seed == 0 and train[1].dataset.seed == 1  # augmentation follows seed
    synthetic = [open_dataset("synthetic", split="val", image_size=32, length=2, seed=seed, split_seed=5)
                 for seed in (0, 1)]
    assert torch.equal(synthetic[0][1][0], synthetic[1][1][0])


def test_same_split_seed_same_split_and_another_one_cuts_elsewhere(two_folders):
    pool, _ = two_folders
    cuts = {seed: pairs_of(open_dataset(pool, split="val", image_size=16, split_seed=seed))
            for seed in range(6)}
    assert pairs_of(open_dataset(pool, split="val", image_size=16, split_seed=3)) == cuts[3]
    assert len({tuple(cut) for cut in cuts.values()}) > 1


def test_without_split_seed_the_seed_cuts_as_before(two_folders):
    pool, _ = two_folders
    for seed in (0, 7):
        legacy = pairs_of(open_dataset(pool, split="val", image_size=16, seed=seed))
        assert legacy == pairs_of(open_dataset(pool, split="val", image_size=16, seed=seed,
                                               split_seed=seed))
    legacy = open_dataset("synthetic", split="val", image_size=32, length=1, seed=2)
    assert legacy.seed == 2 + 1_000_003  # the synthetic val seed of every earlier run


def test_split_seed_travels_with_data_options():
    options = DataOptions(num_classes=2, split_seed=np.int64(9))
    assert options.split_seed == 9 and type(options.split_seed) is int
    assert DataOptions.from_json(json.loads(json.dumps(options.to_json()))) == options
    assert "split_seed" not in options.dataset_kwargs()
    assert DataOptions.from_json({"num_classes": 2}).split_seed is None  # runs saved before it
    for bad in (-1, 1.5, "3"):
        with pytest.raises(MaskMappingError):
            DataOptions(split_seed=bad)


# --------------------------------------------------------------------------------------------------
# The shared people sets (skipped when ../shared is absent)
# --------------------------------------------------------------------------------------------------
@pytest.mark.people
def test_people_and_ccp_people_read_as_one():
    people = default_people_dir()
    ccp = people.parent / "ccp_people"
    if not (people / "Training_Images").is_dir() or not (ccp / "Training_Images").is_dir():
        pytest.skip(f"people sets not found at {people} and {ccp}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the people masks are smaller than their images
        both = {split: open_datasets([people, ccp], split=split, image_size=32, split_seed=0)
                for split in ("train", "val")}
    sizes = [(len(both["train"].datasets[i]), len(both["val"].datasets[i])) for i in (0, 1)]
    assert sizes == [(184, 46), (640, 160)]  # each folder's own 80/20 cut
    assert len(both["train"]) + len(both["val"]) == 230 + 800
    assert both["train"].num_classes == 2 and both["train"].class_names == ("background", "person")
    val_images = {image for part in both["val"].datasets for image, _ in pairs_of(part)}
    assert not val_images & {image for part in both["train"].datasets for image, _ in pairs_of(part)}
    for index in (0, len(both["val"]) - 1):  # one item from each folder
        image, mask = both["val"][index]
        assert image.shape == (3, 32, 32) and set(mask.unique().tolist()) <= {0, 1}

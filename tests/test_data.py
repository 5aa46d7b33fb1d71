"""Tests for segnas_lite.data: synthetic sets, folder readers, errors, augmentation, helpers."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite import data
from segnas_lite.data import (
    ChannelMismatchError, CityscapesSegmentation, DatasetError, EmptyDatasetError, MaskValueError,
    MissingFolderError, MissingMaskError, PairedAugment, SegmentationFolder, SyntheticPortraits,
    SyntheticScenes, UnknownSourceError, UnreadableImageError, VOCSegmentation, open_dataset,
    split_indices,
)
from segnas_lite.data.palette import palette


def people_dir() -> Path:
    env = os.environ.get("SEGNAS_PEOPLE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "people"


# --------------------------------------------------------------------------------------------------
# Fixtures: tiny folders written into tmp_path
# --------------------------------------------------------------------------------------------------
def save_rgb(path: Path, height: int, width: int, seed: int = 0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def save_mask(path: Path, mask: np.ndarray) -> None:
    Image.fromarray(np.asarray(mask).astype(np.uint8)).save(path)  # 8-bit grayscale PNG


def binary_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 255
    return mask


@pytest.fixture
def folder(tmp_path):
    """Three image/mask pairs, mixed extensions, two masks smaller than their images."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    save_rgb(images / "a.jpg", 40, 60)
    save_rgb(images / "b.PNG", 30, 30, seed=1)
    save_rgb(images / "c.bmp", 50, 20, seed=2)
    save_mask(masks / "a.png", binary_mask(20, 30))  # half size
    save_mask(masks / "b.png", binary_mask(30, 30))  # same size
    save_mask(masks / "c.png", binary_mask(25, 10))  # half size
    return tmp_path


# --------------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SyntheticPortraits, SyntheticScenes])
def test_synthetic_is_deterministic_per_seed_and_index(cls):
    first, again = cls(length=5, image_size=64, seed=1), cls(length=5, image_size=64, seed=1)
    image, mask = first[3]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert mask.shape == (64, 64) and mask.dtype == torch.int64
    image2, mask2 = again[3]
    assert torch.equal(image, image2) and torch.equal(mask, mask2)
    assert not torch.equal(image, first[4][0])  # another index
    assert not torch.equal(image, cls(length=5, image_size=64, seed=2)[3][0])  # another seed


def test_synthetic_is_infinite_and_len_is_length():
    dataset = SyntheticPortraits(length=7, image_size=32)
    assert len(dataset) == 7
    image, _ = dataset[10 ** 7]  # far beyond length: still valid
    assert image.shape == (3, 32, 32)
    with pytest.raises(IndexError):
        dataset[-1]
    assert dataset.num_classes == 2 and dataset.class_names == ("background", "person")


def test_portrait_masks_have_both_classes_and_reasonable_area():
    dataset = SyntheticPortraits(image_size=64, seed=5)
    fractions = np.array([dataset.render(i)[1].mean() for i in range(60)])
    assert set(np.unique(np.concatenate([dataset.render(i)[1].ravel() for i in range(3)]))) <= {0, 1}
    assert ((fractions > 0.01) & (fractions < 0.95)).mean() >= 0.9  # both classes on most samples
    assert 0.08 < fractions.mean() < 0.5


def test_portraits_are_not_colour_separable():
    """The best per-pixel colour rule (a colour-histogram Bayes classifier, 16 levels per channel),
    fit on some images and applied to others, must stay far from a perfect segmentation."""
    dataset = SyntheticPortraits(image_size=48, seed=11)

    def pixels(indices):
        pairs = [dataset.render(i) for i in indices]
        colours = np.concatenate([img.reshape(-1, 3).astype(np.int64) for img, _ in pairs])
        labels = np.concatenate([mask.ravel() for _, mask in pairs])
        return (colours[:, 0] // 16) * 256 + (colours[:, 1] // 16) * 16 + colours[:, 2] // 16, labels

    train_bins, train_labels = pixels(range(0, 100))
    test_bins, test_labels = pixels(range(100, 150))
    person = np.bincount(train_bins[train_labels == 1], minlength=4096) + 1.0
    background = np.bincount(train_bins[train_labels == 0], minlength=4096) + 1.0
    predicted = (person / person.sum() * train_labels.mean()
                 > background / background.sum() * (1 - train_labels.mean()))[test_bins]
    iou = ((predicted == 1) & (test_labels == 1)).sum() / ((predicted == 1) | (test_labels == 1)).sum()
    majority = max(test_labels.mean(), 1 - test_labels.mean())
    assert iou < 0.5
    assert (predicted == test_labels).mean() < majority + 0.05


def test_scenes_have_four_classes():
    dataset = SyntheticScenes(image_size=64, seed=0)
    assert dataset.num_classes == 4 and len(dataset.class_names) == 4
    assert dataset.palette.shape == (4, 3) and dataset.palette.dtype == np.uint8
    seen = np.zeros(4, bool)
    for i in range(20):
        mask = dataset[i][1].numpy()
        assert mask.min() >= 0 and mask.max() <= 3
        seen[np.unique(mask)] = True
    assert seen.all()


def test_synthetic_augment_keeps_sample_and_is_reproducible():
    plain = SyntheticPortraits(image_size=64, seed=0)
    augmented = SyntheticPortraits(image_size=64, seed=0, augment=PairedAugment(scale_prob=1.0))
    a1, m1 = augmented[2]
    a2, m2 = augmented[2]
    assert torch.equal(a1, a2) and torch.equal(m1, m2)
    assert not torch.equal(a1, plain[2][0])
    assert set(torch.unique(m1).tolist()) <= {0, 1, 255}


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def test_normalize_denormalize_round_trip():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = data.normalize(pixels)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert torch.allclose(tensor, data.normalize(pixels.astype(np.float32) / 255), atol=1e-5)
    back = data.denormalize(tensor)
    assert torch.allclose(back, torch.from_numpy(pixels / 255).permute(2, 0, 1).float(), atol=1e-5)
    assert data.denormalize(tensor[None]).shape == (1, 3, 5, 7)
    channel_means = data.normalize(np.full((2, 2, 3), 0.5, np.float32)).mean(dim=(1, 2))
    expected = (0.5 - torch.tensor(data.IMAGENET_MEAN)) / torch.tensor(data.IMAGENET_STD)
    assert torch.allclose(channel_means, expected)


def test_load_image(tmp_path):
    save_rgb(tmp_path / "x.jpg", 30, 50)
    assert data.load_image(tmp_path / "x.jpg").shape == (3, 30, 50)
    assert data.load_image(tmp_path / "x.jpg", image_size=16).shape == (3, 16, 16)


def test_default_people_dir_is_next_to_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("SEGNAS_PEOPLE_DIR", raising=False)
    repository = Path(__file__).resolve().parents[1]
    assert data.default_people_dir() == repository.parent / "shared" / "data" / "people"
    monkeypatch.setenv("SEGNAS_PEOPLE_DIR", str(tmp_path))
    assert data.default_people_dir() == tmp_path


def test_synthetic_video_is_one_function_and_normalised():
    from segnas_lite.deploy import parity  # its sample_images draws from the one synthetic_video
    assert parity.synthetic_video is data.synthetic_video
    (image, mask), = data.synthetic_video(1, image_size=(24, 32), seed=5)
    assert image.shape == (3, 24, 32) and mask.shape == (24, 32) and mask.dtype == torch.int64
    back = data.denormalize(image)
    assert torch.allclose(data.normalize(back.permute(1, 2, 0).numpy()), image, atol=1e-5)


def test_split_indices_deterministic_and_disjoint():
    train, val = split_indices(50, val_fraction=0.2, seed=3)
    assert (train, val) == split_indices(50, val_fraction=0.2, seed=3)
    assert len(val) == 10 and sorted(train + val) == list(range(50))
    assert split_indices(50, val_fraction=0.2, seed=4)[1] != val
    assert len(split_indices(3, val_fraction=0.01, seed=0)[1]) == 1  # at least one val item


# --------------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------------
def block_pair(size=64, classes=4, block=8, seed=0):
    """A mask made of constant blocks and an image whose colour encodes the class of each pixel."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (size // block, size // block))
    mask = np.kron(coarse, np.ones((block, block), np.int64))  # (size, size)
    colours = np.array([(250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 250, 10)], np.uint8)
    return colours[mask], mask, colours


def test_augment_is_reproducible():
    image, mask, _ = block_pair()
    augment = PairedAugment(scale_prob=1.0, cutout_prob=1.0, blur_prob=0.5)
    out1 = augment(image, mask, np.random.default_rng(7))
    out2 = augment(image, mask, np.random.default_rng(7))
    out3 = augment(image, mask, np.random.default_rng(8))
    assert np.array_equal(out1[0], out2[0]) and np.array_equal(out1[1], out2[1])
    assert not np.array_equal(out1[0], out3[0])
    assert out1[0].shape == image.shape and out1[0].dtype == np.uint8
    assert out1[1].shape == mask.shape and out1[1].dtype == np.int64


@pytest.mark.parametrize("seed", range(6))
def test_augment_geometry_keeps_image_and_mask_aligned(seed):
    image, mask, colours = block_pair(seed=seed)
    augment = PairedAugment(scale_prob=1.0, flip_prob=0.5, color_prob=0.0, blur_prob=0.0,
                            sharpen_prob=0.0, cutout_prob=0.0)
    out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
    # Compare away from label edges, where bilinear and nearest sampling legitimately differ.
    padded = np.pad(out_mask, 1, mode="edge")
    same = np.ones_like(out_mask, bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy:dy + out_mask.shape[0], dx:dx + out_mask.shape[1]] == out_mask
    inside = same & (out_mask != 255)
    assert inside.mean() > 0.3
    error = np.abs(out_image[inside].astype(int) - colours[out_mask[inside]].astype(int)).max()
    assert error <= 3
    # Padding (zoom-out): ignore label and the mean colour in the image.
    pad = same & (out_mask == 255)
    if pad.any():
        assert np.abs(out_image[pad].astype(int) - np.round(255 * np.array(data.IMAGENET_MEAN))).max() <= 1


def test_augment_flip_only_mirrors_both():
    image, mask, _ = block_pair()
    flip = PairedAugment(scale_prob=0.0, flip_prob=1.0, color_prob=0.0, blur_prob=0.0,
                         sharpen_prob=0.0, cutout_prob=0.0)
    out_image, out_mask = flip(image, mask, np.random.default_rng(0))
    assert np.array_equal(out_mask, mask[:, ::-1]) and np.array_equal(out_image, image[:, ::-1])


def test_augment_cutout_touches_image_only_and_float_in_float_out():
    image, mask, _ = block_pair()
    cutout = PairedAugment(scale_prob=0.0, flip_prob=0.0, color_prob=0.0, blur_prob=0.0,
                           sharpen_prob=0.0, cutout_prob=1.0)
    out_image, out_mask = cutout(image.astype(np.float32) / 255, mask, np.random.default_rng(0))
    assert out_image.dtype == np.float32 and 0.0 <= out_image.min() and out_image.max() <= 1.0
    assert np.array_equal(out_mask, mask)
    assert not np.allclose(out_image, image / 255, atol=0.01)


# --------------------------------------------------------------------------------------------------
# SegmentationFolder
# --------------------------------------------------------------------------------------------------
def test_folder_pairs_resizes_and_warns_once(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = SegmentationFolder(folder / "images", folder / "masks", mask_mapping={0: 0, 255: 1})
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "2 of 3" in messages[0] and "a.png" in messages[0]
    assert dataset.resized_masks == 2 and len(dataset) == 3
    image, mask = dataset[0]  # a.jpg, 40x60 with a 20x30 mask
    assert image.shape == (3, 40, 60) and mask.shape == (40, 60)
    assert set(torch.unique(mask).tolist()) == {0, 1}
    assert dataset[2][1].shape == (50, 20)


def test_folder_image_size_makes_batches_stack(folder):
    with pytest.warns(UserWarning):
        dataset = SegmentationFolder(folder / "images", folder / "masks", image_size=24,
                                     mask_mapping={0: 0, 255: 1})
    images, masks = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert images.shape == (3, 3, 24, 24) and masks.shape == (3, 24, 24)
    assert set(torch.unique(masks).tolist()) <= {0, 1}


def test_mask_values_outside_classes_raise_at_load(folder):
    save_mask(folder / "masks" / "a.png", binary_mask(40, 60) // 255 * 7)  # values {0, 7}
    with pytest.warns(UserWarning, match="differ in size"):
        dataset = SegmentationFolder(folder / "images", folder / "masks", num_classes=3)
    with pytest.raises(MaskValueError, match="a.png") as info:
        dataset[0]
    assert "[7]" in str(info.value) and "mask_mapping" in str(info.value)
    # Without a mapping, 255 is the ignore label (the VOC convention), not an error.
    assert set(torch.unique(dataset[1][1]).tolist()) == {0, 255}


def test_mask_mapping_unmapped_value_and_ignore(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    save_rgb(tmp_path / "i" / "x.png", 4, 4)
    save_mask(tmp_path / "m" / "x.png", np.array([[0, 128, 255, 7]] * 4))
    dataset = SegmentationFolder(tmp_path / "i", tmp_path / "m", mask_mapping={0: 0, 128: 1, 7: 1})
    assert dataset[0][1][0].tolist() == [0, 1, 255, 1]  # 255 == ignore_index stays ignore
    strict = SegmentationFolder(tmp_path / "i", tmp_path / "m", mask_mapping={0: 0, 128: 1})
    with pytest.raises(MaskValueError, match=r"\[7\]"):
        strict[0]


def test_missing_mask_error_names_image_and_folder(folder):
    save_rgb(folder / "images" / "lonely.jpeg", 10, 10)
    with pytest.raises(MissingMaskError) as info:
        SegmentationFolder(folder / "images", folder / "masks")
    assert "lonely.jpeg" in str(info.value) and str(folder / "masks") in str(info.value)


def test_unreadable_image_error(folder):
    (folder / "images" / "broken.jpg").write_bytes(b"this is not a jpeg")
    save_mask(folder / "masks" / "broken.png", binary_mask(10, 10))
    with pytest.raises(UnreadableImageError, match="broken.jpg") as info:
        SegmentationFolder(folder / "images", folder / "masks")
    assert "re-save" in str(info.value)


def test_a_missing_image_file_says_to_check_the_path(tmp_path):
    with pytest.raises(UnreadableImageError, match="no image file at .*nope.png: check the path"):
        data.load_image(tmp_path / "nope.png")


def test_an_empty_file_is_named_as_empty(tmp_path):
    (tmp_path / "half_copied.jpg").write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="half_copied.jpg: the file is empty"):
        data.load_image(tmp_path / "half_copied.jpg")


def test_truncated_image_fails_at_load_with_file_name(folder):
    content = (folder / "images" / "a.jpg").read_bytes()
    (folder / "images" / "a.jpg").write_bytes(content[: len(content) // 3])  # header still readable
    with pytest.warns(UserWarning):
        dataset = SegmentationFolder(folder / "images", folder / "masks", mask_mapping={0: 0, 255: 1})
    with pytest.raises(UnreadableImageError, match="a.jpg"):
        dataset[0]


def test_mask_mapping_target_must_be_a_class(folder):
    with pytest.raises(ValueError, match="outside"):
        SegmentationFolder(folder / "images", folder / "masks", mask_mapping={0: 0, 255: 5})


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("no images here")
    with pytest.raises(EmptyDatasetError):
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(MissingFolderError):
        SegmentationFolder(tmp_path / "nope", tmp_path / "masks")
    assert issubclass(EmptyDatasetError, DatasetError) and issubclass(MissingFolderError, DatasetError)


def test_channel_rules(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.new("L", (8, 6), 100).save(images / "gray.png")  # grayscale image -> 3 equal channels
    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(images / "rgba.png")  # alpha dropped
    for stem in ("gray", "rgba"):
        Image.new("RGB", (8, 6), (1, 1, 1)).save(masks / f"{stem}.png")  # identical channels: fine
    dataset = SegmentationFolder(images, masks)
    gray, mask = dataset[0]
    assert gray.shape == (3, 6, 8) and torch.allclose(data.denormalize(gray)[:, 0, 0],
                                                      torch.full((3,), 100 / 255), atol=1e-5)
    assert mask.unique().tolist() == [1]
    rgba = data.denormalize(dataset[1][0])[:, 0, 0] * 255
    assert torch.allclose(rgba, torch.tensor([10.0, 20.0, 30.0]), atol=1e-3)
    # A colour mask (channels differ) cannot be a class-index mask.
    Image.new("RGB", (8, 6), (1, 2, 3)).save(masks / "gray.png")
    with pytest.raises(ChannelMismatchError, match="gray.png"):
        SegmentationFolder(images, masks)[0]
    # 16-bit images have no 8-bit RGB meaning.
    Image.fromarray(np.full((6, 8), 4000, np.uint16)).save(images / "gray.png")
    Image.new("L", (8, 6), 1).save(masks / "gray.png")
    with pytest.raises(ChannelMismatchError):
        SegmentationFolder(images, masks)[0]


# --------------------------------------------------------------------------------------------------
# VOC and Cityscapes readers on tiny fake layouts
# --------------------------------------------------------------------------------------------------
def make_voc(root: Path) -> Path:
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    for i, stem in enumerate(("2007_000001", "2007_000002", "2007_000003")):
        save_rgb(base / "JPEGImages" / f"{stem}.jpg", 20, 24, seed=i)
        indices = np.zeros((20, 24), np.uint8)
        indices[5:15, 6:18] = 15  # person
        indices[5, 6:18] = 255  # border
        mask = Image.fromarray(indices, mode="P")
        mask.putpalette(palette(256).ravel().tolist())
        mask.save(base / "SegmentationClass" / f"{stem}.png")
    (base / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000003\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("2007_000002\n")
    return root


def test_voc_reader(tmp_path):
    root = make_voc(tmp_path)
    train = VOCSegmentation(root, split="train")
    assert len(train) == 2 and train.num_classes == 21 and train.class_names[15] == "person"
    image, mask = train[1]
    assert image.shape == (3, 20, 24) and set(torch.unique(mask).tolist()) == {0, 15, 255}
    assert len(VOCSegmentation(root / "VOCdevkit" / "VOC2012", split="val")) == 1
    assert len(open_dataset(root, image_size=16, split="val")) == 1
    with pytest.raises(MissingFolderError):
        VOCSegmentation(root, split="test")


def make_cityscapes(root: Path) -> Path:
    for split in ("train", "val"):
        for city in ("aachen", "bonn"):
            images = root / "leftImg8bit" / split / city
            labels = root / "gtFine" / split / city
            images.mkdir(parents=True)
            labels.mkdir(parents=True)
            stem = f"{city}_000000_000019"
            save_rgb(images / f"{stem}_leftImg8bit.png", 16, 32,  # a photo of its own each
                     seed=[split == "val", city == "bonn"])
            ids = np.array([[7, 26, 0, 24, 33, 4, 23, 9]] * 16, np.uint8).repeat(4, axis=1)  # (16, 32)
            Image.fromarray(ids).save(labels / f"{stem}_gtFine_labelIds.png")
    return root


def test_cityscapes_reader_maps_label_ids_to_train_ids(tmp_path):
    root = make_cityscapes(tmp_path)
    dataset = CityscapesSegmentation(root, split="train")
    assert len(dataset) == 2 and dataset.num_classes == 19 and dataset.palette.shape == (19, 3)
    mask = dataset[0][1]
    assert mask[0, ::4].tolist() == [0, 13, 255, 11, 18, 255, 10, 255]
    assert len(open_dataset(root, image_size=16, split="val")) == 2
    assert data.CITYSCAPES_TRAIN_IDS[26] == 13 and len(data.CITYSCAPES_TRAIN_IDS) == 19


def test_cityscapes_reader_skips_hidden_files(tmp_path):
    root = make_cityscapes(tmp_path)
    (root / "leftImg8bit" / "train" / "bonn" / "._bonn_000000_000019_leftImg8bit.png").write_bytes(
        b"\x00\x05\x16\x07")  # macOS metadata beside a copied photo
    assert len(CityscapesSegmentation(root, split="train")) == 2


# --------------------------------------------------------------------------------------------------
# open_dataset
# --------------------------------------------------------------------------------------------------
def test_open_dataset_synthetic():
    train = open_dataset("synthetic", image_size=32, split="train", length=5, augment=PairedAugment())
    val = open_dataset("synthetic", image_size=32, split="val", length=3, augment=PairedAugment())
    assert len(train) == 5 and len(val) == 3 and val.augment is None
    assert not torch.equal(train[0][0], val[0][0])
    scenes = open_dataset("synthetic-scenes", image_size=32, split="train", length=2)
    assert scenes.num_classes == 4


def test_open_dataset_folder_split(folder):
    with pytest.warns(UserWarning):
        train = open_dataset(folder, image_size=16, split="train", val_fraction=0.34,
                             mask_mapping={0: 0, 255: 1})
    with pytest.warns(UserWarning):
        val = open_dataset(folder, image_size=16, split="val", val_fraction=0.34,
                           mask_mapping={0: 0, 255: 1})
    assert len(train) == 2 and len(val) == 1
    assert set(train.indices).isdisjoint(val.indices)
    assert train.num_classes == 2 and train[0][0].shape == (3, 16, 16)


def test_open_dataset_unknown_sources(tmp_path):
    with pytest.raises(UnknownSourceError, match="synthetic"):
        open_dataset("imagenet-please", image_size=32, split="train")
    with pytest.raises(UnknownSourceError, match="Training_Images"):
        open_dataset(tmp_path, image_size=32, split="train")
    with pytest.raises(UnknownSourceError, match="a train and a val split"):
        open_dataset("synthetic", image_size=32, split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        open_dataset("synthetic", image_size=32, split="validation")


# --------------------------------------------------------------------------------------------------
# The real people set (skipped when it is not next to the repository)
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def people():
    root = people_dir()
    if not (root / "Training_Images").is_dir():
        pytest.skip(f"people set not found at {root} (set SEGNAS_PEOPLE_DIR)")
    return root


def test_people_set(people):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = data.people_dataset(people, image_size=128)
    assert len(dataset) == 230
    assert len(caught) == 1 and dataset.resized_masks > 0  # masks smaller than images, warned once
    for index in (0, 100):
        image, mask = dataset[index]
        assert image.shape == (3, 128, 128) and mask.shape == (128, 128)
        assert set(torch.unique(mask).tolist()) <= {0, 1} and mask.float().mean() > 0.01
    with pytest.warns(UserWarning, match="of 230 masks"):
        native = data.people_dataset(people, image_size=None)
    image, mask = native[0]
    assert image.shape[1:] == mask.shape  # the mask was resized to its image


def test_people_open_dataset_split(people):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = open_dataset(people, image_size=64, split="train", val_fraction=0.2, seed=0)
        val = open_dataset(people, image_size=64, split="val", val_fraction=0.2, seed=0)
    assert len(train) + len(val) == 230 and len(val) == 46
    assert set(train.indices).isdisjoint(val.indices)


def test_synthetic_augmentation_changes_with_epoch_but_pictures_do_not():
    from segnas_lite.data import PairedAugment, SyntheticPortraits
    plain = SyntheticPortraits(length=4, image_size=64, seed=3)
    data = SyntheticPortraits(length=4, image_size=64, seed=3, augment=PairedAugment())
    first = [data[i][0] for i in range(4)]
    data.set_epoch(1)
    second = [data[i][0] for i in range(4)]
    assert any(not torch.equal(a, b) for a, b in zip(first, second))
    data.set_epoch(0)
    assert all(torch.equal(a, data[i][0]) for i, a in enumerate(first))
    assert (plain.render(2)[0] == data.render(2)[0]).all()


def test_tiff_photos_and_masks_are_read(tmp_path):
    """Aerial and medical sets often ship TIFF files: 8-bit ones are read like any other."""
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    save_rgb(tmp_path / "i" / "a.tif", 16, 16)
    save_mask(tmp_path / "m" / "a.tiff", np.arange(256).reshape(16, 16) % 2)
    image, mask = SegmentationFolder(tmp_path / "i", tmp_path / "m")[0]
    assert image.shape == (3, 16, 16) and set(torch.unique(mask).tolist()) == {0, 1}

"""The orientation rule of ``data.io``: photos read upright by their EXIF tag, masks follow them."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from segnas_lite.data import SegmentationFolder
from segnas_lite.data.check import check_folder
from segnas_lite.data.io import ORIENTATION_TAG, read_mask, read_rgb, upright_size
from segnas_lite.portrait.composite import make_background


def save_photo(path, pixels: np.ndarray, orientation: int) -> None:
    """A photo stored as ``pixels`` (H, W, 3) with an EXIF orientation tag."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=95)


def stored_pixels(height=20, width=30) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_photos_are_read_as_pillows_exif_transpose_shows_them(tmp_path, orientation):
    path = tmp_path / "photo.jpg"
    save_photo(path, stored_pixels(), orientation)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    got = read_rgb(path)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    width, height = upright_size(path)
    assert (height, width) == got.shape[:2]
    assert got.shape[:2] == ((30, 20) if orientation >= 5 else (20, 30))


def test_a_broken_or_invalid_tag_reads_the_stored_pixels(tmp_path):
    path = tmp_path / "photo.jpg"
    save_photo(path, stored_pixels(), 42)  # not an orientation
    with Image.open(path) as image:
        stored = np.asarray(image.convert("RGB"))
    assert np.array_equal(read_rgb(path), stored)


def pair_folder(tmp_path, mask: np.ndarray, orientation: int = 6):
    """One photo stored 20 x 30 whose tag turns it 90 degrees clockwise, and ``mask``."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    save_photo(tmp_path / "images" / "p.jpg", stored_pixels(), orientation)
    Image.fromarray(mask).save(tmp_path / "masks" / "p.png")
    return tmp_path


def stored_mask(height=20, width=30) -> np.ndarray:
    """A person in the top-left corner of the stored pixels: no turn or flip maps it to itself."""
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 3] = 1
    return mask


def test_a_mask_drawn_on_the_stored_pixels_turns_with_its_photo(tmp_path):
    root = pair_folder(tmp_path, stored_mask())
    with pytest.warns(UserWarning, match="turned with it first"):
        dataset = SegmentationFolder(root / "images", root / "masks")
    image, mask = dataset[0]
    assert image.shape == (3, 30, 20)  # upright: 20 wide, 30 high
    expected = np.rot90(stored_mask(), -1)  # the photo's own turn (EXIF 6: 90 degrees clockwise)
    assert torch.equal(mask, torch.from_numpy(expected.astype(np.int64)))
    report = check_folder(root, num_classes=2, quiet=True)
    assert report.problems["mask turned"] and not report.problems.get("size mismatch")


def test_a_scaled_mask_of_the_stored_pixels_is_turned_then_resized(tmp_path):
    small = stored_mask()[::2, ::2]  # 10 x 15, the stored pixels' shape at half size
    root = pair_folder(tmp_path, small)
    with pytest.warns(UserWarning, match="1 of them match the stored pixels"):
        dataset = SegmentationFolder(root / "images", root / "masks")
    mask = dataset[0][1].numpy()
    assert mask.shape == (30, 20)
    assert np.array_equal(mask, np.kron(np.rot90(small, -1), np.ones((2, 2), np.uint8)))


def test_a_mask_drawn_on_the_upright_photo_is_kept(tmp_path):
    drawn = np.ascontiguousarray(np.rot90(stored_mask(), -1))  # 30 x 20, as a viewer shows it
    root = pair_folder(tmp_path, drawn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no size warning at all
        dataset = SegmentationFolder(root / "images", root / "masks")
    assert np.array_equal(dataset[0][1].numpy(), drawn)
    assert not check_folder(root, num_classes=2, quiet=True).warnings


def test_a_mask_with_a_tag_of_its_own_is_read_upright(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 8
    Image.fromarray(stored_mask()).save(tmp_path / "m.png", exif=exif)
    assert np.array_equal(read_mask(tmp_path / "m.png"), np.rot90(stored_mask(), 1))


def test_a_background_photo_is_used_upright(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, :15] = 255  # stored: white left half, black right half
    save_photo(tmp_path / "bg.jpg", pixels, 6)  # upright: white top half
    frame = np.zeros((30, 20, 3), np.uint8)
    background = make_background(str(tmp_path / "bg.jpg"), frame)
    assert background.shape == (30, 20, 3)
    assert background[:10].mean() > 200 and background[-10:].mean() < 50

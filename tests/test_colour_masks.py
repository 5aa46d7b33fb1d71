"""Colour masks (data.colour_masks, io.read_mask): VOC colours are read as indices, other colours
are a named error that says how to convert them, and `segnas data index-masks` converts them."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from segnas_lite.data import ChannelMismatchError, MaskMappingError, SegmentationFolder
from segnas_lite.data import colour_masks as C
from segnas_lite.data import io
from segnas_lite.data.palette import colour_code, colorize, hex_colour, palette, voc_indices

RED, GREEN = (255, 0, 0), (0, 255, 0)


def painted(tmp_path, colours=(RED, GREEN), count=3):
    """images/ + masks/ whose masks paint a box in colours[0] and a band in colours[1] on black."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(count):
        Image.new("RGB", (50, 40), (90 + 20 * i,) * 3).save(tmp_path / "images" / f"p{i}.jpg")
        mask = np.zeros((40, 50, 3), np.uint8)
        mask[10:30, 10:40], mask[:5] = colours
        Image.fromarray(mask).save(tmp_path / "masks" / f"p{i}.png")
    return tmp_path


def segnas(*args):
    return subprocess.run([sys.executable, "-m", "segnas_lite", *args], capture_output=True,
                          text=True, timeout=300)


def test_colour_codes_and_the_voc_palette_round_trip():
    assert colour_code(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == 0xFF0000
    assert hex_colour(0xFF0000) == "#ff0000"
    mask = np.array([[0, 1, 15], [255, 21, 0]])
    assert (voc_indices(colorize(mask)) == mask).all()  # our own colour masks read back
    assert len({tuple(c) for c in palette(256)}) == 256  # one colour per index: one reading
    assert voc_indices(np.array([[RED]], np.uint8)) is None


def test_a_voc_mask_saved_as_rgb_is_read_as_its_indices_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_VOC_WARNED", [])
    mask = np.zeros((6, 8), np.int64)
    mask[2:4, 2:6], mask[0] = 1, 255  # person box, "no label" border
    for name in ("a.png", "b.png"):
        Image.fromarray(colorize(mask)).save(tmp_path / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = io.read_mask(tmp_path / "a.png"), io.read_mask(tmp_path / "b.png")
    assert (first == mask).all() and (second == mask).all()
    assert len([w for w in caught if "Pascal VOC" in str(w.message)]) == 1


def test_other_colours_are_a_named_error_that_names_them_and_the_fix(tmp_path):
    root = painted(tmp_path)
    with pytest.raises(ChannelMismatchError) as error:
        SegmentationFolder(root / "images", root / "masks")[0]
    text = str(error.value)
    assert "p0.png" in text and "#ff0000" in text and "#00ff00" in text
    assert "segnas data index-masks" in text
    Image.open(root / "masks" / "p0.png").save(root / "masks" / "p0.jpg", quality=70)
    with pytest.raises(ChannelMismatchError, match="JPEG mask blurs"):
        io.read_mask(root / "masks" / "p0.jpg")


def test_parse_colour_mapping_accepts_hex_and_ignore_and_refuses_the_rest():
    assert C.parse_colour_mapping("#000000:0, #FF0000:1,#ffffff:ignore") == {
        0: 0, 0xFF0000: 1, 0xFFFFFF: 255}
    for bad in ("", "#ff00:1", "red:1", "#ff0000", "#ff0000:300", "#ff0000:1,#FF0000:2"):
        with pytest.raises(MaskMappingError):
            C.parse_colour_mapping(bad)


def test_index_masks_writes_index_pngs_and_never_half_a_folder_or_over_a_users_files(tmp_path):
    root = painted(tmp_path)
    out = tmp_path / "index"
    with pytest.raises(MaskMappingError, match="#00ff00.*nothing was written"):
        C.index_masks(root / "masks", out, {0: 0, 0xFF0000: 1}, quiet=True)
    assert not out.exists()
    written = C.index_masks(root / "masks", out, {0: 0, 0xFF0000: 1}, unlisted="ignore",
                            quiet=True)
    values = np.asarray(Image.open(written[0]))
    assert Image.open(written[0]).mode == "L" and values[20, 20] == 1 and values[0, 0] == 255
    assert values[35, 5] == 0
    with pytest.raises(MaskMappingError, match="already exist"):
        C.index_masks(root / "masks", out, {0: 0, 0xFF0000: 1, 0x00FF00: 2}, quiet=True)
    C.index_masks(root / "masks", out, {0: 0, 0xFF0000: 1, 0x00FF00: 2}, overwrite=True,
                  quiet=True)
    assert np.asarray(Image.open(written[0]))[0, 0] == 2
    with pytest.raises(MaskMappingError, match="another folder"):
        C.index_masks(root / "masks", root / "masks", {0: 0}, quiet=True)


def test_cli_lists_colours_then_converts_and_the_result_trains(tmp_path):
    root = painted(tmp_path)
    listed = segnas("data", "index-masks", str(root / "masks"), "--quiet")
    assert listed.returncode == 0, listed.stderr
    assert "#ff0000" in listed.stdout and "'#000000:0,#ff0000:1,#00ff00:2'" in listed.stdout
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "images").symlink_to(root / "images")
    done = segnas("data", "index-masks", str(root / "masks"), str(converted / "masks"),
                  "--colours", "#000000:0,#ff0000:1,#00ff00:1", "--quiet")
    assert done.returncode == 0 and "wrote 3 index masks" in done.stdout, done.stderr
    check = segnas("data", "check", str(converted), "--quiet")
    assert check.returncode == 0 and "no problems found" in check.stdout, check.stdout
    refused = segnas("data", "index-masks", str(root / "masks"), str(converted / "masks"),
                     "--colours", "#000000:0,#ff0000:1,#00ff00:1", "--quiet")
    assert refused.returncode != 0 and "already exist" in refused.stderr
    assert "Traceback" not in refused.stderr

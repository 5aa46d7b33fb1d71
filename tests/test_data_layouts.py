"""Split-folder layouts, the class set (ignore value, mapping, unmapped), the data doctor and the
mask scan before training, on small folders built here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite.data import (IGNORE_INDEX, DataOptions, MaskMappingError, MaskValueError,
                              UnknownSourceError, find_layout, open_dataset, parse_class_names,
                              parse_mask_mapping)
from segnas_lite.data.check import check_folder, scan_masks

VOID = 11  # SegNet's CamVid release: classes 0..10, 11 = void


def _write_pair(images, masks, stem, *, size=(20, 16), values=(0, 1, 2, VOID), seed=0):
    """An RGB image (random pixels, distinct per folder and stem: identical photos are a problem
    ``check_folder`` reports) and a mask holding ``values`` in horizontal bands."""
    rng = np.random.default_rng([seed, *str(Path(images).resolve()).encode(), *stem.encode()])
    w, h = size
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / f"{stem}.png")
    mask = np.zeros((h, w), dtype=np.uint8)
    for i, value in enumerate(values):
        mask[i * h // len(values):(i + 1) * h // len(values)] = value
    Image.fromarray(mask).save(masks / f"{stem}.png")


def split_folder(root, *, layout: str = "annot", counts=None, values=(0, 1, 2, VOID)):
    """train/ + trainannot/ ... (``annot``) or images/<split>/ + masks/<split>/ (``nested``)."""
    counts = counts or {"train": 6, "val": 3, "test": 2}
    for split, n in counts.items():
        if layout == "annot":
            images, masks = root / split, root / f"{split}annot"
        elif layout == "first":
            images, masks = root / split / "images", root / split / "labels"
        else:
            images, masks = root / "images" / split, root / "masks" / split
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for i in range(n):
            _write_pair(images, masks, f"{split}_{i}", values=values, seed=i)
    return root


CAMVID = dict(num_classes=3, ignore_index=VOID, class_names=("sky", "road", "car"))


@pytest.mark.parametrize("layout, kind", [("annot", "split-annot"), ("nested", "split-images"),
                                          ("first", "split-first")])
def test_split_layouts_keep_their_own_splits(tmp_path, layout, kind):
    root = split_folder(tmp_path, layout=layout)
    found = find_layout(root)
    assert found.kind == kind and found.own_splits and set(found.split_dirs) == {"train", "val", "test"}
    sizes = {split: len(open_dataset(root, image_size=32, split=split, **CAMVID))
             for split in ("train", "val", "test", "all")}
    assert sizes == {"train": 6, "val": 3, "test": 2, "all": 11}
    val = open_dataset(root, image_size=32, split="val", **CAMVID)
    assert [p[0].name for p in val.pairs] == ["val_0.png", "val_1.png", "val_2.png"]
    assert all(mask.parent != image.parent for image, mask in val.pairs)
    assert val.class_names == ("sky", "road", "car") and val.num_classes == 3


@pytest.mark.parametrize("layout", ["nested", "first"])
def test_ade20k_split_names_are_the_same_splits(tmp_path, layout):
    """training/ and validation/ (ADE20K), valid/ and testing/ name the train, val and test splits."""
    names = {"train": "training", "val": "validation", "test": "testing"}
    for split, n in {"train": 4, "val": 2, "test": 1}.items():
        folder = names[split]
        images, masks = ((tmp_path / "images" / folder, tmp_path / "annotations" / folder)
                         if layout == "nested" else
                         (tmp_path / folder / "images", tmp_path / folder / "annotations"))
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for i in range(n):
            _write_pair(images, masks, f"{split}_{i}", seed=i)
    found = find_layout(tmp_path)
    assert found.own_splits and set(found.split_dirs) == {"train", "val", "test"}
    sizes = {split: len(open_dataset(tmp_path, image_size=32, split=split, **CAMVID))
             for split in ("train", "val", "test")}
    assert sizes == {"train": 4, "val": 2, "test": 1}


def test_unknown_split_folder_names_are_a_named_error(tmp_path):
    (tmp_path / "images" / "fold1").mkdir(parents=True)
    (tmp_path / "masks" / "fold1").mkdir(parents=True)
    with pytest.raises(UnknownSourceError, match="holds folders \\(fold1\\) but no images"):
        find_layout(tmp_path)


def test_own_split_folder_without_val_is_cut_like_a_pool(tmp_path):
    root = split_folder(tmp_path, counts={"train": 10})
    train = open_dataset(root, image_size=32, split="train", **CAMVID)
    val = open_dataset(root, image_size=32, split="val", **CAMVID)
    assert len(train) + len(val) == 10 and len(val) == 2
    with pytest.raises(UnknownSourceError, match="no 'test' split"):
        open_dataset(root, image_size=32, split="test", **CAMVID)


@pytest.mark.parametrize("masks", ["masks", "labels", "annotations"])
def test_pool_has_no_test_split_and_all_is_everything(tmp_path, masks):
    (tmp_path / "images").mkdir()
    (tmp_path / masks).mkdir()
    for i in range(5):
        _write_pair(tmp_path / "images", tmp_path / masks, f"p{i}", values=(0, 1))
    assert find_layout(tmp_path).kind == "images-masks"
    assert len(open_dataset(tmp_path, image_size=32, split="all")) == 5
    with pytest.raises(UnknownSourceError, match="train, val, all"):
        open_dataset(tmp_path, image_size=32, split="test")


def test_ignore_value_becomes_ignore_index_and_classes_stay(tmp_path):
    root = split_folder(tmp_path)
    _, mask = open_dataset(root, image_size=None, split="train", **CAMVID)[0]
    assert set(torch.unique(mask).tolist()) == {0, 1, 2, IGNORE_INDEX}
    assert (mask[-4:] == IGNORE_INDEX).all()  # the last band held the raw void value 11


def test_values_outside_the_class_set_error_or_are_ignored_on_request(tmp_path):
    root = split_folder(tmp_path, values=(0, 1, 7))
    with pytest.raises(MaskValueError, match=r"\[7\].*allowed: 0..2"):
        open_dataset(root, image_size=None, split="train", **CAMVID)[0]
    dataset = open_dataset(root, image_size=None, split="train", unmapped="ignore",
                           **{**CAMVID, "ignore_index": 255})
    assert set(torch.unique(dataset[0][1]).tolist()) == {0, 1, IGNORE_INDEX}


def test_mask_mapping_with_an_ignore_target(tmp_path):
    root = split_folder(tmp_path, values=(0, 128, 200))
    mapping = parse_mask_mapping("0:0, 128:1, 200:ignore")
    assert mapping == {0: 0, 128: 1, 200: IGNORE_INDEX}
    dataset = open_dataset(root, image_size=None, split="val", mask_mapping=mapping)
    assert dataset.num_classes == 2  # the classes the mapping names
    assert set(torch.unique(dataset[0][1]).tolist()) == {0, 1, IGNORE_INDEX}


@pytest.mark.parametrize("text", ["0-1", "a:1", "1:", "0:0,0:1", "", "-1:0"])
def test_bad_mask_mappings_are_named(text):
    with pytest.raises(MaskMappingError):
        parse_mask_mapping(text)


def test_class_set_consistency_is_checked():
    with pytest.raises(MaskMappingError, match="one name per class"):
        DataOptions(num_classes=3, class_names=("a", "b"))
    with pytest.raises(MaskMappingError, match="1..255"):
        DataOptions(num_classes=0)
    with pytest.raises(MaskMappingError, match="repeat"):
        parse_class_names("a,b,a")
    with pytest.raises(MaskMappingError, match="outside 0..1"):
        from segnas_lite.data import PairedFiles
        PairedFiles([("a.png", "b.png")], mask_mapping={0: 0, 9: 4}, check_sizes=False)


def test_data_options_round_trip_through_json():
    options = DataOptions(num_classes=3, ignore_index=11, mask_mapping={0: 0, 5: 2},
                          class_names=("a", "b", "c"), unmapped="ignore")
    import json
    assert DataOptions.from_json(json.loads(json.dumps(options.to_json()))) == options


# --------------------------------------------------------------------------- the doctor
def broken_folder(root):
    """An images/ + masks/ folder with one problem of every kind, and 3 good pairs."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(3):
        _write_pair(images, masks, f"good{i}", values=(0, 0, 0, 1))
    _write_pair(images, masks, "badvalues", values=(0, 1, 9))
    _write_pair(images, masks, "garbage", values=(0, 1))
    (images / "garbage.png").write_bytes(b"not an image at all")
    _write_pair(images, masks, "lonely", values=(0, 1))
    (masks / "lonely.png").unlink()
    _write_pair(images, masks, "orphan", values=(0, 1))
    (images / "orphan.png").unlink()
    _write_pair(images, masks, "colours", values=(0, 1))
    Image.new("RGB", (20, 16), (255, 0, 0)).save(masks / "colours.png")
    _write_pair(images, masks, "deep", values=(0, 1))
    Image.fromarray(np.full((16, 20), 300, dtype=np.uint16)).save(images / "deep.png")
    _write_pair(images, masks, "gray", values=(0, 1))
    Image.new("L", (20, 16), 128).save(images / "gray.png")
    _write_pair(images, masks, "resized", values=(0, 1))
    Image.fromarray(np.ones((8, 10), dtype=np.uint8)).save(masks / "resized.png")
    return root


def test_check_finds_every_kind_of_problem(tmp_path):
    report = check_folder(broken_folder(tmp_path), quiet=True)
    found = {kind: [text.split(" (")[0].rsplit("/", 1)[-1] for text in texts]
             for kind, texts in report.problems.items()}
    assert found == {"unreadable": ["garbage.png"], "image without mask": ["lonely.png"],
                     "mask without image": ["orphan.png"], "mask values": ["badvalues.png"],
                     "mask channels": ["colours.png"], "image mode": ["deep.png"],
                     "image converted": ["gray.png"], "size mismatch": ["resized.png"]}
    assert report.errors == 5 and report.warnings == 3
    text = report.to_text()
    assert "mask values" in text and "badvalues.png" in text and "[9]" in text
    assert report.pairs == {"all": 9}


def test_check_counts_class_pixels_and_flags_rare_classes(tmp_path):
    root = split_folder(tmp_path, values=(0, 0, 0, 1, VOID), counts={"train": 2, "val": 1})
    report = check_folder(root, quiet=True, num_classes=3, ignore_index=VOID,
                          class_names=("sky", "road", "car"))
    assert report.errors == 0 and report.pairs == {"train": 2, "val": 1}
    shares = report.class_shares()
    assert shares["car"] == 0 and shares["sky"] == pytest.approx(3 * shares["road"], rel=0.1)
    assert report.ignored_pixels > 0
    assert "<- rare" in report.to_text()


def test_scan_masks_names_the_bad_file_before_training_and_caches_clean_scans(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    root = split_folder(tmp_path / "data", counts={"train": 4, "val": 2})
    dataset = open_dataset(root, image_size=32, split="train", **CAMVID)
    assert scan_masks(dataset, quiet=True) == 4
    assert scan_masks(dataset, quiet=True) == 0  # remembered: same files, same class set
    bad = np.zeros((16, 20), dtype=np.uint8)
    bad[0, 0] = 42
    Image.fromarray(bad).save(root / "trainannot" / "train_3.png")  # changed: scanned again
    with pytest.raises(MaskValueError, match=r"1 of 4 masks.*train_3\.png.*\[42\]"):
        scan_masks(dataset, quiet=True)
    subset = open_dataset(root, image_size=32, split="val", **CAMVID)
    assert scan_masks(subset, quiet=True) == 2


def test_check_reads_voc_by_its_split_lists_and_cityscapes_by_its_ids(tmp_path):
    from test_data import make_cityscapes, make_voc, save_rgb
    voc = make_voc(tmp_path / "voc")
    base = find_layout(voc).root
    save_rgb(base / "JPEGImages" / "detection_only.jpg", 20, 24)  # VOC has thousands of these
    report = check_folder(voc, quiet=True)
    assert report.errors == 0 and report.pairs == {"train": 2, "val": 1}
    assert report.class_names[15] == "person" and report.class_pixels[15] > 0
    city = check_folder(make_cityscapes(tmp_path / "city"), quiet=True)
    assert city.errors == 0 and city.pairs == {"train": 2, "val": 2}
    assert city.class_pixels[0] > 0 and city.ignored_pixels > 0  # road, and ids outside the 19

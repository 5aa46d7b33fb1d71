"""The public data sets: Pascal VOC, Cityscapes and the people set, each in its official layout.

* ``VOCSegmentation`` (Everingham et al., 2010): JPEGImages/ + SegmentationClass/ + split lists;
* ``CityscapesSegmentation`` (Cordts et al., 2016): leftImg8bit/ + gtFine/, label ids -> 19 classes;
* ``people_dataset``: Training_Images/ + Ground_Truth/ with 0/255 masks (``default_people_dir``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segnas_lite.data.errors import EmptyDatasetError, MissingFolderError, MissingMaskError
from segnas_lite.data.folders import PairedFiles, SegmentationFolder
from segnas_lite.data.transforms import IGNORE_INDEX, PairedAugment

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


def voc_root(root: Path) -> Path | None:
    """The folder holding JPEGImages/ and SegmentationClass/, accepting VOCdevkit parents."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    return None


class VOCSegmentation(SegmentationFolder):
    """Pascal VOC 2012 segmentation (Everingham et al., 2010): JPEGImages/*.jpg, SegmentationClass/*.png
    (palette indices 0..20, ``IGNORE_INDEX`` = object borders and "difficult") and the split lists
    ImageSets/Segmentation/{train,val,trainval}.txt. 21 classes."""

    def __init__(self, root, *, split: str = "train", image_size: int | None = None,
                 augment: PairedAugment | None = None, seed: int = 0):
        base = voc_root(Path(root))
        if base is None:
            raise MissingFolderError(f"{root} is not a Pascal VOC folder: expected JPEGImages/ and "
                                     "SegmentationClass/ (or VOCdevkit/VOC2012/ holding them)")
        split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not split_file.is_file():
            raise MissingFolderError(f"split list {split_file} not found; splits are train, val, trainval")
        stems = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        if not stems:
            raise EmptyDatasetError(f"split list {split_file} is empty")
        super().__init__(base / "JPEGImages", base / "SegmentationClass", image_size=image_size,
                         num_classes=21, augment=augment, files=stems, seed=seed, class_names=VOC_CLASSES)


# Official Cityscapes labelId -> trainId table (cityscapesScripts, helpers/labels.py).
# Ids not listed (and "license plate", id -1) map to IGNORE_INDEX.
CITYSCAPES_TRAIN_IDS = {
    7: 0,    # road
    8: 1,    # sidewalk
    11: 2,   # building
    12: 3,   # wall
    13: 4,   # fence
    17: 5,   # pole
    19: 6,   # traffic light
    20: 7,   # traffic sign
    21: 8,   # vegetation
    22: 9,   # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
                      "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)],
    dtype=np.uint8)


class CityscapesSegmentation(PairedFiles):
    """Cityscapes fine annotations (Cordts et al., 2016): leftImg8bit/<split>/<city>/*_leftImg8bit.png
    with gtFine/<split>/<city>/*_gtFine_labelIds.png; the 34 label ids are mapped to the 19 training
    classes with ``CITYSCAPES_TRAIN_IDS`` (everything else -> ``IGNORE_INDEX``)."""

    def __init__(self, root, *, split: str = "train", image_size: int | None = None,
                 augment: PairedAugment | None = None, seed: int = 0):
        root = Path(root)
        splits = [s for s in ("train", "val", "test") if (root / "leftImg8bit" / s).is_dir()] \
            if split == "all" else [split]  # "all": every split present
        pairs = []
        for name in splits:
            pairs += self.split_pairs(root, name)
        if not pairs:
            raise EmptyDatasetError(f"no */*_leftImg8bit.png files in {root / 'leftImg8bit'}")
        mapping = {label_id: IGNORE_INDEX for label_id in range(256)}  # every id is allowed ...
        mapping.update(CITYSCAPES_TRAIN_IDS)  # ... and the 19 used ones become train ids
        super().__init__(pairs, image_size=image_size, mask_mapping=mapping, num_classes=19,
                         augment=augment, seed=seed, class_names=CITYSCAPES_CLASSES)
        self.palette = CITYSCAPES_PALETTE.copy()

    @staticmethod
    def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
        """(image, labelIds mask) pairs of one split; a missing mask raises ``MissingMaskError``."""
        image_root, mask_root = root / "leftImg8bit" / split, root / "gtFine" / split
        if not image_root.is_dir() or not mask_root.is_dir():
            raise MissingFolderError(f"{root} is not a Cityscapes folder for split {split!r}: expected "
                                     f"{image_root} and {mask_root}")
        images = sorted(p for p in image_root.glob("*/*_leftImg8bit.png")
                        if not p.name.startswith("."))  # macOS's ._ files (io.list_images)
        if not images:
            raise EmptyDatasetError(f"no */*_leftImg8bit.png files in {image_root}")
        pairs = []
        for image in images:
            stem = image.name[: -len("_leftImg8bit.png")]
            mask = mask_root / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not mask.is_file():
                raise MissingMaskError(f"image {image.name} has no mask {mask.name} in {mask.parent}")
            pairs.append((image, mask))
        return pairs


def people_dataset(root, *, image_size: int | None, augment: PairedAugment | None = None,
                   seed: int = 0) -> SegmentationFolder:
    """The people layout: root/Training_Images/N.jpg with root/Ground_Truth/N.png, 0/255 masks."""
    root = Path(root)
    return SegmentationFolder(root / "Training_Images", root / "Ground_Truth", image_size=image_size,
                              mask_mapping={0: 0, 255: 1}, num_classes=2, augment=augment, seed=seed,
                              class_names=("background", "person"))


def default_people_dir() -> Path:
    """Where the shared people set lives: $SEGNAS_PEOPLE_DIR, else ../shared/data/people next to the
    repository (it is never copied into the repository)."""
    env = os.environ.get("SEGNAS_PEOPLE_DIR")
    if env:
        return Path(env)
    repository = Path(__file__).resolve().parents[2]  # public.py -> data/ -> segnas_lite/ -> repository
    return repository.parent / "shared" / "data" / "people"

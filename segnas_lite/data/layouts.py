"""Which layout a dataset folder has, which files each split reads, and the options of a class set.

``find_layout(root)`` recognises, in this order:

===================  ==============================================  ===============================
kind                 what is on disk                                 splits
===================  ==============================================  ===============================
``voc``              JPEGImages/ + SegmentationClass/ (+ split lists) train, val, trainval (= all)
``cityscapes``       leftImg8bit/<split>/ + gtFine/<split>/          train, val, test
``split-annot``      train/ + trainannot/, val/ + valannot/, ...     the folders present (SegNet's
                                                                     CamVid release has all three)
``split-images``     images/<split>/ + masks/<split>/                the folders present
``split-first``      <split>/images/ + <split>/masks/                the folders present
``people``           Training_Images/ + Ground_Truth/ (0/255 masks)  one pool, cut at random
``images-masks``     images/ + masks/ (masks named like the images)  one pool, cut at random
===================  ==============================================  ===============================

The mask folder may also be called ``labels/`` or ``annotations/`` (``MASK_FOLDERS``), and a split
folder ``training/``, ``validation/`` (or ``valid/``) and ``testing/`` (``SPLIT_FOLDERS``; ADE20K's
names) in the split-images and split-first layouts.

A folder with its own splits is read as it is: "val" is its val folder, never a random cut of train.
A pool is cut with ``split_indices`` (``val_fraction``, seed) into "train" and "val"; "all" is
every pair either way, which is what ``segnas evaluate --split all`` scores.

``DataOptions`` is how a folder is read: its class set (number of classes, the raw "no label" value,
a raw value -> class mapping, class names) and the seed of a pool's random train/val cut
(``split_seed``); ``segnas train`` saves it beside the weights so that ``evaluate`` and ``predict``
need no repeated flags.
"""
from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from segnas_lite.data.errors import MaskMappingError, UnknownSourceError
from segnas_lite.data.public import CITYSCAPES_CLASSES, VOC_CLASSES, voc_root
from segnas_lite.data.transforms import IGNORE_INDEX

SPLITS = ("train", "val", "test")
POOL = "all"  # the one split of a folder without its own splits
SPLIT_FOLDERS = {"train": ("train", "training"), "val": ("val", "validation", "valid"),
                 "test": ("test", "testing")}
"""The folder names each split may have on disk, the first present wins."""


@dataclass(frozen=True)
class FolderLayout:
    """What ``find_layout`` found: ``split_dirs`` maps each split present to (images, masks)."""

    kind: str
    root: Path
    split_dirs: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    own_splits: bool = False
    defaults: dict = field(default_factory=dict)  # the layout's own class set (people, VOC, ...)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits ``open_dataset`` accepts for this folder."""
        if self.kind == "voc":
            return ("train", "val", "trainval", POOL)
        if self.own_splits:
            cut = ("val",) if self.cuts_val else ()
            return (*self.split_dirs, *cut, POOL)
        return ("train", "val", POOL)

    @property
    def cuts_val(self) -> bool:
        """Own splits but no val folder: val is cut at random from the train folder."""
        return self.own_splits and "train" in self.split_dirs and "val" not in self.split_dirs

    def describe(self) -> str:
        if self.cuts_val:
            return (f"{self.kind} layout with its own splits ({', '.join(self.split_dirs)}; no val "
                    "folder, so val is cut at random from train)")
        if self.own_splits:
            return f"{self.kind} layout with its own splits ({', '.join(self.splits[:-1])})"
        return f"{self.kind} layout (one pool, cut at random into train and val)"


def find_layout(root) -> FolderLayout:
    """The layout of a dataset folder (see the module docstring); ``UnknownSourceError`` if none."""
    root = Path(root)
    if root.is_file():
        raise UnknownSourceError(
            f"{root} is a file: --data takes a dataset folder (images/ + masks/, ...), "
            "'synthetic' or 'synthetic-scenes'")
    if not root.is_dir():
        raise UnknownSourceError(
            f"unknown data source {str(root)!r}: no folder there (check the path), and not "
            "'synthetic' or 'synthetic-scenes'")
    voc = voc_root(root)
    if voc is not None:
        return FolderLayout("voc", voc, own_splits=True,
                            defaults={"num_classes": 21, "class_names": VOC_CLASSES})
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        splits = {s: (root / "leftImg8bit" / s, root / "gtFine" / s) for s in SPLITS
                  if (root / "leftImg8bit" / s).is_dir() and (root / "gtFine" / s).is_dir()}
        return FolderLayout("cityscapes", root, splits, own_splits=True,
                            defaults={"num_classes": 19, "class_names": CITYSCAPES_CLASSES})
    annot = {s: (root / s, root / f"{s}annot") for s in SPLITS
             if (root / s).is_dir() and (root / f"{s}annot").is_dir()}
    if annot:
        return FolderLayout("split-annot", root, annot, own_splits=True)
    masks = _mask_folder_name(root / "images")
    nested = {}
    for split in SPLITS:
        name = _split_folder(root / "images", split)
        if masks and name and (root / masks / name).is_dir():
            nested[split] = (root / "images" / name, root / masks / name)
    if nested:
        return FolderLayout("split-images", root, nested, own_splits=True)
    split_first = {}
    for split in SPLITS:
        name = _split_folder(root, split)
        if name and _mask_folder_name(root / name / "images"):
            split_first[split] = (root / name / "images",
                                  root / name / _mask_folder_name(root / name / "images"))
    if split_first:
        return FolderLayout("split-first", root, split_first, own_splits=True)
    if (root / "Training_Images").is_dir() and (root / "Ground_Truth").is_dir():
        return FolderLayout("people", root, {POOL: (root / "Training_Images", root / "Ground_Truth")},
                            defaults={"num_classes": 2, "mask_mapping": {0: 0, 255: 1},
                                      "class_names": ("background", "person")})
    if masks and not any(_split_folder(root / "images", s) for s in SPLITS):
        shown = [p for p in (root / "images").iterdir() if not p.name.startswith(".")]
        inner = sorted(p.name for p in shown if p.is_dir())  # (.ipynb_checkpoints: Jupyter's)
        if inner and not any(p.is_file() for p in shown):
            raise UnknownSourceError(
                f"{root / 'images'} holds folders ({', '.join(inner[:5])}) but no images: name the "
                f"split folders {' / '.join(n for names in SPLIT_FOLDERS.values() for n in names)} "
                f"(the same under {root / masks}), or put the images themselves in images/")
        return FolderLayout("images-masks", root, {POOL: (root / "images", root / masks)})
    raise UnknownSourceError(
        f"folder {root} has no known layout. Expected one of: train/ + trainannot/ (+ val/ + valannot/"
        ", test/ + testannot/), images/<split>/ + masks/<split>/, <split>/images/ + <split>/masks/, "
        "images/ + masks/ (masks named like their images; masks/ may be labels/ or annotations/), "
        "Training_Images/ + Ground_Truth/ (people), JPEGImages/ + SegmentationClass/ (Pascal VOC) or "
        "leftImg8bit/ + gtFine/ (Cityscapes)")


MASK_FOLDERS = ("masks", "labels", "annotations")  # what the mask folder beside images/ may be called


def _split_folder(parent: Path, split: str) -> str | None:
    """The name of ``split``'s folder under ``parent`` (``SPLIT_FOLDERS``), or None."""
    return next((name for name in SPLIT_FOLDERS[split] if (parent / name).is_dir()), None)


def _mask_folder_name(images: Path) -> str | None:
    """The name of the mask folder beside an ``images`` folder (``MASK_FOLDERS``), or None."""
    if not images.is_dir():
        return None
    return next((name for name in MASK_FOLDERS if (images.parent / name).is_dir()), None)


@dataclass(frozen=True)
class DataOptions:
    """The class set a folder is read with; ``None`` fields take the layout's own (people: 2 classes
    from 0/255 masks; VOC: 21; Cityscapes: 19; other folders: 2 classes, mask values 0 and 1).

    ``ignore_index``: the raw mask value meaning "no label" (it becomes ``IGNORE_INDEX`` = 255);
    ``mask_mapping``: raw value -> class (or ``IGNORE_INDEX``); ``unmapped``: "error" (a value outside
    the class set stops the run, naming the file) or "ignore" (such pixels carry no loss).
    ``split_seed``: the seed of a pool's random train/val cut (``split_indices``); ``None`` = the
    run's ``seed`` (``open_dataset``), so a run may change its training seed and keep its val set.
    It is not part of the class set (``dataset_kwargs`` leaves it out).
    """

    num_classes: int | None = None
    ignore_index: int = IGNORE_INDEX
    mask_mapping: dict[int, int] | None = None
    unmapped: str = "error"
    class_names: tuple[str, ...] | None = None
    split_seed: int | None = None

    def __post_init__(self) -> None:
        if self.num_classes is not None and not 1 <= self.num_classes <= IGNORE_INDEX:
            raise MaskMappingError(f"the number of classes must be in 1..{IGNORE_INDEX}, "
                                   f"got {self.num_classes}")
        if not 0 <= self.ignore_index <= 65535:
            raise MaskMappingError(f"the ignore value is a raw mask value in 0..65535, "
                                   f"got {self.ignore_index}")
        if self.unmapped not in ("error", "ignore"):
            raise MaskMappingError(f"unmapped must be 'error' or 'ignore', got {self.unmapped!r}")
        if self.split_seed is not None:
            try:
                seed = operator.index(self.split_seed)  # int or numpy integer, not 1.5 or "1"
            except TypeError:
                seed = -1
            if seed < 0:
                raise MaskMappingError(f"the split seed must be an integer >= 0, got {self.split_seed!r}")
            object.__setattr__(self, "split_seed", seed)
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
            if self.num_classes is not None and len(self.class_names) != self.num_classes:
                raise MaskMappingError(f"{len(self.class_names)} class names for {self.num_classes} "
                                       "classes: give one name per class")
        if self.mask_mapping is not None:
            object.__setattr__(self, "mask_mapping",
                               {int(k): int(v) for k, v in self.mask_mapping.items()})

    def resolved(self, layout: FolderLayout | None) -> "DataOptions":
        """These options with every unset field taken from the layout's own class set."""
        defaults = dict(layout.defaults) if layout is not None else {}
        if layout is not None and layout.kind in ("voc", "cityscapes"):
            own = defaults["num_classes"]
            if (self.num_classes not in (None, own) or self.mask_mapping is not None
                    or self.ignore_index != IGNORE_INDEX):
                raise MaskMappingError(
                    f"{layout.root} is {layout.kind} with its own {own} classes: drop "
                    "--num-classes/--mask-mapping/--ignore-index for it")
        if self.mask_mapping is not None:  # a mapping replaces the layout's own class set
            defaults = {"class_names": defaults.get("class_names")} if self.num_classes is None else {}
        num_classes = self.num_classes or defaults.get("num_classes")
        names = self.class_names or defaults.get("class_names")
        if num_classes is None:
            if self.mask_mapping is not None:  # the classes the mapping names
                targets = [v for v in self.mask_mapping.values() if v != IGNORE_INDEX]
                num_classes = max(targets) + 1 if targets else 1
            else:
                num_classes = len(names) if names else 2
        if names is not None and len(names) != num_classes:
            if self.class_names is not None:
                raise MaskMappingError(f"{len(names)} class names for {num_classes} classes: give "
                                       "one name per class (--class-names a,b,c)")
            names = None  # the layout's own names do not fit the classes asked for
        return replace(self, num_classes=num_classes, class_names=names,
                       mask_mapping=self.mask_mapping if self.mask_mapping is not None
                       else defaults.get("mask_mapping"))

    def dataset_kwargs(self) -> dict:
        """Keyword arguments of ``PairedFiles`` / ``SegmentationFolder`` (after ``resolved``)."""
        return {"num_classes": self.num_classes or 2, "ignore_index": self.ignore_index,
                "mask_mapping": self.mask_mapping, "unmapped": self.unmapped,
                "class_names": self.class_names}

    def to_json(self) -> dict:
        data = asdict(self)
        if self.mask_mapping is not None:  # JSON keys are strings
            data["mask_mapping"] = {str(k): v for k, v in self.mask_mapping.items()}
        if self.class_names is not None:
            data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> "DataOptions":
        data = dict(data or {})
        if data.get("mask_mapping") is not None:
            data["mask_mapping"] = {int(k): int(v) for k, v in data["mask_mapping"].items()}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def parse_class_table(text: str, key_of, *, what: str, form: str,
                      example: str) -> dict[int, int]:
    """``"KEY:CLASS,KEY:CLASS"`` -> {key_of(KEY): CLASS}; a CLASS may be ``ignore``
    (-> ``IGNORE_INDEX``). ``key_of`` turns a KEY into a non-negative integer or raises
    ``ValueError``; anything else is a ``MaskMappingError`` that shows ``form`` and ``example``."""
    mapping: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        raw, sep, target = (part.strip() for part in item.partition(":"))
        try:
            key = key_of(raw)
            value = IGNORE_INDEX if target.lower() == "ignore" else int(target)
            ok = bool(sep) and key >= 0 and value >= 0
        except ValueError:
            ok = False
        if not ok:
            raise MaskMappingError(f"{what} item {item!r} is not {form}, e.g. {example!r}")
        if key in mapping:
            raise MaskMappingError(f"{what} names {raw} twice")
        mapping[key] = value
    if not mapping:
        raise MaskMappingError(f"{what} {text!r} is empty; write e.g. {example!r}")
    return mapping


def parse_mask_mapping(text: str) -> dict[int, int]:
    """``"0:0,255:1"`` -> {0: 0, 255: 1}; a target may be ``ignore`` (-> ``IGNORE_INDEX``)."""
    return parse_class_table(text, int, what="mask mapping",
                             form="RAW:CLASS with two non-negative integers (or RAW:ignore)",
                             example="0:0,255:1")


def parse_class_names(text: str) -> tuple[str, ...]:
    """``"sky,road,car"`` -> ("sky", "road", "car"); empty or repeated names are refused."""
    names = tuple(name.strip() for name in text.split(","))
    if not names or any(not name for name in names):
        raise MaskMappingError(f"class names {text!r}: write them comma-separated, e.g. 'sky,road'")
    if len(set(names)) != len(names):
        raise MaskMappingError(f"class names {text!r} repeat a name")
    return names

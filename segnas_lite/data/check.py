"""A data doctor: read every pair of a dataset folder and report what would break training.

* ``check_folder(root, ...)`` (``segnas data check``): every image and mask of every split is
  opened. Problems, by kind (errors stop ``segnas data check`` with exit status 1, warnings do not):

  ==========================  =======  ======================================================
  kind                        level    meaning
  ==========================  =======  ======================================================
  ``unreadable``              error    PIL cannot decode the file (corrupt, truncated, not an image)
  ``image without mask``      error    no mask with the image's file stem
  ``mask without image``      warning  a mask no image uses (often a renamed or deleted photo)
  ``mask values``             error    values outside the class set (the message lists them)
  ``mask channels``           error    a colour mask whose channels differ (colours, not indices)
  ``image mode``              error    a 16-bit, 32-bit or float image (no 8-bit RGB meaning)
  ``only class 0``            error    every labelled pixel is class 0 and the rest hold the "no
                                       label" value: binary 0/255 masks read with 255 = ignore
  ``shared name``             error    two photos of one folder share a file stem (``a.jpg``,
                                       ``a.png``): one mask would label both
  ``photo in two splits``     error    the same file (identical bytes) in train and val: the val
                                       score would include a training photo
  ``duplicate photo``         warning  the same file twice in one split (counted twice)
  ``image converted``         warning  grayscale, palette, CMYK or alpha images (read as RGB)
  ``size mismatch``           warning  a mask of another size than its image (resized, nearest)
  ``mask turned``             warning  a mask drawn on a photo's stored pixels, which its EXIF
                                       tag turns by 90 degrees: turned with the photo (``io``)
  ==========================  =======  ======================================================

  The report also counts the pixels of each class: a class with a tiny share (class imbalance)
  barely moves the loss and often ends with IoU near 0 (lesson 01).
* ``check_folders(roots, ...)`` (``segnas data check A B``): ``check_folder`` on each folder with
  the same options, plus what only several folders can get wrong: a folder given twice, class
  sets that differ (the same rule as training on them together, ``concat.class_set_mismatch``),
  and photos that are identical files in two folders (read twice; one folder's val photo may be
  another's training photo).
* ``scan_masks(dataset)`` (before ``segnas train``'s first step): only the masks of the pairs a
  dataset reads, against its class set, so that a bad mask at item 5000 fails in seconds with its
  file named, not after an hour. A clean scan is remembered in the cache folder under a fingerprint
  of the mask files (paths, sizes, modification times) and the class set, so repeated runs skip it.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, Subset

from segnas_lite.data.concat import class_set, class_set_mismatch
from segnas_lite.data.errors import DatasetError, MaskValueError, UnreadableImageError
from segnas_lite.data.folders import (LOSSY_EXTENSIONS, PairedFiles, binary_hint, match_by_stem,
                                      only_ignore_labelled, shared_stem_text, shared_stems,
                                      value_hint)
from segnas_lite.data.io import (drawn_on_stored_pixels, list_images, open_image, read_mask,
                                 upright_size)
from segnas_lite.data.layouts import DataOptions, find_layout
from segnas_lite.data.public import CITYSCAPES_TRAIN_IDS, CityscapesSegmentation
from segnas_lite.data.transforms import IGNORE_INDEX

ERRORS = ("unreadable", "image without mask", "mask values", "mask channels", "image mode",
          "only class 0", "shared name", "photo in two splits")
WARNINGS = ("mask without image", "image converted", "size mismatch", "mask turned",
            "duplicate photo")
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


@dataclass
class DataReport:
    """What ``check_folder`` found: pairs per split, pixels per class, problems by kind."""

    root: str
    layout: str
    class_names: tuple[str, ...]
    pairs: dict[str, int] = field(default_factory=dict)
    class_pixels: np.ndarray | None = None   # (num_classes,) labelled pixels per class
    split_pixels: dict[str, np.ndarray] = field(default_factory=dict)  # the same, per split
    ignored_pixels: int = 0
    class_set: dict | None = None  # what its masks mean (``concat.class_set``); None without pairs
    hints: list[str] = field(default_factory=list)  # how to fix what the problems show
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    photo_digests: dict[str, str] = field(default_factory=dict, repr=False)  # sha1 -> first path

    def add(self, kind: str, text: str) -> None:
        self.problems[kind].append(text)

    @property
    def errors(self) -> int:
        return sum(len(self.problems.get(kind, [])) for kind in ERRORS)

    @property
    def warnings(self) -> int:
        return sum(len(self.problems.get(kind, [])) for kind in WARNINGS)

    def class_shares(self, split: str | None = None) -> dict[str, float]:
        """Share of the labelled pixels per class, in one split or all (0 when none labelled)."""
        pixels = self.class_pixels if split is None else self.split_pixels[split]
        total = int(pixels.sum()) if pixels is not None else 0
        return {name: (int(pixels[i]) / total if total else 0.0)
                for i, name in enumerate(self.class_names)}

    def to_text(self, *, first: int = 3) -> str:
        lines = [f"{self.root}: {self.layout}",
                 "pairs: " + ", ".join(f"{split} {n}" for split, n in self.pairs.items())]
        total = int(self.class_pixels.sum()) if self.class_pixels is not None else 0
        lines.append(f"\n{'class':<20}{'pixels':>14}{'share':>9}")
        for index, (name, share) in enumerate(self.class_shares().items()):
            count = int(self.class_pixels[index]) if total else 0
            note = "   <- rare: expect a low IoU" if total and share < 0.01 else ""
            lines.append(f"{index:>2} {name:<17}{count:>14,}{100 * share:>8.2f}%{note}")
        if self.ignored_pixels:
            lines.append(f"   {'(ignored)':<17}{self.ignored_pixels:>14,}")
        if not self.problems:
            lines.append("\nno problems found")
        else:
            lines.append(f"\n{'problem':<22}{'level':<9}{'files':>6}   first")
            for kind in (*ERRORS, *WARNINGS):
                found = self.problems.get(kind, [])
                if found:
                    level = "error" if kind in ERRORS else "warning"
                    lines.append(f"{kind:<22}{level:<9}{len(found):>6}   {found[0]}")
                    lines.extend(f"{'':<40}{text}" for text in found[1:first])
        lines.extend(f"\nhow to fix: {hint}" for hint in self.hints)
        lines.append(f"\n{self.errors} errors, {self.warnings} warnings")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"root": self.root, "layout": self.layout, "pairs": self.pairs,
                "class_pixels": dict(zip(self.class_names, map(int, self.class_pixels)))
                if self.class_pixels is not None else {},
                "class_shares": self.class_shares(),
                "split_shares": {split: self.class_shares(split) for split in self.split_pixels},
                "ignored_pixels": self.ignored_pixels,
                "class_set": ({key: list(value) if isinstance(value, tuple) else value
                               for key, value in self.class_set.items()}
                              if self.class_set is not None else None),
                "errors": self.errors, "warnings": self.warnings, "hints": list(self.hints),
                "problems": {kind: list(found) for kind, found in self.problems.items()}}


def _split_pairs(layout, report: DataReport) -> dict[str, list[tuple[Path, Path]]]:
    """Every pair of every split; strays are reported, not raised."""
    out: dict[str, list[tuple[Path, Path]]] = {}
    if layout.kind == "voc":  # its split lists name the pairs (JPEGImages/ also holds many
        # detection-only photos without a mask: those are not problems)
        for split in ("train", "val"):
            listed = layout.root / "ImageSets" / "Segmentation" / f"{split}.txt"
            if not listed.is_file():
                continue
            out[split] = []
            for stem in filter(None, (line.strip() for line in listed.read_text().splitlines())):
                image = layout.root / "JPEGImages" / f"{stem}.jpg"
                mask = layout.root / "SegmentationClass" / f"{stem}.png"
                if not image.is_file():
                    report.add("unreadable", f"{image} (listed in {listed.name}, missing)")
                elif not mask.is_file():
                    report.add("image without mask", str(image))
                else:
                    out[split].append((image, mask))
        return out
    if layout.kind == "cityscapes":
        for split in layout.split_dirs:
            try:
                out[split] = CityscapesSegmentation.split_pairs(layout.root, split)
            except DatasetError as error:
                report.add("image without mask", str(error))
        return out
    for split, (images, masks) in layout.split_dirs.items():
        for stem, paths in shared_stems(list_images(Path(images))).items():
            report.add("shared name", shared_stem_text(stem, paths))
        pairs, lonely_images, lonely_masks = match_by_stem(images, masks)
        for path in lonely_images:
            report.add("image without mask", str(path))
        for path in lonely_masks:
            report.add("mask without image", str(path))
        out[split] = pairs
    return out


def check_folder(root, *, num_classes: int | None = None, ignore_index: int = IGNORE_INDEX,
                 mask_mapping: dict[int, int] | None = None, unmapped: str = "error",
                 class_names=None, quiet: bool = False) -> DataReport:
    """Open every image and mask of a dataset folder and report the problems (module docstring)."""
    from segnas_lite.runio import progress
    layout = find_layout(root)
    options = DataOptions(num_classes=num_classes, ignore_index=ignore_index,
                          mask_mapping=mask_mapping, unmapped=unmapped,
                          class_names=class_names).resolved(layout)
    if layout.kind == "cityscapes":  # its own id -> train id table
        mapping = {i: IGNORE_INDEX for i in range(256)}
        mapping.update(CITYSCAPES_TRAIN_IDS)
        options = DataOptions(num_classes=19, mask_mapping=mapping, class_names=options.class_names)
    names = options.class_names or tuple(f"class{i}" for i in range(options.num_classes))
    report = DataReport(str(root), layout.describe(), names,
                        class_pixels=np.zeros(options.num_classes, dtype=np.int64))
    splits = _split_pairs(layout, report)
    report.pairs = {split: len(pairs) for split, pairs in splits.items()}
    everything = [(split, pair) for split, pairs in splits.items() for pair in pairs]
    if not everything:
        report.add("unreadable", f"no image/mask pairs in {root}")
        return report
    mapper = PairedFiles([everything[0][1]], check_sizes=False, **options.dataset_kwargs())
    report.class_set = class_set(mapper)
    report.split_pixels = {split: np.zeros(options.num_classes, dtype=np.int64) for split in splits}
    bad_values: set[int] = set()  # every raw value of the masks with values outside the class set
    first_seen: dict[str, tuple[str, Path]] = {}  # photo digest -> its first (split, path)
    for split, (image_path, mask_path) in progress(everything, quiet=quiet, desc="checking pairs",
                                                   unit="pair"):
        _check_duplicate(split, image_path, first_seen, report)
        image_size = _check_image(image_path, report)
        mask_size = _check_mask(mask_path, mapper, report, report.split_pixels[split], bad_values)
        if image_size and mask_size and image_size != mask_size:
            if drawn_on_stored_pixels(mask_size, image_path):
                report.add("mask turned", f"{mask_path} (drawn on the stored pixels of "
                                          f"{image_path.name}, whose EXIF tag turns it)")
                continue
            report.add("size mismatch", f"{mask_path} ({mask_size[0]}x{mask_size[1]} vs image "
                                        f"{image_size[0]}x{image_size[1]})")
    silent = only_ignore_labelled(report.class_pixels, report.ignored_pixels, options.ignore_index)
    if silent:
        report.add("only class 0", f"{root}: {silent}")
    if bad_values:
        hint = binary_hint(bad_values)
        if hint:
            report.hints.append(hint.strip())
    return report


def check_folders(roots, *, quiet: bool = False, **options) -> tuple[list[DataReport], list[str]]:
    """``check_folder`` on every folder of ``roots`` with the same ``options`` (its keywords), and
    the errors between them: a folder given twice, class sets that differ. Returns the reports in
    order and those errors (messages that say what to fix; empty when the folders can be read as
    one, as ``segnas train --data A --data B`` reads them)."""
    roots = [str(root) for root in roots]
    keys = [str(Path(root).resolve()) for root in roots]
    errors = [f"{root} is given twice: each folder is checked (and read) once"
              for i, root in enumerate(roots) if keys[i] in keys[:i]]
    reports = [check_folder(root, quiet=quiet, **options)
               for i, root in enumerate(roots) if keys[i] not in keys[:i]]
    first = next((r for r in reports if r.class_set is not None), None)
    for report in reports:
        if first is not None and report is not first and report.class_set is not None:
            problem = class_set_mismatch(first.root, first.class_set, report.root, report.class_set)
            if problem:
                errors.append(problem)
    for i, report in enumerate(reports):  # the same photo in two folders
        for earlier in reports[:i]:
            shared = [d for d in report.photo_digests if d in earlier.photo_digests]
            if shared:
                errors.append(
                    f"{len(shared)} photos of {report.root} are identical files to photos of "
                    f"{earlier.root} (e.g. {report.photo_digests[shared[0]]} = "
                    f"{earlier.photo_digests[shared[0]]}): read together they count twice, and "
                    "one folder's val photo may be the other's training photo; remove the copies "
                    "from one folder")
    return reports, errors


def _check_duplicate(split: str, path: Path, first_seen: dict, report: DataReport) -> None:
    """The same photo (identical bytes) in two splits is an error, twice in one a warning."""
    try:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return  # reported as unreadable by _check_image
    report.photo_digests.setdefault(digest, str(path))
    if digest not in first_seen:
        first_seen[digest] = (split, path)
        return
    first_split, first = first_seen[digest]
    if first_split != split:
        report.add("photo in two splits", f"{path} ({split}) is the same file as {first} "
                                          f"({first_split}): remove one copy, or the {split} "
                                          "score includes a photo the model trained on")
    else:
        report.add("duplicate photo", f"{path} is the same file as {first} (counted twice; in a "
                                      "folder cut at random into train and val, the two copies "
                                      "can land on both sides)")


def _check_image(path: Path, report: DataReport) -> tuple[int, int] | None:
    """Decode one image; its upright (width, height), or None when it cannot be used."""
    try:
        image = open_image(path)
    except DatasetError:
        report.add("unreadable", str(path))
        return None
    if image.mode in _WIDE_MODES:
        report.add("image mode", f"{path} ({image.mode}: save it as 8-bit RGB)")
        return None
    if image.mode != "RGB":
        report.add("image converted", f"{path} ({image.mode} -> RGB)")
    return upright_size(path)


def _check_mask(path: Path, mapper: PairedFiles, report: DataReport, split_pixels: np.ndarray,
                bad_values: set[int]) -> tuple[int, int] | None:
    """Read one mask, count its classes; its (width, height), or None when it cannot be used.
    The raw values of a mask outside the class set are added to ``bad_values``."""
    try:
        raw = read_mask(path)
    except DatasetError as error:
        if isinstance(error, UnreadableImageError):
            report.add("unreadable", str(path))
        else:
            report.add("mask channels", f"{path} ({str(error).removeprefix(f'mask {path} ')})")
        return None
    try:
        mapped = mapper.map_mask(raw, path)
    except MaskValueError:
        bad = np.unique(raw[mapper._lut[np.clip(raw, 0, len(mapper._lut) - 1)] < 0])
        bad_values.update(int(v) for v in np.unique(raw))
        lossy = "; a JPEG: save the masks as PNG" if path.suffix.lower() in LOSSY_EXTENSIONS else ""
        report.add("mask values", f"{path} (values {bad[:8].tolist()}; {mapper.allowed_values()}"
                                  f"{lossy})")
        return raw.shape[::-1]
    labelled = mapped[mapped != IGNORE_INDEX]
    counts = np.bincount(labelled.ravel(), minlength=len(report.class_pixels))
    report.class_pixels += counts
    split_pixels += counts
    report.ignored_pixels += int(mapped.size - labelled.size)
    return raw.shape[::-1]


# --------------------------------------------------------------------------- before training
def _parts(dataset, indices: list[int] | None = None
           ) -> list[tuple[PairedFiles, list[tuple[Path, Path]]]]:
    """The ``PairedFiles`` under a dataset and the pairs the dataset reads from each: through
    Subsets (their indices) and ConcatDatasets (several folders read as one, ``concat.py``)."""
    if isinstance(dataset, Subset):
        inner = list(dataset.indices) if indices is None else [dataset.indices[i] for i in indices]
        return _parts(dataset.dataset, inner)
    if isinstance(dataset, ConcatDataset):
        found, start = [], 0
        for part, end in zip(dataset.datasets, dataset.cumulative_sizes):
            local = None if indices is None else [i - start for i in indices if start <= i < end]
            if local is None or local:
                found += _parts(part, local)
            start = end
        return found
    if not isinstance(dataset, PairedFiles):
        return []  # synthetic data: nothing on disk to scan
    pairs = dataset.pairs if indices is None else [dataset.pairs[i] for i in indices]
    return [(dataset, pairs)] if pairs else []


def _fingerprint(base: PairedFiles, pairs) -> str:
    digest = hashlib.sha1()
    digest.update(json.dumps([base.num_classes, base.ignore_index, base.unmapped,
                              sorted((base.mask_mapping or {}).items())]).encode())
    for _, mask in pairs:
        stat = mask.stat()
        digest.update(f"{mask.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def scan_masks(dataset, *, quiet: bool = False, cache: bool = True) -> int:
    """Check every mask a dataset reads against its class set; raise ``MaskValueError`` naming the
    bad files (up to five) before any training step. Returns the number of masks scanned (0 for
    synthetic data or a scan remembered in the cache). Several folders read as one are scanned
    folder by folder."""
    return sum(_scan_pairs(base, pairs, quiet=quiet, cache=cache) for base, pairs in _parts(dataset))


def _scan_pairs(base: PairedFiles, pairs: list[tuple[Path, Path]], *, quiet: bool, cache: bool) -> int:
    """``scan_masks`` for the pairs of one ``PairedFiles``."""
    from segnas_lite.flags import cache_dir
    from segnas_lite.runio import atomic_write_text, progress
    marker = cache_dir() / "mask_scans" / f"{_fingerprint(base, pairs)}.json"
    if cache and marker.exists():
        return 0
    bad: list[str] = []
    bad_paths: list[Path] = []
    bad_values: set[int] = set()
    class_pixels = np.zeros(base.num_classes, dtype=np.int64)
    ignored = 0
    for _, mask_path in progress(pairs, quiet=quiet, desc="checking masks", unit="mask",
                                 leave=False):
        raw = read_mask(mask_path)
        try:
            mapped = base.map_mask(raw, mask_path)
        except MaskValueError as error:
            bad.append(str(error).split(" outside the class set")[0].removeprefix("mask "))
            bad_paths.append(mask_path)
            bad_values.update(int(v) for v in np.unique(raw))
            continue
        labelled = mapped[mapped != IGNORE_INDEX]
        class_pixels += np.bincount(labelled.ravel(), minlength=base.num_classes)
        ignored += int(mapped.size - labelled.size)
    if bad:
        shown = "; ".join(bad[:5])
        raise MaskValueError(
            f"{len(bad)} of {len(pairs)} masks hold values outside the class set "
            f"({base.allowed_values()}): {shown}{' ...' if len(bad) > 5 else ''}. "
            "`segnas data check` lists every problem. " + binary_hint(bad_values)
            + value_hint(bad_paths))
    silent = only_ignore_labelled(class_pixels, ignored, base.ignore_index)
    if silent:
        raise MaskValueError(f"the {len(pairs)} masks read from {pairs[0][1].parent}: {silent}")
    if cache:
        marker.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, json.dumps({"masks": len(pairs)}))
    return len(pairs)

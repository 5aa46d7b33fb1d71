"""Colour masks: masks that paint each class in a colour, turned into class-index masks.

A class-index mask holds one number per pixel: the class. Many data sets ship masks that paint each
class in an RGB colour instead (CamVid, many Kaggle sets, the exports of labelling tools), and a
Pascal VOC mask re-saved as RGB loses its palette but keeps its colours. Two ways in:

* **Pascal VOC's colours** are read as they are: the VOC palette (``palette.palette``) gives every
  index 0..255 its own colour, so a mask whose colours all belong to it has one reading
  (``palette.voc_indices``, used by ``io.read_mask``; the pale cream of index 255 is "no label");
* **any other colours**: ``index_masks`` writes a folder of grayscale index PNGs from a colour table
  (``segnas data index-masks MASKS OUT --colours '#000000:0,#ff0000:1'``), and ``colour_counts``
  lists the colours a folder uses, to write that table.

A colour is handled as one integer code, ``R << 16 | G << 8 | B`` (``palette.colour_code``).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from segnas_lite.data.errors import EmptyDatasetError, MaskMappingError, MissingFolderError
from segnas_lite.data.io import list_images, open_image, upright
from segnas_lite.data.layouts import parse_class_table
from segnas_lite.data.palette import colour_code, hex_colour
from segnas_lite.data.transforms import IGNORE_INDEX
from segnas_lite.runio import atomic_open, progress


def read_colours(path: Path) -> np.ndarray:
    """A mask file as (H, W, 3) colours, upright: a palette PNG gives its palette's colours, a
    grayscale one grey colours."""
    image = open_image(path)
    return upright(np.asarray(image.convert("RGB"), dtype=np.uint8), image)


def parse_colour_mapping(text: str) -> dict[int, int]:
    """``"#000000:0,#ff0000:1,#ffffff:ignore"`` -> {colour code: class} (``ignore``: 255)."""
    def code_of(colour: str) -> int:
        digits = colour.removeprefix("#")
        if len(digits) != 6:
            raise ValueError(colour)
        return int(digits, 16)

    mapping = parse_class_table(text, code_of, what="colour mapping",
                                form="#RRGGBB:CLASS (six hex digits, a class or 'ignore')",
                                example="#000000:0,#ff0000:1")
    too_big = [hex_colour(code) for code, value in mapping.items() if value > IGNORE_INDEX]
    if too_big:
        raise MaskMappingError(f"colour mapping gives {too_big[0]} a class above 255: an index "
                               "mask holds 0-255")
    return mapping


def colour_counts(masks_dir, *, quiet: bool = False) -> Counter:
    """Pixels per colour code over every mask file of a folder."""
    counts: Counter = Counter()
    for path in progress(_mask_files(masks_dir), quiet=quiet, desc="count colours", unit="mask"):
        found, pixels = np.unique(colour_code(read_colours(path)).ravel(), return_counts=True)
        counts.update(dict(zip(found.tolist(), pixels.tolist())))
    return counts


def suggested_mapping(counts: Counter) -> str:
    """A ``--colours`` table to edit: black (if used) is class 0, then the colours by pixels."""
    codes = sorted(counts, key=lambda code: (code != 0, -counts[code]))
    return ",".join(f"{hex_colour(code)}:{index}" for index, code in enumerate(codes))


def index_masks(masks_dir, out_dir, colours: dict[int, int], *, unlisted: str = "error",
                overwrite: bool = False, quiet: bool = False) -> list[Path]:
    """Write each mask of ``masks_dir`` as a grayscale PNG of class indices into ``out_dir`` (same
    stem), reading colours through ``colours`` (``parse_colour_mapping``). A colour not listed is
    an error naming it and a file that uses it, raised before anything is written; with
    ``unlisted="ignore"`` it becomes 255 ("no label"). Existing files in ``out_dir`` are kept
    unless ``overwrite``; each file is written atomically."""
    masks_dir, out_dir = Path(masks_dir), Path(out_dir)
    if unlisted not in ("error", "ignore"):
        raise MaskMappingError(f"unlisted must be 'error' or 'ignore', got {unlisted!r}")
    files = _mask_files(masks_dir)
    if out_dir.resolve() == masks_dir.resolve():
        raise MaskMappingError(f"the output folder is the masks folder {masks_dir}: write the "
                               "index masks to another folder, the colour masks stay as they are")
    targets = [out_dir / f"{path.stem}.png" for path in files]
    clashes = [t for t in targets if t.exists()]
    if clashes and not overwrite:
        raise MaskMappingError(f"{len(clashes)} of the {len(targets)} index masks already exist in "
                               f"{out_dir} (e.g. {clashes[0].name}): choose an empty folder, or "
                               "pass --overwrite to replace them")
    if len(set(targets)) != len(targets):
        repeated = Counter(t.name for t in targets).most_common(1)[0][0]
        raise MaskMappingError(f"two masks in {masks_dir} share the stem of {repeated}: rename one")
    if unlisted == "error":  # read every mask first: an unlisted colour stops before any write
        missing: dict[int, Path] = {}  # colour -> the first mask using it
        for path in progress(files, quiet=quiet, desc="check colours", unit="mask"):
            for code in np.unique(colour_code(read_colours(path))).tolist():
                if code not in colours:
                    missing.setdefault(code, path)
        if missing:
            listed = ", ".join(f"{hex_colour(c)} (e.g. {p.name})" for c, p in
                               list(missing.items())[:6])
            raise MaskMappingError(
                f"{len(missing)} colour(s) of {masks_dir} are not in the table: {listed}. Add "
                "them to --colours, or pass --unlisted ignore to read them as 'no label' (255); "
                "nothing was written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, target in progress(list(zip(files, targets)), quiet=quiet, desc="index masks",
                                 unit="mask"):
        codes = colour_code(read_colours(path))
        found, inverse = np.unique(codes.ravel(), return_inverse=True)
        lookup = np.array([colours.get(int(code), IGNORE_INDEX) for code in found], np.uint8)
        with atomic_open(target, "wb") as handle:
            Image.fromarray(lookup[inverse].reshape(codes.shape), mode="L").save(handle, "PNG")
    return targets


def _mask_files(masks_dir) -> list[Path]:
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise MissingFolderError(f"folder {masks_dir} does not exist; check the path")
    files = list_images(masks_dir)
    if not files:
        raise EmptyDatasetError(f"{masks_dir} holds no mask image (.png, .bmp, .gif, ...)")
    return files

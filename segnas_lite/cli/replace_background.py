"""``segnas replace-background``: cut people out of photos with soft edges, on a new background.

``portrait.pipeline.cut_out``: the network's foreground probability -> edge-aware refinement on
the full-size photo -> alpha composite over the new background; with --masks, the edge scores
before and after refinement (``portrait.evaluate.EdgeMeter``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_network_options, add_overwrite_option,
                                     add_quiet_option, add_refine_options, refine_config)

HELP = "cut people out of photos with soft edges and put them on a new background"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_network_options(p)
    add_refine_options(p, background="blur")
    p.add_argument("--masks", metavar="DIR",
                   help="true masks (same file stems, nonzero = foreground): print mIoU, boundary "
                   "F-score and trimap IoU before and after refinement")
    p.add_argument("--out", required=True,
                   help="folder for IMAGE_composite.png and IMAGE_alpha.png")
    add_overwrite_option(p, what="PNGs that exist in --out")
    add_quiet_option(p)


def _probability_source(args):
    """``prob(image)``: (3, H, W) normalised photo -> (h, w) foreground probability at the
    network's own size, from --model (OpenVINO) or --checkpoint (PyTorch)."""
    from segnas_lite.deploy.predictor import OpenVINOPredictor, network_probability
    from segnas_lite.zoo import load_trained, saved_data
    if bool(args.checkpoint) == bool(args.model):
        raise CLIError("give exactly one of --model MODEL.xml or --checkpoint DIR/checkpoint.pt")
    if args.model:
        return OpenVINOPredictor(args.model, foreground=args.foreground).probability
    model, state = load_trained(args.checkpoint)
    side = args.image_size or saved_data(state).get("image_size")
    return network_probability(model, (side, side) if side else None, foreground=args.foreground)


def _true_masks(args) -> dict | None:
    """--masks: the mask files by the stem of their photo (``photo.png``, or one added ending such
    as ``photo_mask.png``: ``data.folders.masks_by_stem``), or None."""
    if not args.masks:
        return None
    from segnas_lite.data.folders import masks_by_stem
    if not Path(args.masks).is_dir():
        raise CLIError(f"--masks {args.masks} is not a folder")
    return masks_by_stem(Path(args.masks), {Path(image).stem for image in args.images})


def _true_mask(masks: dict, stem: str, photo: Path, shape: tuple[int, int]):
    """The (H, W) bool foreground (nonzero) of the mask named like the photo, at the upright
    photo's size (``data.io``'s orientation rule)."""
    import numpy as np
    from segnas_lite.data.io import fit_mask, open_image, upright
    if stem not in masks:
        raise CLIError(f"no mask named {stem}.* in --masks")
    picture = open_image(masks[stem])  # a named error when unreadable
    mask = upright(np.asarray(picture.convert("L")), picture)
    return fit_mask(mask, shape, photo) > 0


def run(args) -> int:
    from segnas_lite.data import load_image
    from segnas_lite.portrait.composite import check_background
    from segnas_lite.portrait.evaluate import EdgeMeter
    from segnas_lite.portrait.pipeline import cut_out
    from segnas_lite.runio import progress
    out = Path(args.out)
    masks = _true_masks(args)
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"no image at {path}")
        stem = Path(path).stem
        for target in (out / f"{stem}_composite.png", out / f"{stem}_alpha.png"):
            if target.exists() and not args.overwrite:
                raise CLIError(f"{target} exists; pass --overwrite or choose another --out")
    check_background(args.background)  # a bad spec fails now
    prob_of = _probability_source(args)
    out.mkdir(parents=True, exist_ok=True)
    before, after = EdgeMeter(reduction="per_image"), EdgeMeter(reduction="per_image")
    for path in progress(args.images, quiet=args.quiet or len(args.images) < 2, desc="photos"):
        result = cut_out(load_image(path), prob_of, refine=refine_config(args),
                         background=args.background)
        stem = Path(path).stem
        line = f"{path}: {100 * result.foreground_share:.1f}% foreground -> {result.save(out, stem)}"
        if masks is not None:
            true = _true_mask(masks, stem, Path(path), result.picture.shape[:2])
            line += "   " + before.update(result.hard_mask(), true).versus(
                after.update(result.mask, true))
        print(line)
    if masks is not None:
        print(f"\nmean over {len(args.images)} photos (before -> after {args.refine} refinement):"
              f"\n  {before.compute().versus(after.compute(), sep='   ')}")
    return 0

"""``segnas predict``: a coloured mask and an overlay PNG for each image."""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import CLIError, add_network_options, add_overwrite_option

HELP = "mask and overlay PNGs for images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_network_options(p)
    p.add_argument("--out", required=True, help="folder for IMAGE_mask.png and IMAGE_overlay.png")
    add_overwrite_option(p, what="mask and overlay PNGs that exist in --out")


def _segmenter(args):
    """``segment(x)``: (1, 3, H, W) normalised image -> (H, W) class indices, from --checkpoint
    (PyTorch, at the training run's size) or --model (OpenVINO, at the IR's), back at (H, W)."""
    from segnas_lite.deploy.predictor import OpenVINOPredictor, logits_at_size
    if args.model:
        predictor = OpenVINOPredictor(args.model)
        return lambda x: predictor(x).argmax(1)[0]
    from segnas_lite.zoo import load_trained, saved_data
    model, state = load_trained(args.checkpoint)
    size = args.image_size or saved_data(state).get("image_size")
    return lambda x: logits_at_size(model, x, (size, size) if size else None).argmax(1)[0].numpy()


def _class_shares(mask, names) -> str:
    """"23.4% person" for two classes, else the share of every class present, largest first."""
    import numpy as np
    counts = np.bincount(mask.ravel(), minlength=len(names) if names else 2)
    label = (lambda i: names[i] if names and i < len(names) else f"class {i}")
    if len(counts) <= 2:
        return f"{100 * counts[1:].sum() / mask.size:.1f}% {label(1) if names else 'foreground'}"
    order = [int(i) for i in np.argsort(-counts) if counts[i]]
    return ", ".join(f"{label(i)} {100 * counts[i] / mask.size:.1f}%" for i in order[:6])


def run(args) -> int:
    import numpy as np
    import torch
    from PIL import Image
    from segnas_lite.data import denormalize, load_image
    from segnas_lite.data.palette import colorize, overlay
    from segnas_lite.runio import load_checkpoint
    from segnas_lite.zoo import saved_data
    if bool(args.checkpoint) == bool(args.model):
        raise CLIError("give exactly one of --checkpoint DIR/checkpoint.pt or --model MODEL.xml")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    segment = _segmenter(args)
    names = None
    if args.checkpoint:  # the class names the run was trained with
        names = saved_data(load_checkpoint(args.checkpoint)).get("class_names")
    for path in args.images:
        image = load_image(path)  # (3, H, W) at the photo's own size, normalised
        with torch.no_grad():
            mask = np.asarray(segment(image[None]), dtype=np.uint8)
        stem = Path(path).stem
        targets = {"mask": out / f"{stem}_mask.png", "overlay": out / f"{stem}_overlay.png"}
        clash = [str(t) for t in targets.values() if t.exists()]
        if clash and not args.overwrite:
            raise CLIError(f"{clash[0]} exists; pass --overwrite or choose another --out")
        Image.fromarray(colorize(mask)).save(targets["mask"])
        blend = overlay(denormalize(image), mask)  # (H, W, 3) float in [0, 1]
        Image.fromarray((blend * 255).round().astype(np.uint8)).save(targets["overlay"])
        print(f"{path}: {_class_shares(mask, names)} -> {targets['mask']}")
    return 0

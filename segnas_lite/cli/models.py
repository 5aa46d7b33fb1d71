"""``segnas models``: every model of the zoo with its parameter count and FLOPs."""
from __future__ import annotations

import argparse

from segnas_lite.cli.options import class_count, image_side

HELP = "list the models with parameters and FLOPs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-classes", type=class_count, default=2,
                   help="output classes (sets the head's size); default %(default)s")
    p.add_argument("--image-size", type=image_side, default=256,
                   help="square input side for the FLOP count; default %(default)s")


def run(args) -> int:
    """List the models with their parameter count and FLOPs (reproduces the README's figures)."""
    import torch
    from segnas_lite.models.summary import summarize
    from segnas_lite.zoo import available_models, build_model
    size = args.image_size
    print(f"{'model':<28}{'params':>12}{f'GFLOPs@{size}':>14}   ({args.num_classes} classes)")
    for name in available_models():
        if name == "nas_child":
            print(f"{name:<28}{'(needs --genotype: segnas train --genotype FILE)':>40}")
            continue
        torch.manual_seed(0)
        summary = summarize(build_model(name, num_classes=args.num_classes), input_size=(size, size))
        print(f"{name:<28}{summary.total_params:>12,}{summary.gflops:>14.3f}")
    return 0

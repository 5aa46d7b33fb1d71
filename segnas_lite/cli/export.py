"""``segnas export``: an OpenVINO IR of a trained (or untrained) model, with a parity check."""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_model_option, add_overwrite_option,
                                     add_seed_option, class_count, image_side, model_info)

HELP = "OpenVINO IR export with a parity check"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--genotype", help="genotype.json: export that child with untrained weights "
                   "(ignored with --checkpoint)")
    add_model_option(p, help="model to export with untrained weights (ignored with --checkpoint "
                     "or --genotype)")
    p.add_argument("--num-classes", type=class_count, default=2,
                   help="output classes of an untrained export; default %(default)s")
    add_seed_option(p, what="the untrained weights")
    p.add_argument("--image-size", type=image_side, default=256,
                   help="square side of the traced input, the IR's fixed input unless --dynamic; "
                   "default %(default)s")
    p.add_argument("--out", required=True, help="DIR/model.xml (model.bin is written beside it)")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16-compressed)")
    p.add_argument("--dynamic", action="store_true", help="any input batch, height and width")
    add_overwrite_option(p, what="an IR that exists at --out")


def run(args) -> int:
    """Write an OpenVINO IR, then print f32 parity and default-precision mask agreement."""
    if Path(args.out).suffix != ".xml":  # before building or converting anything
        raise CLIError(f"--out {args.out} must end in .xml (DIR/model.xml; model.bin is written "
                       "beside it)")
    import torch
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.deploy.parity import check_parity
    from segnas_lite.zoo import build_from_info, load_trained
    if args.checkpoint:
        model, _ = load_trained(args.checkpoint)
    elif args.genotype or args.model:
        info = model_info(args)
        what = "the genotype's child" if args.genotype else args.model
        print(f"note: no --checkpoint given, exporting {what} with untrained weights")
        torch.manual_seed(args.seed)
        model = build_from_info(info, args.num_classes)
    else:
        raise CLIError("give --checkpoint DIR/checkpoint.pt (or --genotype FILE / --model NAME)")
    size = (args.image_size, args.image_size)
    to_openvino(model, input_size=size, out_path=args.out, compress_to_fp16=not args.fp32,
                dynamic=args.dynamic, overwrite=args.overwrite)
    weights = "fp32" if args.fp32 else "fp16-compressed"
    shape = "dynamic H, W" if args.dynamic else f"static 1x3x{size[0]}x{size[1]}"
    print(f"wrote {args.out} (+ .bin), {weights} weights, {shape}")
    check_size = size if args.dynamic else None
    for precision in ("f32", "default"):
        print(check_parity(model, args.out, input_size=check_size, precision=precision).to_text())
    return 0

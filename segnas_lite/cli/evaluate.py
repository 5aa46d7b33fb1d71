"""``segnas evaluate``: mIoU, per-class IoU and pixel accuracy of a trained checkpoint."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_data_options, add_device_options,
                                     add_quiet_option, data_options, data_sources, nonnegative_int,
                                     positive_int)

HELP = "mIoU, per-class IoU, pixel accuracy of a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p, image_size=None, data=None)
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="seed of the synthetic images and of a pool folder's train/val cut "
                   "(default: the training run's)")
    add_quiet_option(p)
    p.add_argument("--checkpoint", required=True, help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--split", choices=("train", "val", "test", "all"), default="val",
                   help="which part of --data: a folder's own split, its random train/val cut, "
                   "or all of it; default %(default)s")
    p.add_argument("--num-images", type=positive_int, default=None,
                   help="images to evaluate: how many synthetic ones (default 1000 train, 200 val) "
                   "or a cap on a folder's split")
    p.add_argument("--out", help="metrics JSON (default: evaluation.json beside the checkpoint)")
    add_device_options(p)


def run(args) -> int:
    from segnas_lite.data.concat import open_datasets
    from segnas_lite.data.splits import dataset_meta, evaluation_split
    from segnas_lite.runio import atomic_write_text
    from segnas_lite.train.distributed import resolve_device
    from segnas_lite.train.engine import evaluate
    from segnas_lite.zoo import load_trained, saved_data
    model, state = load_trained(args.checkpoint)  # read onto the CPU, wherever it trained
    model.to(resolve_device(args.device))
    saved = saved_data(state)
    source, split = evaluation_split(saved, data=data_sources(args, default=None), split=args.split)
    image_size = args.image_size or saved.get("image_size") or 256
    seed = args.seed if args.seed is not None else state.get("train_config", {}).get("seed", 0)
    split_seed = args.split_seed if args.split_seed is not None else saved.get("split_seed")
    dataset = open_datasets([source] if isinstance(source, str) else source, split=split,
                            image_size=image_size, seed=seed, split_seed=split_seed,
                            length=args.num_images, **data_options(args, saved))
    num_classes, class_names = dataset_meta(dataset)
    if num_classes != state["num_classes"]:
        raise CLIError(f"the checkpoint predicts {state['num_classes']} classes but {source} "
                       f"is read with {num_classes}: give --num-classes/--mask-mapping as in training")
    print(f"evaluating on {source} ({split}, {len(dataset)} images at {image_size} px)")
    metrics = evaluate(model, dataset, num_classes=num_classes, quiet=args.quiet).as_dict(class_names)
    print(f"mIoU {metrics['miou']:.4f}  pixel accuracy {metrics['pixel_accuracy']:.4f}")
    for name, iou in metrics["per_class_iou"].items():
        print(f"  {name:>12}: {'n/a' if iou is None else f'{iou:.4f}'}")
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("evaluation.json")
    atomic_write_text(out, json.dumps({"data": source, "split": split, "images": len(dataset),
                                       "image_size": image_size, **metrics}, indent=2))
    print(f"wrote {out}")
    return 0

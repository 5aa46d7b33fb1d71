"""The ``segnas`` command: train, evaluate, predict, search, export, data check, a quick demo.

Each sub-command is a pair: ``add_<name>_arguments(parser)`` declares its options and
``cmd_<name>(args)`` runs it. ``build_parser`` only wires the pairs together; ``main`` parses and
turns the package's named errors into one readable line and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from segnas_lite.errors import SegnasError
from segnas_lite import __version__
from segnas_lite.zoo import (available_models, build_from_info, load_trained,
                             saved_data)
from segnas_lite.runio import (atomic_write_text,
                    load_checkpoint, progress)


class CLIError(SegnasError):
    """A problem with the command line (bad path, conflicting options)."""


# --------------------------------------------------------------------------- numbers, checked
def _number(kind, text: str, *, low=None, high=None, low_open=False, what: str):
    """Parse ``text`` as ``kind`` inside [low, high] (or (low, ...) with ``low_open``); argparse
    prints the message with the option's name and exits with status 2, never a traceback."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value != value or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, low=1, what="an integer >= 1")


def nonnegative_int(text: str) -> int:
    return _number(int, text, low=0, what="an integer >= 0")


def image_side(text: str) -> int:
    return _number(int, text, low=16, high=4096, what="a side in pixels, 16..4096")


def positive_float(text: str) -> float:
    return _number(float, text, low=0.0, low_open=True, high=float("inf"), what="a number > 0")


def nonnegative_float(text: str) -> float:
    return _number(float, text, low=0.0, high=float("inf"), what="a number >= 0")


def fraction(text: str) -> float:
    return _number(float, text, low=0.0, high=1.0, what="a number in 0..1")


def class_count(text: str) -> int:
    return _number(int, text, low=1, high=255, what="a number of classes, 1..255")


def mask_value(text: str) -> int:
    return _number(int, text, low=0, high=65535, what="a raw mask value, 0..65535")


def _mapping(text: str) -> dict[int, int]:
    from segnas_lite.data import DatasetError, parse_mask_mapping
    try:
        return parse_mask_mapping(text)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _names(text: str) -> tuple[str, ...]:
    from segnas_lite.data import DatasetError, parse_class_names
    try:
        return parse_class_names(text)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --------------------------------------------------------------------------- shared option groups
def add_data_options(p: argparse.ArgumentParser, *, image_size: int | None = 256,
                     source: bool = True, val_data: bool = False) -> None:
    """``--data`` and ``--image-size`` (when ``source``), then the class set of a folder."""
    if source:
        p.add_argument("--data", default=None if image_size is None else "synthetic",
                       help="'synthetic' (portraits), 'synthetic-scenes' or a dataset folder "
                       "(split folders train/ + trainannot/ or images/<split>/ + masks/<split>/, "
                       "images/ + masks/, people, Pascal VOC, Cityscapes)" +
                       ("; default: the training run's" if image_size is None else
                        "; default %(default)s"))
        p.add_argument("--image-size", type=image_side, default=image_size,
                       help="square side the images are resized to (pixels)" +
                       ("; default: the training run's" if image_size is None else
                        "; default %(default)s"))
    if val_data:
        p.add_argument("--val-data", metavar="PATH", default=None,
                       help="a separate validation folder (its val split if it has one, else all "
                       "of it); --data is then used whole for training")
    group = p.add_argument_group("class set of a folder (saved with the run)")
    group.add_argument("--num-classes", type=class_count, default=None,
                       help="number of classes (default: the layout's own; 2 for images/ + masks/)")
    group.add_argument("--ignore-index", type=mask_value, default=None,
                       help="raw mask value meaning 'no label' (default 255; SegNet's CamVid: 11)")
    group.add_argument("--mask-mapping", type=_mapping, default=None, metavar="RAW:CLASS,...",
                       help="raw mask value -> class, e.g. '0:0,255:1'; RAW:ignore drops a value")
    group.add_argument("--unmapped", choices=("error", "ignore"), default=None,
                       help="a mask value outside the class set: stop naming the file (error, the "
                       "default) or carry no loss there (ignore)")
    group.add_argument("--class-names", type=_names, default=None, metavar="A,B,...",
                       help="one name per class, comma-separated (shown in per-class IoU)")


def data_options(args, saved: dict | None = None) -> dict:
    """The class set from the flags, unset ones from a saved run (``saved``): open_dataset kwargs."""
    saved = dict(saved or {})
    flags = {"num_classes": args.num_classes, "ignore_index": args.ignore_index,
             "mask_mapping": args.mask_mapping, "unmapped": args.unmapped,
             "class_names": args.class_names}
    out = {key: value if value is not None else saved.get(key) for key, value in flags.items()}
    if out["mask_mapping"] is not None:
        out["mask_mapping"] = {int(k): int(v) for k, v in out["mask_mapping"].items()}
    if out["class_names"] is not None:
        out["class_names"] = tuple(out["class_names"])
    if out["ignore_index"] is None:
        out.pop("ignore_index")
    if out["unmapped"] is None:
        out.pop("unmapped")
    return out


def add_seed_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help=f"random seed of {what}; default %(default)s")


def add_quiet_option(p: argparse.ArgumentParser, *, what: str = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def add_overwrite_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_teacher_options(p: argparse.ArgumentParser, *, into: str) -> None:
    """``--teacher CHECKPOINT`` and ``--distill-weight W`` (distill.py; Hinton et al., 2015)."""
    p.add_argument("--teacher", default=None, metavar="CHECKPOINT",
                   help=f"a `segnas train` checkpoint whose soft masks are distilled into {into}")
    p.add_argument("--distill-weight", type=nonnegative_float, default=None,
                   help="weight of the distillation term (default 0.5 with --teacher)")


def add_model_option(p: argparse.ArgumentParser, *, help: str, **kwargs) -> None:
    """``--model NAME``, one of ``segnas_lite.zoo.MODELS`` (the list ``segnas models`` prints)."""
    names = available_models()
    p.add_argument("--model", choices=names, metavar="NAME",
                   help=f"{help}; one of: {', '.join(names)}", **kwargs)


# --------------------------------------------------------------------------- shared helpers
def _datasets(args, augment=None):
    """(augmented train split, validation split, the ``data_info`` a run saves); ``augment``
    defaults to ``PairedAugment()``. With
    ``--val-data`` the training folder is read whole (or its own train split) and the validation
    folder gives its val split, else all of it."""
    from segnas_lite.data import PairedAugment, find_layout, open_dataset
    options = data_options(args)
    refuse_class_set_for_synthetic(args)
    common = dict(image_size=args.image_size, seed=args.seed, **options)
    val_source, val_split, train_split = args.data, "val", "train"
    if args.val_data:
        val_source = args.val_data
        val_split = _val_split_of(args.val_data)
        if args.data not in ("synthetic", "synthetic-scenes"):
            train_split = "train" if "train" in _own_splits(find_layout(args.data)) else "all"
    train_set = open_dataset(args.data, split=train_split, augment=augment or PairedAugment(),
                             length=args.train_size, **common)
    synthetic = val_source in ("synthetic", "synthetic-scenes")
    val_length = (max(16, (args.train_size or 256) // 8) if synthetic or args.train_size
                  else None)  # a folder's whole val split, unless --train-size caps the run
    val_set = open_dataset(val_source, split=val_split, length=val_length, **common)
    num_classes, class_names = dataset_meta(train_set)
    val_classes, _ = dataset_meta(val_set)
    if val_classes != num_classes:
        raise CLIError(f"{args.data} has {num_classes} classes but the validation data "
                       f"{val_source} has {val_classes}: give --num-classes for both")
    info = {"data": _source_text(args.data), "val_data": _source_text(args.val_data),
            "image_size": args.image_size, "num_classes": num_classes,
            "class_names": list(class_names) if class_names else None,
            **{k: v for k, v in options.items() if k not in ("num_classes", "class_names")}}
    if info.get("mask_mapping") is not None:
        info["mask_mapping"] = {str(k): v for k, v in info["mask_mapping"].items()}
    return train_set, val_set, info


def refuse_class_set_for_synthetic(args) -> None:
    """Synthetic data has its own classes: a class-set flag there would be silently ignored."""
    given = [flag for flag, value in (("--num-classes", args.num_classes),
                                      ("--ignore-index", args.ignore_index),
                                      ("--mask-mapping", args.mask_mapping),
                                      ("--unmapped", args.unmapped),
                                      ("--class-names", args.class_names)) if value is not None]
    if given and args.data in ("synthetic", "synthetic-scenes"):
        raise CLIError(f"{args.data} data has its own classes: {', '.join(given)} applies to "
                       "a dataset folder (--data PATH)")


def _own_splits(layout) -> tuple[str, ...]:
    return tuple(layout.split_dirs) if layout.own_splits else ()


def _source_text(source: str | None) -> str | None:
    """A data source as saved with a run: names as they are, folders as absolute paths."""
    if source is None or source in ("synthetic", "synthetic-scenes"):
        return source
    return str(Path(source).resolve())


def scan_before_training(*datasets, quiet: bool) -> None:
    """Every mask of the datasets against the class set, before the first step (``data.check``)."""
    from segnas_lite.data.check import scan_masks
    for dataset in datasets:
        scan_masks(dataset, quiet=quiet)


def dataset_meta(dataset) -> tuple[int, tuple[str, ...] | None]:
    """(num_classes, class_names) of a dataset or of the dataset under a ``Subset``."""
    base = getattr(dataset, "dataset", dataset)
    return base.num_classes, getattr(base, "class_names", None)


def _model_info(args) -> dict:
    """What to build: the child of ``--genotype`` when given, else ``--model``."""
    if args.genotype:
        from segnas_lite.nas.space import Genotype
        genotype = Genotype.load(args.genotype)
        return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}
    if args.model == "nas_child":
        raise CLIError("nas_child is the child of a searched genotype: pass --genotype FILE")
    return {"name": args.model, "kwargs": {}}


# --------------------------------------------------------------------------- train
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p, val_data=True)
    add_seed_option(p, what="the weights, batch order, augmentation and the data (synthetic "
                    "images, a folder's train/val split)")
    add_quiet_option(p)
    add_model_option(p, default="fast_scnn", help="model to train (default %(default)s)")
    p.add_argument("--genotype", help="genotype.json from `segnas search`: train that child "
                   "(instead of --model)")
    p.add_argument("--recipe", choices=("auto", "classic", "people"), default="auto",
                   help="training recipe (segnas_lite/train/recipes.py): people, measured on real photos "
                   "by benchmarks/recipe.py; classic, the synthetic-data defaults; auto (default) "
                   "takes people for a people-like photo folder, classic otherwise. The flags "
                   "below override single settings")
    p.add_argument("--epochs", type=positive_int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: the recipe's")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate; default: the recipe's")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default=None,
                   help="sgd (momentum 0.9, Nesterov) or adamw; default: the recipe's")
    p.add_argument("--schedule", choices=("poly", "cosine"), default=None,
                   help="learning-rate decay: poly, lr * (1 - t/T)^0.9, or cosine; "
                   "default: the recipe's")
    p.add_argument("--augment", choices=("light", "default", "strong"), default=None,
                   help="augmentation strength (PairedAugment.preset); default: the recipe's")
    p.add_argument("--crop", type=positive_int, default=None, metavar="N",
                   help="train on random N x N windows of the --image-size images; default: the "
                   "recipe's")
    p.add_argument("--loss", choices=("ce", "ohem", "boundary"), default=None,
                   help="cross-entropy, OHEM (hardest 25%% of pixels) or boundary-weighted; "
                   "default: the recipe's")
    add_teacher_options(p, into="this model")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help="training images: how many synthetic ones (default 1000) or a cap on a "
                   "folder's train split; validation uses max(16, N/8) images (synthetic: 32 by "
                   "default; a folder: its whole val split unless N is given)")
    p.add_argument("--steps-per-epoch", type=positive_int, default=None,
                   help="cap on batches per epoch (default: the whole training set)")
    p.add_argument("--out", required=True,
                   help="run folder for checkpoint.pt, metrics.jsonl and config.json")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_overwrite_option(p, what="the run in --out")


def resolve_recipe(args):
    """The recipe of ``--recipe`` (``auto``: ``recipes.recipe_for`` the data) with the settings the
    user gave on the command line put over it."""
    from segnas_lite.train.recipes import get_recipe, recipe_for
    if args.recipe == "auto":
        recipe = recipe_for(args.data, class_names=tuple(args.class_names or ()) or None,
                            num_classes=args.num_classes or 2)
    else:
        recipe = get_recipe(args.recipe)
    given = {name: getattr(args, name) for name in ("epochs", "batch_size", "lr", "optimizer",
                                                    "schedule", "augment", "crop", "loss")
             if getattr(args, name) is not None}
    recipe = recipe.with_changes(**given)
    if recipe.crop is not None and recipe.crop > args.image_size:
        raise CLIError(f"--crop {recipe.crop} is larger than --image-size {args.image_size}")
    return recipe


def cmd_train(args) -> int:
    from segnas_lite.train.engine import train
    recipe = resolve_recipe(args)
    train_set, val_set, data_info = _datasets(args, augment=recipe.augmentation())
    scan_before_training(train_set, val_set, quiet=args.quiet)
    num_classes, class_names = dataset_meta(train_set)
    info = _model_info(args)
    teacher = load_trained(args.teacher, frozen=True)[0] if args.teacher else None
    if args.distill_weight is not None and teacher is None:
        raise CLIError("--distill-weight needs --teacher CHECKPOINT")
    torch.manual_seed(args.seed)
    model = build_from_info(info, num_classes)
    config = recipe.train_config(
        seed=args.seed, quiet=args.quiet, steps_per_epoch=args.steps_per_epoch,
        distill_weight=(0.5 if args.distill_weight is None else args.distill_weight)
        if teacher is not None else 0.0)
    print(f"recipe {recipe.name}: {config.epochs} epochs, lr {config.lr}, {config.schedule}, "
          f"{recipe.augment} augmentation{f', crop {recipe.crop}' if recipe.crop else ''}, "
          f"{config.loss} loss" + (f", distilled from {args.teacher}" if teacher else ""))
    result = train(model, train_set, val_set, config=config, num_classes=num_classes,
                   out_dir=args.out, resume=args.resume, overwrite=args.overwrite,
                   model_info=info, class_names=class_names, data_info=data_info,
                   teacher=teacher)
    final = result.final_metrics or {}
    print(f"trained {info['name']} for {config.epochs} epochs -> {Path(args.out) / 'checkpoint.pt'}")
    print(f"validation mIoU {final.get('miou', float('nan')):.4f}  "
          f"pixel accuracy {final.get('pixel_accuracy', float('nan')):.4f}")
    return 0


# --------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p, image_size=None)
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


def cmd_evaluate(args) -> int:
    from segnas_lite.data import open_dataset
    from segnas_lite.train.engine import evaluate
    model, state = load_trained(args.checkpoint)
    saved = saved_data(state)
    source = args.data or saved.get("data") or "synthetic"
    if args.split == "val" and not args.data and saved.get("val_data"):
        source, split = saved["val_data"], _val_split_of(saved["val_data"])
    else:
        split = args.split
    image_size = args.image_size or saved.get("image_size") or 256
    seed = args.seed if args.seed is not None else state.get("train_config", {}).get("seed", 0)
    dataset = open_dataset(source, image_size=image_size, split=split, seed=seed,
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


def _val_split_of(source: str) -> str:
    from segnas_lite.data import find_layout
    return "val" if "val" in _own_splits(find_layout(source)) else "all"


# --------------------------------------------------------------------------- predict
def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--model", help="OpenVINO IR (model.xml) from `segnas export`")
    p.add_argument("--image-size", type=image_side, default=None,
                   help="with --checkpoint: the square side each photo is resized to for the "
                   "model (default: the training run's, else the photo's own size); an IR uses "
                   "its own input size")
    p.add_argument("--out", required=True, help="folder for IMAGE_mask.png and IMAGE_overlay.png")
    add_overwrite_option(p, what="mask and overlay PNGs that exist in --out")


def _segmenter(args):
    """``segment(x)``: (1, 3, H, W) normalised image -> (H, W) class indices, from --checkpoint
    (PyTorch) or --model (OpenVINO)."""
    if args.model:
        from segnas_lite.deploy.export import OpenVINOPredictor
        predictor = OpenVINOPredictor(args.model)
        return lambda x: predictor(x).argmax(1)[0]
    import torch.nn.functional as F
    model, state = load_trained(args.checkpoint)
    size = args.image_size or saved_data(state).get("image_size")

    def segment(x: torch.Tensor):
        """Logits at the model's working size, resized back to the photo's own size."""
        small = F.interpolate(x, size=(size, size), mode="bilinear") if size else x
        logits = F.interpolate(model(small), size=x.shape[-2:], mode="bilinear")
        return logits.argmax(1)[0].numpy()
    return segment


def cmd_predict(args) -> int:
    import numpy as np
    from PIL import Image
    from segnas_lite.data import denormalize, load_image
    from segnas_lite.data.palette import colorize, overlay
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


def _class_shares(mask, names) -> str:
    """"23.4% person" for two classes, else the share of every class present, largest first."""
    import numpy as np
    counts = np.bincount(mask.ravel(), minlength=len(names) if names else 2)
    label = (lambda i: names[i] if names and i < len(names) else f"class {i}")
    if len(counts) <= 2:
        return f"{100 * counts[1:].sum() / mask.size:.1f}% {label(1) if names else 'foreground'}"
    order = [int(i) for i in np.argsort(-counts) if counts[i]]
    return ", ".join(f"{label(i)} {100 * counts[i] / mask.size:.1f}%" for i in order[:6])


# --------------------------------------------------------------------------- demo
def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    from segnas_lite.teaching.demo import DemoConfig
    p.add_argument("--image-size", type=image_side, default=DemoConfig.image_size,
                   help="square side of the synthetic portraits; default %(default)s")
    p.add_argument("--epochs", type=positive_int, default=DemoConfig.epochs, help="default %(default)s")
    p.add_argument("--train-size", type=positive_int, default=DemoConfig.train_size,
                   help="synthetic training portraits (validation: 32); default %(default)s")
    p.add_argument("--lr", type=positive_float, default=DemoConfig.lr, help="default %(default)s")
    add_seed_option(p, what="the weights, batch order and search (the portraits "
                    "are fixed)")
    p.add_argument("--out", default="runs/demo",
                   help="folder for the runs, figures and demo_summary.json; default %(default)s")
    add_overwrite_option(p, what="the results in --out")
    p.add_argument("--skip-search", action="store_true", help="no NAS step (Fast-SCNN only)")
    p.add_argument("--skip-export", action="store_true",
                   help="no OpenVINO step (no IR, parity check or OpenVINO timings)")
    add_quiet_option(p, what="no progress bars or search epoch lines")


def cmd_demo(args) -> int:
    """Train Fast-SCNN, export it, search, retrain the child, print the table (``demo.run``)."""
    from segnas_lite.teaching import demo
    config = demo.DemoConfig(image_size=args.image_size, epochs=args.epochs,
                             train_size=args.train_size, lr=args.lr, seed=args.seed,
                             skip_search=args.skip_search, skip_export=args.skip_export,
                             quiet=args.quiet)
    demo.run(args.out, config, overwrite=args.overwrite)
    return 0


# --------------------------------------------------------------------------- export
def add_export_arguments(p: argparse.ArgumentParser) -> None:
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


def cmd_export(args) -> int:
    """Write an OpenVINO IR, then print f32 parity and default-precision mask agreement."""
    from segnas_lite.deploy.export import check_parity, to_openvino
    if args.checkpoint:
        model, _ = load_trained(args.checkpoint)
    elif args.genotype or args.model:
        info = _model_info(args)
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


# --------------------------------------------------------------------------- notebooks
def add_notebooks_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUTDIR", help="folder for the executed copies")
    p.add_argument("--quick", action="store_true",
                   help="every notebook in its quick mode (sets SEGNAS_QUICK=1)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the repository's)")
    p.add_argument("--cell-timeout", type=positive_int, default=600,
                   help="seconds one cell may run before the run stops and names it (a stalled "
                   "kernel fails instead of waiting forever); default %(default)s")
    add_overwrite_option(p, what="executed copies that exist in OUTDIR")
    add_quiet_option(p)


def cmd_notebooks(args) -> int:
    """Execute every numbered notebook in order with papermill (an instructor's dry run)."""
    import os
    import papermill
    from segnas_lite.teaching.notebook_runner import execute_notebook
    source = Path(args.notebooks) if args.notebooks else Path(__file__).resolve().parents[1] / "notebooks"
    paths = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise CLIError(f"no numbered notebooks (00_*.ipynb ...) in {source}; pass --notebooks DIR")
    out = Path(args.out)
    clash = [str(out / p.name) for p in paths if (out / p.name).exists()]
    if clash and not args.overwrite:
        raise CLIError(f"{clash[0]} exists; pass --overwrite or choose another OUTDIR")
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        os.environ["SEGNAS_QUICK"] = "1"  # inherited by the kernels: every notebook's quick mode
    times, failed = [], None
    for path in progress(paths, quiet=args.quiet, desc="notebooks"):
        started = time.perf_counter()
        try:
            execute_notebook(path, out / path.name, cwd=source, cell_timeout=args.cell_timeout)
        except papermill.PapermillExecutionError as exc:
            failed = (path.name, f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
        except TimeoutError as exc:  # nbclient's CellTimeoutError: a stalled or too slow cell
            failed = (path.name, f"a cell ran over {args.cell_timeout} s: {exc}")
        times.append((path.name, time.perf_counter() - started))
        if failed:
            break
    print(f"\n{'notebook':<34}{'seconds':>9}")
    for name, seconds in times:
        print(f"{name:<34}{seconds:>9.1f}")
    print(f"{'total':<34}{sum(t for _, t in times):>9.1f}   (executed copies in {out})")
    if failed:
        name, what = failed
        print(f"\n{name} failed, {what}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- data
def add_data_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="read every image/mask pair of a folder and report "
                           "problems and class shares (exit status 1 on errors)",
                           description="read every image/mask pair of a folder and report "
                           "problems and class shares (exit status 1 on errors)")
    check.add_argument("path", metavar="PATH", help="the dataset folder")
    add_data_options(check, source=False)
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    add_quiet_option(check)


def cmd_data(args) -> int:
    """``segnas data check PATH``: the data doctor (``data.check.check_folder``)."""
    from segnas_lite.data.check import check_folder
    report = check_folder(args.path, quiet=args.quiet, **data_options(args))
    print(report.to_text())
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.json}")
    return 1 if report.errors else 0


# --------------------------------------------------------------------------- models
def add_models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-classes", type=class_count, default=2,
                   help="output classes (sets the head's size); default %(default)s")
    p.add_argument("--image-size", type=image_side, default=256,
                   help="square input side for the FLOP count; default %(default)s")


def cmd_models(args) -> int:
    """List the models with their parameter count and FLOPs (reproduces the README's figures)."""
    from segnas_lite.zoo import build_model
    from segnas_lite.models.summary import summarize
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


# --------------------------------------------------------------------------- parser and main
def _add_command(sub, name: str, help: str, add_arguments, run) -> None:
    p = sub.add_parser(name, help=help, description=help)
    add_arguments(p)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segnas", description="Real-time semantic segmentation on the CPU: train, evaluate, "
        "predict, search (ProxylessNAS), export (OpenVINO), demo.")
    parser.add_argument("--version", action="version", version=f"segnas_lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_command(sub, "train", "train a model and checkpoint every epoch",
                 add_train_arguments, cmd_train)
    _add_command(sub, "evaluate", "mIoU, per-class IoU, pixel accuracy of a checkpoint",
                 add_evaluate_arguments, cmd_evaluate)
    _add_command(sub, "predict", "mask and overlay PNGs for images",
                 add_predict_arguments, cmd_predict)
    _add_command(sub, "demo", "the quick end-to-end job on synthetic data",
                 add_demo_arguments, cmd_demo)
    from segnas_lite.cli.nas import add_latency_arguments, add_search_arguments, cmd_latency, cmd_search
    _add_command(sub, "search", "ProxylessNAS search under a latency budget",
                 add_search_arguments, cmd_search)
    _add_command(sub, "latency", "build and validate the latency predictor for a deployment target",
                 add_latency_arguments, cmd_latency)
    _add_command(sub, "export", "OpenVINO IR export with a parity check",
                 add_export_arguments, cmd_export)
    _add_command(sub, "notebooks", "execute the notebook sequence (workshop dry run)",
                 add_notebooks_arguments, cmd_notebooks)
    _add_command(sub, "models", "list the models with parameters and FLOPs",
                 add_models_arguments, cmd_models)
    _add_command(sub, "data", "check a dataset folder before training (segnas data check PATH)",
                 add_data_arguments, cmd_data)
    from segnas_lite.cli.video import (add_replace_background_arguments, add_video_arguments,
                            cmd_replace_background, cmd_video)
    _add_command(sub, "replace-background", "cut people out of photos with soft edges and put "
                 "them on a new background", add_replace_background_arguments,
                 cmd_replace_background)
    _add_command(sub, "video", "segment a video frame by frame (smoothed, optionally a new "
                 "background) and report FPS and flicker", add_video_arguments, cmd_video)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SegnasError, OSError) as exc:  # every named error of the package, and the OS's
        print(f"segnas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

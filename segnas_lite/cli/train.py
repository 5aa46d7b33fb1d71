"""``segnas train``: train a model under a recipe and checkpoint every epoch."""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_data_options, add_device_options,
                                     add_model_option, add_overwrite_option, add_quiet_option,
                                     add_seed_option, add_teacher_options, class_set_flags,
                                     data_options, data_sources, join_processes, model_info,
                                     positive_float, positive_int)

HELP = "train a model and checkpoint every epoch"
RECIPE_FLAGS = ("image_size", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment",
                "crop", "loss")  # the flags that override single settings of the recipe


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p, image_size=None, val_data=True, unset="the recipe's")
    add_seed_option(p, what="the weights, batch order, augmentation and the data (synthetic "
                    "images, a folder's train/val split)")
    add_quiet_option(p)
    add_model_option(p, default="fast_scnn", help="model to train (default %(default)s)")
    p.add_argument("--genotype", help="genotype.json from `segnas search`: train that child "
                   "(instead of --model)")
    p.add_argument("--recipe", choices=("auto", "classic", "people"), default="auto",
                   help="training recipe (segnas_lite/train/recipes.py): people, measured on real "
                   "photos by benchmarks/recipe.py; classic, the synthetic-data defaults; auto "
                   "(default) takes people for a people-like photo folder, classic otherwise. The "
                   "flags below override single settings")
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
    p.add_argument("--soft-teacher", default=None, metavar="DIR",
                   help="soft masks of another model saved as grey PNG files (DIR/<data folder "
                   "name>/<photo path>.png, p(class 1) x 255), distilled like a --teacher's "
                   "output: a teacher you cannot import (data/soft_targets.py)")
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
    add_device_options(p, training=True)


def _recipe(args):
    """The recipe of ``--recipe`` with the settings given on the command line put over it."""
    from segnas_lite.train.recipes import choose_recipe
    sources = data_sources(args, default="synthetic")
    first = sources if isinstance(sources, str) else sources[0]  # the recipe follows the first
    recipe = choose_recipe(args.recipe, source=first, num_classes=args.num_classes,
                           class_names=tuple(args.class_names or ()) or None)
    given = {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None}
    if "epochs" in given:
        given["steps"] = None  # --epochs fixes the epochs: no budget of batches over it
    recipe = recipe.with_changes(**given)
    if recipe.crop is not None and recipe.crop > recipe.image_size:
        raise CLIError(f"--crop {recipe.crop} is larger than --image-size {recipe.image_size}")
    return recipe


def run(args) -> int:
    import torch
    from segnas_lite.data.splits import (as_list, dataset_meta, refuse_class_set_for_synthetic,
                                         scan_before_training, training_splits)
    from segnas_lite.train.recipes import train_with_recipe
    from segnas_lite.zoo import build_from_info, load_trained
    ctx = join_processes(args)  # under torchrun: rank 0 alone prints (and writes, engine.py)
    quiet = args.quiet or not ctx.is_main
    say = print if ctx.is_main else (lambda *a, **k: None)
    recipe = _recipe(args)
    sources = data_sources(args, default="synthetic")
    refuse_class_set_for_synthetic(sources, class_set_flags(args))
    train_set, val_set, data_info = training_splits(
        sources, image_size=recipe.image_size, seed=args.seed, class_set=data_options(args),
        val_data=args.val_data, train_size=args.train_size, augment=recipe.augmentation(),
        split_seed=args.split_seed)
    scan_before_training(train_set, val_set, quiet=quiet)
    num_classes, class_names = dataset_meta(train_set)
    info = model_info(args)
    teacher = load_trained(args.teacher, frozen=True)[0] if args.teacher else None
    if teacher is not None and args.soft_teacher:
        raise CLIError("--teacher and --soft-teacher: one teacher at a time, drop one")
    if args.soft_teacher:  # a teacher's saved soft masks ride with the training photos
        from segnas_lite.data.soft_targets import SoftTargets
        train_set = SoftTargets(train_set, args.soft_teacher, sources=as_list(sources))
    distilled = teacher is not None or bool(args.soft_teacher)
    if args.distill_weight is not None and not distilled:
        raise CLIError("--distill-weight needs --teacher CHECKPOINT or --soft-teacher DIR")
    if args.distill_weight is not None and args.distill_weight <= 0:
        raise CLIError(f"--distill-weight {args.distill_weight:g} would ignore the teacher: give "
                       "a weight above 0 (default 0.5), or drop the teacher")
    torch.manual_seed(args.seed)
    model = build_from_info(info, num_classes)
    config = recipe.train_config(
        seed=args.seed, quiet=quiet, train_size=len(train_set),
        steps_per_epoch=args.steps_per_epoch, device=args.device,
        amp=args.amp, sync_bn=args.sync_bn,
        distill_weight=(0.5 if args.distill_weight is None else args.distill_weight)
        if distilled else 0.0)
    pretraining = (f", {recipe.synthetic_steps} synthetic pretraining steps"
                   if recipe.synthetic_steps else "")
    say(f"recipe {recipe.name}: {config.epochs} epochs, lr {config.lr}, {config.schedule}, "
        f"{recipe.augment} augmentation{f', crop {recipe.crop}' if recipe.crop else ''}, "
        f"{config.loss} loss{pretraining}"
        + (f", distilled from {args.teacher or args.soft_teacher}" if distilled else ""))
    result = train_with_recipe(model, train_set, val_set, recipe, config=config,
                               num_classes=num_classes, out_dir=args.out, resume=args.resume,
                               overwrite=args.overwrite, model_info=info, class_names=class_names,
                               data_info=data_info, teacher=teacher)
    final = result.final_metrics or {}
    say(f"trained {info['name']} for {config.epochs} epochs -> {Path(args.out) / 'checkpoint.pt'}")
    say(f"validation mIoU {final.get('miou', float('nan')):.4f}  "
        f"pixel accuracy {final.get('pixel_accuracy', float('nan')):.4f}")
    return 0

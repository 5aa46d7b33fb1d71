"""The ``segnas`` command: train, evaluate, predict, search, export, a quick end-to-end demo.

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

from . import __version__
from .data import DatasetError
from .models import UnknownModelError, available_models
from .nas import GenotypeError, InfeasibleBudgetError
from .nas.search import SearchConfigError
from .nas.latency import LatencyError
from .timing import TimingError
from .runio import (CheckpointError, RunDirectoryError, atomic_write_text, load_checkpoint,
                    progress)


class CLIError(Exception):
    """A problem with the command line (bad path, conflicting options)."""


# The errors ``main`` prints as one line (exit status 2) instead of a traceback.
PACKAGE_ERRORS = (CLIError, CheckpointError, RunDirectoryError, DatasetError, UnknownModelError,
                  GenotypeError, InfeasibleBudgetError, SearchConfigError, LatencyError,
                  TimingError, FileNotFoundError, FileExistsError)


# --------------------------------------------------------------------------- shared option groups
def add_data_options(p: argparse.ArgumentParser, *, image_size: int = 256) -> None:
    p.add_argument("--data", default="synthetic",
                   help="'synthetic' (portraits), 'synthetic-scenes' or a dataset folder (people, "
                   "Pascal VOC, Cityscapes, or images/ + masks/); default %(default)s")
    p.add_argument("--image-size", type=int, default=image_size,
                   help="square side the images are resized to (pixels); default %(default)s")


def add_seed_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--seed", type=int, default=0, help=f"random seed of {what}; default %(default)s")


def add_quiet_option(p: argparse.ArgumentParser, *, what: str = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def add_overwrite_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_model_option(p: argparse.ArgumentParser, *, help: str, **kwargs) -> None:
    """``--model NAME``, one of ``segnas_lite.models.MODELS`` (the list ``segnas models`` prints)."""
    names = available_models()
    p.add_argument("--model", choices=names, metavar="NAME",
                   help=f"{help}; one of: {', '.join(names)}", **kwargs)


# --------------------------------------------------------------------------- shared helpers
def _datasets(source: str, image_size: int, seed: int, train_size: int | None):
    """(augmented train split, validation split of max(16, train_size / 8) images)."""
    from .data import PairedAugment, open_dataset
    train_set = open_dataset(source, image_size=image_size, split="train", seed=seed,
                             augment=PairedAugment(), length=train_size)
    val_set = open_dataset(source, image_size=image_size, split="val", seed=seed,
                           length=max(16, (train_size or 256) // 8))
    return train_set, val_set


def dataset_meta(dataset) -> tuple[int, tuple[str, ...] | None]:
    """(num_classes, class_names) of a dataset or of the dataset under a ``Subset``."""
    base = getattr(dataset, "dataset", dataset)
    return base.num_classes, getattr(base, "class_names", None)


def build_from_info(info: dict, num_classes: int) -> torch.nn.Module:
    """Rebuild a model from the ``model_info`` stored in a checkpoint."""
    from .models import build_model
    return build_model(info["name"], num_classes=num_classes, **info.get("kwargs", {}))


def load_trained(checkpoint: str) -> tuple[torch.nn.Module, dict]:
    state = load_checkpoint(checkpoint)
    if not state.get("model_info"):
        raise CLIError(f"{checkpoint} does not say which model it holds; was it written by "
                       "`segnas train`?")
    model = build_from_info(state["model_info"], state["num_classes"])
    model.load_state_dict(state["model"])
    return model.eval(), state


def _model_info(args) -> dict:
    """What to build: the child of ``--genotype`` when given, else ``--model``."""
    if args.genotype:
        from .nas.space import Genotype
        genotype = Genotype.load(args.genotype)
        return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}
    if args.model == "nas_child":
        raise CLIError("nas_child is the child of a searched genotype: pass --genotype FILE")
    return {"name": args.model, "kwargs": {}}


# --------------------------------------------------------------------------- train
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p)
    add_seed_option(p, what="the weights, batch order, augmentation and the data (synthetic "
                    "images, a folder's train/val split)")
    add_quiet_option(p)
    add_model_option(p, default="fast_scnn", help="model to train (default %(default)s)")
    p.add_argument("--genotype", help="genotype.json from `segnas search`: train that child "
                   "(instead of --model)")
    p.add_argument("--epochs", type=int, default=10, help="default %(default)s")
    p.add_argument("--batch-size", type=int, default=8, help="default %(default)s")
    p.add_argument("--lr", type=float, default=0.02, help="peak learning rate; default %(default)s")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (momentum 0.9, Nesterov) or adamw; default %(default)s")
    p.add_argument("--schedule", choices=("poly", "cosine"), default="poly",
                   help="learning-rate decay: poly, lr * (1 - t/T)^0.9, or cosine; "
                   "default %(default)s")
    p.add_argument("--train-size", type=int, default=None, metavar="N",
                   help="training images: how many synthetic ones (default 1000) or a cap on a "
                   "folder's train split; validation uses max(16, N/8) images (32 by default)")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="cap on batches per epoch (default: the whole training set)")
    p.add_argument("--out", required=True,
                   help="run folder for checkpoint.pt, metrics.jsonl and config.json")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_overwrite_option(p, what="the run in --out")


def cmd_train(args) -> int:
    from .engine import TrainConfig, train
    train_set, val_set = _datasets(args.data, args.image_size, args.seed, args.train_size)
    num_classes, class_names = dataset_meta(train_set)
    info = _model_info(args)
    torch.manual_seed(args.seed)
    model = build_from_info(info, num_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, schedule=args.schedule, seed=args.seed,
                         steps_per_epoch=args.steps_per_epoch, quiet=args.quiet)
    result = train(model, train_set, val_set, config=config, num_classes=num_classes,
                   out_dir=args.out, resume=args.resume, overwrite=args.overwrite,
                   model_info=info, class_names=class_names)
    final = result.final_metrics or {}
    print(f"trained {info['name']} for {args.epochs} epochs -> {Path(args.out) / 'checkpoint.pt'}")
    print(f"validation mIoU {final.get('miou', float('nan')):.4f}  "
          f"pixel accuracy {final.get('pixel_accuracy', float('nan')):.4f}")
    return 0


# --------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p)
    add_seed_option(p, what="the synthetic images and a folder's train/val split (use the "
                    "training seed)")
    add_quiet_option(p)
    p.add_argument("--checkpoint", required=True, help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--split", choices=("train", "val"), default="val", help="default %(default)s")
    p.add_argument("--num-images", type=int, default=None,
                   help="images to evaluate: how many synthetic ones (default 1000 train, 200 val) "
                   "or a cap on a folder's split")
    p.add_argument("--out", help="metrics JSON (default: evaluation.json beside the checkpoint)")


def cmd_evaluate(args) -> int:
    from .data import open_dataset
    from .engine import evaluate
    model, state = load_trained(args.checkpoint)
    dataset = open_dataset(args.data, image_size=args.image_size, split=args.split,
                           seed=args.seed, length=args.num_images)
    num_classes, class_names = dataset_meta(dataset)
    if num_classes != state["num_classes"]:
        raise CLIError(f"the checkpoint predicts {state['num_classes']} classes but {args.data} "
                       f"has {num_classes}")
    metrics = evaluate(model, dataset, num_classes=num_classes, quiet=args.quiet).as_dict(class_names)
    print(f"mIoU {metrics['miou']:.4f}  pixel accuracy {metrics['pixel_accuracy']:.4f}")
    for name, iou in metrics["per_class_iou"].items():
        print(f"  {name:>12}: {'n/a' if iou is None else f'{iou:.4f}'}")
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("evaluation.json")
    atomic_write_text(out, json.dumps({"data": args.data, "split": args.split, **metrics}, indent=2))
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- predict
def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--model", help="OpenVINO IR (model.xml) from `segnas export`")
    p.add_argument("--image-size", type=int, default=None,
                   help="with --checkpoint: the square side each photo is resized to for the "
                   "model (default: the photo's own size); an IR uses its own input size")
    p.add_argument("--out", required=True, help="folder for IMAGE_mask.png and IMAGE_overlay.png")
    add_overwrite_option(p, what="mask and overlay PNGs that exist in --out")


def _segmenter(args):
    """``segment(x)``: (1, 3, H, W) normalised image -> (H, W) class indices, from --checkpoint
    (PyTorch) or --model (OpenVINO)."""
    if args.model:
        from .export import OpenVINOPredictor
        predictor = OpenVINOPredictor(args.model)
        return lambda x: predictor(x).argmax(1)[0]
    import torch.nn.functional as F
    model, _ = load_trained(args.checkpoint)
    size = args.image_size

    def segment(x: torch.Tensor):
        """Logits at the model's working size, resized back to the photo's own size."""
        small = F.interpolate(x, size=(size, size), mode="bilinear") if size else x
        logits = F.interpolate(model(small), size=x.shape[-2:], mode="bilinear")
        return logits.argmax(1)[0].numpy()
    return segment


def cmd_predict(args) -> int:
    import numpy as np
    from PIL import Image
    from .data import denormalize, load_image
    from .viz import colorize, overlay
    if bool(args.checkpoint) == bool(args.model):
        raise CLIError("give exactly one of --checkpoint DIR/checkpoint.pt or --model MODEL.xml")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    segment = _segmenter(args)
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
        print(f"{path}: {100 * (mask > 0).mean():.1f}% foreground -> {targets['mask']}")
    return 0


# --------------------------------------------------------------------------- demo
def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    from .demo import DemoConfig
    p.add_argument("--image-size", type=int, default=DemoConfig.image_size,
                   help="square side of the synthetic portraits; default %(default)s")
    p.add_argument("--epochs", type=int, default=DemoConfig.epochs, help="default %(default)s")
    p.add_argument("--train-size", type=int, default=DemoConfig.train_size,
                   help="synthetic training portraits (validation: 32); default %(default)s")
    p.add_argument("--lr", type=float, default=DemoConfig.lr, help="default %(default)s")
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
    from . import demo
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
    p.add_argument("--num-classes", type=int, default=2,
                   help="output classes of an untrained export; default %(default)s")
    add_seed_option(p, what="the untrained weights")
    p.add_argument("--image-size", type=int, default=256,
                   help="square side of the traced input, the IR's fixed input unless --dynamic; "
                   "default %(default)s")
    p.add_argument("--out", required=True, help="DIR/model.xml (model.bin is written beside it)")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16-compressed)")
    p.add_argument("--dynamic", action="store_true", help="any input batch, height and width")
    add_overwrite_option(p, what="an IR that exists at --out")


def cmd_export(args) -> int:
    """Write an OpenVINO IR, then print f32 parity and default-precision mask agreement."""
    from .export import check_parity, to_openvino
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
    p.add_argument("--cell-timeout", type=int, default=600,
                   help="seconds one cell may run before the run stops and names it (a stalled "
                   "kernel fails instead of waiting forever); default %(default)s")
    add_overwrite_option(p, what="executed copies that exist in OUTDIR")
    add_quiet_option(p)


def cmd_notebooks(args) -> int:
    """Execute every numbered notebook in order with papermill (an instructor's dry run)."""
    import os
    import papermill
    from .notebook_runner import execute_notebook
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


# --------------------------------------------------------------------------- models
def add_models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-classes", type=int, default=2,
                   help="output classes (sets the head's size); default %(default)s")
    p.add_argument("--image-size", type=int, default=256,
                   help="square input side for the FLOP count; default %(default)s")


def cmd_models(args) -> int:
    """List the models with their parameter count and FLOPs (reproduces the README's figures)."""
    from .models import build_model
    from .summary import summarize
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
    from .cli_nas import add_latency_arguments, add_search_arguments, cmd_latency, cmd_search
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PACKAGE_ERRORS as exc:
        print(f"segnas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

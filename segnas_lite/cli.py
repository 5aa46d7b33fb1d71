"""The ``segnas`` command: train, evaluate, predict and a quick end-to-end demo.

Each sub-command is a small function ``cmd_<name>(args)``; ``main`` only parses arguments and
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


class CLIError(Exception):
    """A problem with the command line (bad path, conflicting options)."""


# --------------------------------------------------------------------------- shared helpers
def _datasets(source: str, image_size: int, seed: int, train_size: int | None,
              augment: bool = True):
    from .data import PairedAugment, open_dataset
    aug = PairedAugment() if augment else None
    train_set = open_dataset(source, image_size=image_size, split="train", seed=seed,
                             augment=aug, length=train_size)
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
    from .engine import load_checkpoint
    state = load_checkpoint(checkpoint)
    if not state.get("model_info"):
        raise CLIError(f"{checkpoint} does not say which model it holds; was it written by "
                       "`segnas train`?")
    model = build_from_info(state["model_info"], state["num_classes"])
    model.load_state_dict(state["model"])
    return model.eval(), state


def _model_info(args) -> dict:
    if getattr(args, "genotype", None):
        from .nas.space import Genotype
        genotype = Genotype.load(args.genotype)
        return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}
    return {"name": args.model, "kwargs": {}}


# --------------------------------------------------------------------------- commands
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


def cmd_evaluate(args) -> int:
    from .data import open_dataset
    from .engine import atomic_write_text, evaluate
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


def cmd_predict(args) -> int:
    import numpy as np
    from PIL import Image
    from .data import colorize, denormalize, load_image, overlay
    if bool(args.checkpoint) == bool(args.model):
        raise CLIError("give exactly one of --checkpoint DIR/checkpoint.pt or --model MODEL.xml")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        model, _ = load_trained(args.checkpoint)
        size = args.image_size

        def run(x: torch.Tensor):
            """Logits at the model's working size, resized back to the photo's own size."""
            import torch.nn.functional as F
            small = F.interpolate(x, size=(size, size), mode="bilinear") if size else x
            logits = F.interpolate(model(small), size=x.shape[-2:], mode="bilinear")
            return logits.argmax(1)[0].numpy()
    else:
        from .export import OpenVINOPredictor
        predictor = OpenVINOPredictor(args.model)
        run = lambda x: predictor(x).argmax(1)[0]  # noqa: E731
    for path in args.images:
        image = load_image(path)  # (3, H, W) at the photo's own size, normalised
        with torch.no_grad():
            mask = np.asarray(run(image[None]), dtype=np.uint8)
        stem = Path(path).stem
        targets = {"mask": out / f"{stem}_mask.png", "overlay": out / f"{stem}_overlay.png"}
        clash = [str(t) for t in targets.values() if t.exists()]
        if clash and not args.overwrite:
            raise CLIError(f"{clash[0]} exists; pass --overwrite or choose another --out")
        Image.fromarray(colorize(mask)).save(targets["mask"])
        blend = overlay(denormalize(image), mask)  # (H, W, 3) float in [0, 1]
        Image.fromarray((blend * 255).round().astype(np.uint8)).save(targets["overlay"])
        print(f"{path}: {100 * (mask > 0).mean():.1f}% foreground -> {out / (stem + '_mask.png')}")
    return 0


def cmd_demo(args) -> int:
    """The main job, on synthetic portraits, in a few minutes on 2 cores:

    1. train Fast-SCNN and evaluate it;
    2. export it to OpenVINO, check parity (f32) and time PyTorch / OpenVINO f32 / default precision;
    3. a quick ProxylessNAS search on the seed space under a latency budget;
    4. retrain the searched child with the same recipe, time it the same way;
    then print one comparison table and save figures to ``--out``.
    """
    from .data import SyntheticPortraits
    from .engine import TrainConfig, atomic_write_text, evaluate, predict, train
    from .export import benchmark_openvino, benchmark_torch, check_parity, to_openvino
    from .summary import summarize
    from .viz import alpha_heatmap, mask_grid, training_curves
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise CLIError(f"{out} already holds demo results; pass --overwrite or another --out")
    size = args.image_size
    train_set = SyntheticPortraits(length=args.train_size, image_size=size, seed=0)
    val_set = SyntheticPortraits(length=32, image_size=size, seed=1)
    config = TrainConfig(epochs=args.epochs, batch_size=8, lr=args.lr, seed=args.seed,
                         quiet=args.quiet)
    threads = torch.get_num_threads()

    def train_and_measure(label: str, info: dict, run_dir: Path) -> dict:
        torch.manual_seed(args.seed)
        model = build_from_info(info, 2)
        started = time.perf_counter()
        result = train(model, train_set, val_set, config=config, num_classes=2, out_dir=run_dir,
                       overwrite=True, model_info=info,
                       class_names=SyntheticPortraits.class_names)
        train_s = time.perf_counter() - started
        metrics = evaluate(model, val_set, num_classes=2, quiet=True)
        summary = summarize(model, input_size=(size, size))
        row = {"model": label, "params": summary.total_params, "gflops": summary.gflops,
               "torch_ms": benchmark_torch(model, input_size=(size, size), threads=threads,
                                           warmup=3, runs=15).median_ms,
               "train_s": round(train_s, 1), "miou": metrics.miou,
               "pixel_accuracy": metrics.pixel_accuracy}
        if not args.skip_export:
            xml = run_dir / "model.xml"
            to_openvino(model, input_size=(size, size), out_path=xml, overwrite=True)
            parity = check_parity(model, xml, precision="f32")
            print(parity.to_text())
            row["parity_f32"] = parity.max_abs_diff
            for precision in ("f32", "default"):
                row[f"ov_{precision}_ms"] = benchmark_openvino(
                    xml, precision=precision, threads=threads, warmup=3, runs=15).median_ms
        images, masks = zip(*(val_set[i] for i in range(4)))
        mask_grid(images, masks, predict(model, torch.stack(images)), num_classes=2).savefig(
            out / f"demo_predictions_{info['name']}.png", dpi=90)
        training_curves(result.history, title=label).savefig(
            out / f"demo_training_{info['name']}.png", dpi=90)
        return row

    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/3] training Fast-SCNN on {args.train_size} synthetic portraits at {size}px")
    rows = [train_and_measure("fast_scnn", {"name": "fast_scnn", "kwargs": {}}, out / "fast_scnn")]
    search_text = ""
    if not args.skip_search:
        from .nas.search import run_search
        print("[2/3] ProxylessNAS search (seed space, quick settings, hard latency constraint)")
        result = run_search(space="seed", data="synthetic", image_size=size, quick=True,
                            out_dir=out / "search", overwrite=True, seed=args.seed,
                            quiet=args.quiet, threads=threads)
        search_text = result.to_text()
        print(search_text)
        alpha_heatmap(result.history.alpha_matrix(-1), _space_ops("seed"),
                      genotype=result.genotype_budget,
                      title="op probabilities after the search").savefig(
            out / "demo_alpha.png", dpi=90)
        print("[3/3] retraining the searched child with the same recipe")
        info = {"name": "nas_child", "kwargs": {"genotype": result.genotype_budget.to_json()}}
        rows.append(train_and_measure("searched child", info, out / "searched_child"))
    atomic_write_text(out / "demo_summary.json", json.dumps(
        {"rows": rows, "image_size": size, "epochs": args.epochs, "threads": threads,
         "search": search_text}, indent=2))
    print()
    print(f"{'model':<16}{'params':>10}{'GFLOPs':>8}{'torch ms':>10}{'OV f32 ms':>11}"
          f"{'OV dflt ms':>11}{'train s':>9}{'mIoU':>7}{'pix acc':>9}")
    for row in rows:
        ov = [f"{row[k]:>11.2f}" if k in row else f"{'-':>11}" for k in ("ov_f32_ms", "ov_default_ms")]
        print(f"{row['model']:<16}{row['params']:>10,}{row['gflops']:>8.3f}{row['torch_ms']:>10.2f}"
              f"{ov[0]}{ov[1]}{row['train_s']:>9.1f}{row['miou']:>7.3f}{row['pixel_accuracy']:>9.3f}")
    print(f"\n(image size {size}, {args.epochs} epochs on {args.train_size} synthetic portraits, "
          f"batch 1 latency medians, {threads} threads; OV dflt = OpenVINO's default precision, "
          "bf16 on CPUs with AVX-512 BF16)")
    print(f"figures and runs: {out}/")
    return 0


def _space_ops(name: str) -> list[list[str]]:
    from .nas import get_space
    return [list(spec.ops) for spec in get_space(name).layers]

def cmd_export(args) -> int:
    """Write an OpenVINO IR, then print f32 parity and default-precision mask agreement."""
    from .export import check_parity, to_openvino
    if args.checkpoint:
        model, _ = load_trained(args.checkpoint)
    elif args.genotype:
        info = _model_info(args)
        print("note: no --checkpoint given, exporting the genotype's child with untrained weights")
        torch.manual_seed(args.seed)
        model = build_from_info(info, args.num_classes)
    elif args.model:
        torch.manual_seed(args.seed)
        model = build_from_info({"name": args.model}, args.num_classes)
        print(f"note: no --checkpoint given, exporting {args.model} with untrained weights")
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


def cmd_search(args) -> int:
    """ProxylessNAS search with the seed's two changes; writes genotype.json, history.json."""
    from .nas.search import run_search
    result = run_search(space=args.space, budget_ms=args.budget_ms, data=args.data,
                        image_size=args.image_size, out_dir=args.out, quick=args.quick,
                        constraint=args.constraint, resume=args.resume, overwrite=args.overwrite,
                        seed=args.seed, quiet=args.quiet)
    print(result.to_text())
    print(f"retrain the child: segnas train --genotype {Path(args.out) / 'genotype.json'} --out ...")
    return 0


def cmd_notebooks(args) -> int:
    """Execute every numbered notebook in order with papermill (an instructor's dry run)."""
    import os
    import papermill
    from .engine import progress
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
            papermill.execute_notebook(str(path), str(out / path.name), kernel_name="python3",
                                       cwd=str(source), progress_bar=False)
        except papermill.PapermillExecutionError as exc:
            failed = (path.name, exc)
        times.append((path.name, time.perf_counter() - started))
        if failed:
            break
    print(f"\n{'notebook':<34}{'seconds':>9}")
    for name, seconds in times:
        print(f"{name:<34}{seconds:>9.1f}")
    print(f"{'total':<34}{sum(t for _, t in times):>9.1f}   (executed copies in {out})")
    if failed:
        name, exc = failed
        print(f"\n{name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segnas", description="Real-time semantic segmentation on the CPU: train, evaluate, "
        "predict, search (ProxylessNAS), export (OpenVINO), demo.")
    parser.add_argument("--version", action="version", version=f"segnas_lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, *, data=True):
        if data:
            p.add_argument("--data", default="synthetic",
                           help="'synthetic', 'synthetic-scenes' or a dataset folder")
        p.add_argument("--image-size", type=int, default=256, help="square input side (pixels)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("train", help="train a model and checkpoint every epoch")
    common(p)
    p.add_argument("--model", default="fast_scnn", help="model name (see `segnas models`)")
    p.add_argument("--genotype", help="genotype.json from `segnas search` (trains that child)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--schedule", choices=("poly", "cosine"), default="poly")
    p.add_argument("--train-size", type=int, default=None,
                   help="synthetic training images (default 1000); ignored for folders")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--out", required=True, help="run folder for checkpoint.pt, metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="mIoU, per-class IoU, pixel accuracy of a checkpoint")
    common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val"), default="val")
    p.add_argument("--num-images", type=int, default=None, help="synthetic images to evaluate")
    p.add_argument("--out", help="metrics JSON (default: evaluation.json beside the checkpoint)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="mask and overlay PNGs for images")
    common(p, data=False)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--model", help="OpenVINO IR (model.xml) from `segnas export`")
    p.set_defaults(image_size=None)  # default: run at each photo's own size
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="the quick end-to-end job on synthetic data")
    p.add_argument("--model", default="fast_scnn")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--train-size", type=int, default=400)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--skip-search", action="store_true", help="no NAS step")
    p.add_argument("--skip-export", action="store_true", help="no OpenVINO step")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("search", help="ProxylessNAS search under a latency budget")
    common(p)
    p.set_defaults(image_size=128)
    p.add_argument("--space", choices=("seed", "proxyless", "tiny"), default="seed")
    p.add_argument("--budget-ms", type=float, default=None,
                   help="latency budget (ms); default: midway between fastest and slowest")
    p.add_argument("--constraint", choices=("predicted", "measured"), default="predicted",
                   help="check sampled subnets with the latency table or by measuring them")
    p.add_argument("--quick", action="store_true", help="the whole search in a few minutes")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="OpenVINO IR export with a parity check")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--genotype", help="genotype.json (exported untrained unless --checkpoint)")
    p.add_argument("--model", help="model name (exported untrained unless --checkpoint)")
    p.add_argument("--num-classes", type=int, default=2, help="for untrained exports")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--out", required=True, help="DIR/model.xml")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16)")
    p.add_argument("--dynamic", action="store_true", help="any input height and width")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("notebooks", help="execute the notebook sequence (workshop dry run)")
    p.add_argument("out", metavar="OUTDIR", help="folder for the executed copies")
    p.add_argument("--quick", action="store_true", help="every notebook in its quick mode")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the repository's)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_notebooks)

    p = sub.add_parser("models", help="list the models with parameters and FLOPs")
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--image-size", type=int, default=256)
    p.set_defaults(func=cmd_models)
    return parser


def cmd_models(args) -> int:
    """List the models with their parameter count and FLOPs (reproduces the README's figures)."""
    from .models import available_models, build_model
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .engine import CheckpointError, RunDirectoryError
    known: tuple[type[BaseException], ...] = (CLIError, CheckpointError, RunDirectoryError,
                                              FileNotFoundError, FileExistsError)
    from .models import UnknownModelError
    from .nas import GenotypeError, InfeasibleBudgetError
    from .nas.search import SearchConfigError
    known += (UnknownModelError, GenotypeError, InfeasibleBudgetError, SearchConfigError)
    try:
        from .data import DatasetError
        known += (DatasetError,)
    except ImportError:
        pass
    try:
        return args.func(args)
    except known as exc:
        print(f"segnas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

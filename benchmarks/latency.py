"""CPU latency and accuracy of every model: PyTorch eager vs OpenVINO f32 / default precision / INT8.

    python benchmarks/latency.py                    # 5 models x 256, 512 px (about 25-40 min, 2 cores)
    python benchmarks/latency.py --checkpoints runs # load runs/<model>/checkpoint.pt instead of training
    python benchmarks/latency.py --quick            # LR-ASPP small (+ searched) at 256 px (~2 min)

Rows: fast_scnn, lraspp_mobilenetv3_large, lraspp_mobilenetv3_small, mbv3_baseline (the MobileNetV3
block in every layer of the NAS macro) and ``searched`` (the child of ``--genotype``; skipped with a
note when that file does not exist).

Latency: batch 1, ``--threads`` threads, LATENCY hint, median of ``--runs`` synchronous runs after
warm-up (``segnas_lite.deploy.bench.benchmark_torch`` / ``benchmark_openvino``). Four ways to run each model:

- ``torch``:      PyTorch eager, float32.
- ``ov_f32``:     OpenVINO with ``INFERENCE_PRECISION_HINT=f32`` (numerically the same model).
- ``ov_default``: OpenVINO's own choice of precision (bfloat16 on a CPU with AVX-512 BF16 / AMX).
- ``ov_int8``:    NNCF post-training quantisation (MinMax ranges from ``--calib`` SyntheticPortraits
                  training images + fast bias correction), compiled with the default precision: the
                  quantised convolutions run in INT8, what is left runs like ``ov_default``.

Accuracy: mIoU needs trained weights, so each model is trained with one fixed short recipe on
SyntheticPortraits (SGD, poly schedule, batch 8, ``--train-steps`` steps at ``--train-size`` px) or
loaded from ``--checkpoints DIR/<model>/checkpoint.pt``. All four variants are evaluated on the same
held-out synthetic images (val seed) at each benchmark size; ``agree_*`` is the fraction of pixels
whose class equals the PyTorch FP32 prediction.

Cross-check: one row (``--crosscheck``, at the first size, OpenVINO f32) is also timed by OpenVINO's
``benchmark_app`` on the same IR with the same settings, and both figures are printed.
Busy guard: the four timings of a row are one block under ``timing.LoadMonitor`` (other processes,
the VM host, the CPU and OpenVINO speed probes); a busy block is timed again, up to
``--busy-retries`` times, and a row still busy says so in its ``busy`` column and in the JSON
(``busy_rows``): its timings are not figures to quote.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import PairedAugment, open_dataset  # noqa: E402
from segnas_lite.train.engine import TrainConfig, train  # noqa: E402
from segnas_lite.deploy.bench import benchmark_openvino, benchmark_torch  # noqa: E402
from segnas_lite.deploy.export import compile_ir, save_ir, to_openvino  # noqa: E402
from segnas_lite.deploy.openvino import CompileError  # noqa: E402
from segnas_lite.deploy.predictor import OpenVINOPredictor  # noqa: E402
from segnas_lite.deploy.parity import sample_images  # noqa: E402
from segnas_lite.deploy.quantize import quantize_int8  # noqa: E402
from segnas_lite.metrics import ConfusionMeter  # noqa: E402
from segnas_lite.zoo import build_model  # noqa: E402
from segnas_lite.runio import load_checkpoint  # noqa: E402
from segnas_lite.deploy.openvino import openvino_probe  # noqa: E402
from segnas_lite.timing import (BenchmarkAppError, BusyMachineWarning, LoadMonitor,  # noqa: E402
                                benchmark_app)

MODELS = ("fast_scnn", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small", "mbv3_baseline",
          "searched")
VARIANTS = ("torch", "ov_f32", "ov_default", "ov_int8")
NUM_CLASSES = 2


# --------------------------------------------------------------------------- models
def make_model(name: str, genotype_text: str | None) -> torch.nn.Module:
    """Build ``name``; the row ``searched`` is the NAS child of the genotype JSON text."""
    torch.manual_seed(0)
    if name == "searched":
        return build_model("nas_child", num_classes=NUM_CLASSES, genotype=genotype_text)
    return build_model(name, num_classes=NUM_CLASSES)


def trained_model(name: str, genotype_text: str | None, args) -> tuple[torch.nn.Module, str]:
    """The model with weights from ``--checkpoints`` or from the short training recipe."""
    model = make_model(name, genotype_text)
    if args.checkpoints:
        path = Path(args.checkpoints) / name / "checkpoint.pt"
        if path.is_file():
            model.load_state_dict(load_checkpoint(path)["model"])
            return model.eval(), str(path)
        print(f"  note: no {path}; training {name} with the short recipe instead", flush=True)
    train_set = open_dataset("synthetic", image_size=args.train_size, split="train", seed=0,
                             augment=PairedAugment(), length=args.train_steps * 8)
    config = TrainConfig(epochs=1, batch_size=8, lr=0.05, seed=0, quiet=True,
                         steps_per_epoch=args.train_steps)
    train(model, train_set, config=config, num_classes=NUM_CLASSES)
    return model.eval(), f"trained {args.train_steps} steps at {args.train_size} px"


# --------------------------------------------------------------------------- accuracy
@torch.no_grad()
def evaluate_variants(predictors: dict, dataset) -> dict:
    """mIoU of every predictor (images -> logits) and its pixel agreement with ``torch``'s masks."""
    meters = {name: ConfusionMeter(NUM_CLASSES) for name in predictors}
    agree = dict.fromkeys(predictors, 0)
    pixels = 0
    for images, masks in DataLoader(dataset, batch_size=8, shuffle=False):
        reference = None
        for name, predict in predictors.items():
            pred = torch.as_tensor(predict(images)).argmax(dim=1)  # (N, H, W)
            reference = pred if reference is None else reference  # ``torch`` comes first
            meters[name].update(pred, masks)
            agree[name] += int((pred == reference).sum())
        pixels += masks.numel()
    result = {}
    for name in predictors:
        result[f"miou_{name}"] = meters[name].compute().miou
        result[f"agree_{name}"] = agree[name] / pixels
    return result


# --------------------------------------------------------------------------- one row
def benchmark_row(name: str, model, size: int, args, calib_images: torch.Tensor) -> dict:
    """Latency of the four variants and their accuracy for ``model`` at ``size`` x ``size``."""
    timing = {"threads": args.threads, "warmup": args.warmup, "runs": args.runs}
    ov_model = to_openvino(model, input_size=(size, size))
    started = time.perf_counter()
    int8_model = quantize_int8(ov_model, calib_images, subset_size=len(calib_images))
    quantize_s = time.perf_counter() - started

    row = {"model": name, "size": size, "params": sum(p.numel() for p in model.parameters()),
           "notes": []}

    models = {"ov_f32": (ov_model, "f32"), "ov_default": (ov_model, "default"),
              "ov_int8": (int8_model, "default")}
    # the four timings of a row are compared with each other: they are taken in one block under the
    # busy guard, and the block is taken again (up to --busy-retries times) while it is busy
    busy_attempts = []
    for attempt in range(args.busy_retries + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BusyMachineWarning)  # recorded per attempt instead
            with LoadMonitor(what=f"{name} @ {size}", ov_probe=openvino_probe(args.threads)) as monitor:
                times = {"torch": benchmark_torch(model, input_size=(size, size), **timing)}
                for variant, (ir, precision) in models.items():
                    try:
                        times[variant] = benchmark_openvino(ir, precision=precision, **timing)
                    except CompileError as error:  # no kernel for a layer on this CPU: note it
                        times[variant] = None
                        note = f"{name} @ {size}: {variant} skipped: {error}"
                        if note not in row["notes"]:
                            row["notes"].append(note)
                            print(f"  note: {note}", flush=True)
        if not monitor.report.busy:
            break
        busy_attempts.append(monitor.report.to_dict())
        print(f"  {name} @ {size}: busy (attempt {attempt + 1}), timing again", flush=True)
    row["load"], row["busy"] = monitor.report.to_dict(), monitor.report.busy
    row["busy_attempts"] = busy_attempts  # every attempt the guard refused, kept
    predictors = {"torch": model}
    for variant, (ir, precision) in models.items():
        if times[variant] is not None:
            predictors[variant] = OpenVINOPredictor(ir, precision=precision, threads=args.threads)
    for variant, result in times.items():
        row[f"{variant}_ms"] = None if result is None else result.median_ms
        row[f"{variant}_fps"] = None if result is None else result.fps
    row["timings"] = {variant: None if result is None else asdict(result)
                      for variant, result in times.items()}
    row["quantize_s"] = round(quantize_s, 1)

    val_set = open_dataset("synthetic", image_size=size, split="val", seed=0, length=args.eval_images)
    row.update(evaluate_variants(predictors, val_set))
    for variant in set(VARIANTS) - set(predictors):
        row[f"miou_{variant}"] = row[f"agree_{variant}"] = None

    if name == args.crosscheck and size == args.sizes[0] and times["ov_f32"] is not None:
        row["benchmark_app"] = crosscheck(ov_model, args, ours=times["ov_f32"].median_ms)
    return row


def crosscheck(ov_model, args, *, ours: float) -> dict:
    """Time the same IR (float32 weights) with benchmark_app; print both medians."""
    with tempfile.TemporaryDirectory() as folder:
        xml = save_ir(ov_model, Path(folder) / "model.xml", compress_to_fp16=False)
        try:
            result = benchmark_app(xml, threads=args.threads, seconds=args.app_seconds)
        except (BenchmarkAppError, subprocess.TimeoutExpired) as error:
            print(f"  note: cross-check skipped: {error}", flush=True)
            return {"error": str(error)}
    print(f"  cross-check OpenVINO f32: this script median {ours:.2f} ms, benchmark_app median "
          f"{result['median_ms']:.2f} ms (average {result['average_ms']:.2f} ms, "
          f"{result['iterations']} iterations)", flush=True)
    return {"ours_median_ms": ours, **result}


def default_precision() -> str:
    """What ``precision="default"`` resolves to on this CPU (e.g. bf16 or f32)."""
    import openvino as ov
    tiny = to_openvino(torch.nn.Conv2d(3, 2, 1), input_size=(16, 16))
    value = compile_ir(tiny, precision="default").get_property("INFERENCE_PRECISION_HINT")
    return str(value.get_type_name() if isinstance(value, ov.Type) else value)


def latency_tables(rows: list[dict], args) -> str:
    """Print the latency table and the accuracy table; return their text."""
    print(f"\nLatency: median ms and FPS, batch 1, {args.threads} threads, LATENCY hint, "
          f"{args.runs} runs")
    text = print_table(rows, [("model", "model", "s"), ("size", "px", "d")] + [
        (f"{v}_{unit}", f"{v} {unit}", fmt) for v in VARIANTS
        for unit, fmt in (("ms", ".2f"), ("fps", ".0f"))] + [("busy", "busy", "")])
    print(f"\nAccuracy on {args.eval_images} held-out synthetic images (agree = same class as torch)")
    return text + "\n\n" + print_table(rows, [("model", "model", "s"), ("size", "px", "d")] + [
        (f"miou_{v}", f"mIoU {v}", ".3f") for v in VARIANTS] + [
        (f"agree_{v}", f"agree {v}", ".4f") for v in VARIANTS[1:]])


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS,
                        help=f"default: all of {', '.join(MODELS)}")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--genotype", default=str(RESULTS / "search" / "genotype.json"),
                        help="genotype.json of the 'searched' row (skipped if missing)")
    parser.add_argument("--checkpoints", help="folder with <model>/checkpoint.pt (else train)")
    parser.add_argument("--train-size", type=int, default=192)
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--calib", type=int, default=300, help="INT8 calibration images")
    parser.add_argument("--eval-images", type=int, default=100, help="held-out images for mIoU")
    parser.add_argument("--busy-retries", type=int, default=2,
                        help="time a row's four variants again while the busy guard flags them")
    parser.add_argument("--crosscheck",
                        help="model whose OpenVINO f32 row benchmark_app times too (default: "
                             "lraspp_mobilenetv3_large, the issue's reference point)")
    parser.add_argument("--app-seconds", type=int, default=10, help="benchmark_app -t")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: LR-ASPP small (+ searched) at 256 px, 5 runs, 10 training "
                             "steps at 128 px, 16 calibration and 8 evaluation images")
    parser.add_argument("--out", default=str(RESULTS / "latency.json"))
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs, args.warmup = [256], 5, 2
        args.train_steps, args.train_size, args.calib, args.eval_images = 10, 128, 16, 8
        args.app_seconds = 2
        args.models = args.models or ["lraspp_mobilenetv3_small", "searched"]
        args.crosscheck = args.crosscheck or args.models[0]
    args.models = args.models or list(MODELS)
    args.crosscheck = args.crosscheck or "lraspp_mobilenetv3_large"

    notes = []
    genotype_text = Path(args.genotype).read_text() if Path(args.genotype).is_file() else None
    if "searched" in args.models and genotype_text is None:
        notes.append(f"row 'searched' skipped: no genotype file {args.genotype} "
                     "(run `segnas search` or pass --genotype)")
        print(f"note: {notes[-1]}", flush=True)
    names = [n for n in args.models if n != "searched" or genotype_text is not None]
    load_before = os.getloadavg()

    rows = []
    for name in names:
        started = time.perf_counter()
        model, weights = trained_model(name, genotype_text, args)
        for size in args.sizes:
            # calibration: training-distribution images (train seed), never the held-out ones
            calib = sample_images(args.calib, input_size=(size, size), seed=0)  # (N, 3, S, S)
            row = benchmark_row(name, model, size, args, calib)
            row["weights"] = weights
            rows.append(row)
            notes += row["notes"]

            def show(value, fmt: str) -> str:
                return "n/a" if value is None else format(value, fmt)
            print(f"  {name} @ {size}: torch {row['torch_ms']:.1f} ms, ov f32 "
                  f"{show(row['ov_f32_ms'], '.1f')}, ov default {show(row['ov_default_ms'], '.1f')}"
                  f", ov int8 {show(row['ov_int8_ms'], '.1f')}; mIoU {row['miou_torch']:.3f} -> "
                  f"int8 {show(row['miou_ov_int8'], '.3f')} [{time.perf_counter() - started:.0f} s]",
                  flush=True)
    load = {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()}

    if args.crosscheck not in names:
        notes.append(f"no benchmark_app cross-check: --crosscheck {args.crosscheck} is not benchmarked")
    text = ""
    if rows:
        text = latency_tables(rows, args)
    precision = default_precision()
    busy = [f"{row['model']} @ {row['size']}" for row in rows if row["busy"]]
    print(f"\nOpenVINO default precision on this CPU: {precision}. Load average "
          f"{load['before'][0]:.1f} -> {load['after'][0]:.1f} on {load['cpus']} CPUs. "
          + (f"Busy rows (their timings are disturbed: do not quote them, re-run): {', '.join(busy)}"
             if busy else "No row busy."))
    for note in notes:
        print(f"note: {note}")
    write_json(args.out, {"environment": {**environment(), "default_precision": precision,
                                          "load_average": load},
                          "busy": bool(busy), "busy_rows": busy,
                          "settings": vars(args), "rows": rows, "notes": notes, "table": text})


if __name__ == "__main__":
    main()

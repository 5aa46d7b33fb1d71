"""``segnas demo``: the main job on synthetic portraits, in a few minutes on 2 cores.

1. train Fast-SCNN and evaluate it;
2. export it to OpenVINO, check parity (f32) and time PyTorch / OpenVINO f32 / default precision;
3. a quick ProxylessNAS search on the seed space under a latency budget;
4. retrain the searched child with the same recipe, time it the same way;
then print one comparison table and save the runs, figures and ``demo_summary.json`` in ``out``.

OpenVINO (``export``) and matplotlib (``plots``) are imported inside the functions that use them:
``segnas --help`` reads ``DemoConfig``'s defaults and should not wait for them.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from segnas_lite.data import SyntheticPortraits
from segnas_lite.train.engine import TrainConfig, evaluate, predict, train
from segnas_lite.zoo import build_model
from segnas_lite.nas import get_space
from segnas_lite.deploy.target import Target
from segnas_lite.nas.config import SearchConfig
from segnas_lite.nas.history import SearchResult
from segnas_lite.nas.run import run_search
from segnas_lite.runio import RunDirectoryError, atomic_write_text
from segnas_lite.models.summary import summarize

NUM_CLASSES = 2  # SyntheticPortraits: background, person
SPACE = "seed"   # the search space of step 3


@dataclass
class DemoConfig:
    """The demo's settings (the options of ``segnas demo``)."""

    image_size: int = 128
    epochs: int = 6
    train_size: int = 400      # synthetic training portraits; validation uses 32 fixed ones
    lr: float = 0.05
    seed: int = 0              # weights, batch order and search (the portraits are fixed)
    skip_search: bool = False  # no NAS step: Fast-SCNN only
    skip_export: bool = False  # no OpenVINO step: no IR, parity check or OpenVINO timings
    quiet: bool = False        # no progress bars or search epoch lines

    def train_config(self) -> TrainConfig:
        """The one training recipe of both models."""
        return TrainConfig(epochs=self.epochs, batch_size=8, lr=self.lr, seed=self.seed,
                           quiet=self.quiet)


def portraits(config: DemoConfig) -> tuple[Dataset, Dataset]:
    """The train and validation portraits; fixed (seeds 0 and 1) whatever ``config.seed`` is."""
    size = config.image_size
    return (SyntheticPortraits(length=config.train_size, image_size=size, seed=0),
            SyntheticPortraits(length=32, image_size=size, seed=1))


# --------------------------------------------------------------------------- one model, one row
def train_and_measure(label: str, info: dict, run_dir: Path, *, data: tuple[Dataset, Dataset],
                      config: DemoConfig, threads: int) -> tuple[nn.Module, dict, list[dict]]:
    """Train ``info``'s model with the demo recipe into ``run_dir``; return the model, its table
    row (parameters, GFLOPs, PyTorch latency, training seconds, mIoU) and its training history."""
    from segnas_lite.deploy.bench import benchmark_torch
    train_set, val_set = data
    size = (config.image_size, config.image_size)
    torch.manual_seed(config.seed)
    model = build_model(info["name"], num_classes=NUM_CLASSES, **info["kwargs"])
    started = time.perf_counter()
    result = train(model, train_set, val_set, config=config.train_config(),
                   num_classes=NUM_CLASSES, out_dir=run_dir, overwrite=True, model_info=info,
                   class_names=SyntheticPortraits.class_names)
    train_s = time.perf_counter() - started
    metrics = evaluate(model, val_set, num_classes=NUM_CLASSES, quiet=True)
    summary = summarize(model, input_size=size)
    row = {"model": label, "params": summary.total_params, "gflops": summary.gflops,
           "torch_ms": benchmark_torch(model, input_size=size, threads=threads,
                                       warmup=3, runs=15).median_ms,
           "train_s": round(train_s, 1), "miou": metrics.miou,
           "pixel_accuracy": metrics.pixel_accuracy}
    return model, row, result.history


def export_with_parity(model: nn.Module, run_dir: Path, *, image_size: int, threads: int) -> dict:
    """Write ``run_dir/model.xml``, print its f32 parity and time it in f32 and in OpenVINO's
    default precision: the row's OpenVINO columns."""
    from segnas_lite.deploy.bench import benchmark_openvino
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.deploy.parity import check_parity
    xml = run_dir / "model.xml"
    to_openvino(model, input_size=(image_size, image_size), out_path=xml, overwrite=True)
    parity = check_parity(model, xml, precision="f32")
    print(parity.to_text())
    columns = {"parity_f32": parity.max_abs_diff}
    for precision in ("f32", "default"):
        columns[f"ov_{precision}_ms"] = benchmark_openvino(
            xml, precision=precision, threads=threads, warmup=3, runs=15).median_ms
    return columns


def save_model_figures(model: nn.Module, history: list[dict], *, val_set: Dataset, label: str,
                       name: str, out: Path) -> None:
    """``demo_predictions_<name>.png`` (4 validation portraits) and ``demo_training_<name>.png``."""
    from segnas_lite.teaching.plots import mask_grid, training_curves
    images, masks = zip(*(val_set[i] for i in range(4)))
    mask_grid(images, masks, predict(model, torch.stack(images)), num_classes=NUM_CLASSES).savefig(
        out / f"demo_predictions_{name}.png", dpi=90)
    training_curves(history, title=label).savefig(out / f"demo_training_{name}.png", dpi=90)


def measure_model(label: str, info: dict, run_dir: Path, *, out: Path,
                  data: tuple[Dataset, Dataset], config: DemoConfig, threads: int) -> dict:
    """One row of the comparison table: train and measure, export (unless skipped), figures."""
    model, row, history = train_and_measure(label, info, run_dir, data=data, config=config,
                                            threads=threads)
    if not config.skip_export:
        row.update(export_with_parity(model, run_dir, image_size=config.image_size,
                                      threads=threads))
    save_model_figures(model, history, val_set=data[1], label=label, name=info["name"], out=out)
    return row


# --------------------------------------------------------------------------- the search
def quick_search(out: Path, *, config: DemoConfig, threads: int) -> SearchResult:
    """ProxylessNAS on the seed space with quick settings and the hard latency constraint."""
    search = SearchConfig.quick(image_size=config.image_size, seed=config.seed, quiet=config.quiet,
                                target=Target(threads=threads, image_size=config.image_size))
    return run_search(SPACE, "synthetic", search, out_dir=out / "search", overwrite=True)


def save_alpha_figure(result: SearchResult, out: Path) -> None:
    """``demo_alpha.png``: op probabilities after the search, the budget genotype outlined."""
    from segnas_lite.teaching.plots import alpha_heatmap
    op_names = [list(spec.ops) for spec in get_space(SPACE).layers]
    alpha_heatmap(result.history.alpha_matrix(-1), op_names, genotype=result.genotype_budget,
                  title="op probabilities after the search").savefig(out / "demo_alpha.png", dpi=90)


def retrain_child(result: SearchResult, out: Path, *, data: tuple[Dataset, Dataset],
                  config: DemoConfig, threads: int) -> dict:
    """The searched (budget) child, trained and measured exactly like Fast-SCNN."""
    info = {"name": "nas_child", "kwargs": {"genotype": result.genotype_budget.to_json()}}
    return measure_model("searched child", info, out / "searched_child", out=out, data=data,
                         config=config, threads=threads)


# --------------------------------------------------------------------------- the report
def write_summary(out: Path, rows: list[dict], *, config: DemoConfig, threads: int,
                  search_text: str) -> None:
    """``demo_summary.json``: the table's rows and the settings they were measured with."""
    atomic_write_text(out / "demo_summary.json", json.dumps(
        {"rows": rows, "image_size": config.image_size, "epochs": config.epochs,
         "threads": threads, "search": search_text}, indent=2))


def print_table(rows: list[dict], *, config: DemoConfig, threads: int, out: Path) -> None:
    """The comparison table ('-' in the OpenVINO columns when the export was skipped)."""
    print()
    print(f"{'model':<16}{'params':>10}{'GFLOPs':>8}{'torch ms':>10}{'OV f32 ms':>11}"
          f"{'OV dflt ms':>11}{'train s':>9}{'mIoU':>7}{'pix acc':>9}")
    for row in rows:
        ov = [f"{row[k]:>11.2f}" if k in row else f"{'-':>11}" for k in ("ov_f32_ms", "ov_default_ms")]
        print(f"{row['model']:<16}{row['params']:>10,}{row['gflops']:>8.3f}{row['torch_ms']:>10.2f}"
              f"{ov[0]}{ov[1]}{row['train_s']:>9.1f}{row['miou']:>7.3f}{row['pixel_accuracy']:>9.3f}")
    print(f"\n(image size {config.image_size}, {config.epochs} epochs on {config.train_size} "
          f"synthetic portraits, batch 1 latency medians, {threads} threads; OV dflt = OpenVINO's "
          "default precision, bf16 on CPUs with AVX-512 BF16)")
    print(f"figures and runs: {out}/")


# --------------------------------------------------------------------------- the whole job
def run(out: str | Path = "runs/demo", config: DemoConfig | None = None, *,
        overwrite: bool = False) -> list[dict]:
    """Run the demo into ``out`` (refused if it holds files, unless ``overwrite``); return the rows."""
    config = config or DemoConfig()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{out} already holds demo results; pass --overwrite or another --out")
    data = portraits(config)
    threads = torch.get_num_threads()
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/3] training Fast-SCNN on {config.train_size} synthetic portraits at "
          f"{config.image_size}px")
    rows = [measure_model("fast_scnn", {"name": "fast_scnn", "kwargs": {}}, out / "fast_scnn",
                          out=out, data=data, config=config, threads=threads)]
    search_text = ""
    if not config.skip_search:
        print("[2/3] ProxylessNAS search (seed space, quick settings, hard latency constraint)")
        result = quick_search(out, config=config, threads=threads)
        search_text = result.to_text()
        print(search_text)
        save_alpha_figure(result, out)
        print("[3/3] retraining the searched child with the same recipe")
        rows.append(retrain_child(result, out, data=data, config=config, threads=threads))
    write_summary(out, rows, config=config, threads=threads, search_text=search_text)
    print_table(rows, config=config, threads=threads, out=out)
    return rows

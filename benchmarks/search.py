"""The seed's Table 2 question on this CPU: at one latency budget, is the searched backbone more
accurate than the MobileNetV3 one in the same macro? With Fast-SCNN and LR-ASPP for reference.

    python benchmarks/search.py                 # search + 5 models x 2 data sets (about 20-30 min)
    python benchmarks/search.py --quick         # smoke run (a few minutes)

Steps:
1. The budget is the predicted latency of the MobileNetV3 baseline (``mbv3_3x3`` in every layer)
   from the torch latency table at ``--search-size``: "at similar latency", as in the seed.
2. ``run_search`` on SyntheticPortraits (decoupled phases, hard constraint, budget-constrained
   derivation) -> ``results/search/genotype.json``.
3. Every model is trained from scratch with the same short recipe (``common.short_training_miou``)
   on SyntheticPortraits and on ``../shared/data/people`` (when present), then evaluated.
4. Params, GFLOPs and PyTorch eager latency (batch 1, ``--threads``) at ``--size``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, short_training_miou, write_json  # noqa: E402

from segnas_lite.data import default_people_dir  # noqa: E402
from segnas_lite.models import build_model  # noqa: E402
from segnas_lite.nas import Genotype, get_space  # noqa: E402
from segnas_lite.nas.latency import build_table, measure  # noqa: E402
from segnas_lite.nas.search import run_search  # noqa: E402
from segnas_lite.summary import summarize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="seed")
    parser.add_argument("--search-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=256, help="latency / FLOPs input side")
    parser.add_argument("--train-size", type=int, default=160)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--warmup-epochs", type=int, default=4)
    parser.add_argument("--search-epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--people", default=str(default_people_dir()))
    parser.add_argument("--out", default=str(RESULTS / "search.json"))
    args = parser.parse_args()
    if args.quick:
        args.train_steps, args.runs, args.steps_per_epoch = 20, 5, 5
        args.warmup_epochs = args.search_epochs = 1
    space = get_space(args.space)
    size = (args.search_size, args.search_size)

    # 1. the budget: the MobileNetV3 baseline's predicted latency
    table = build_table(space, image_size=size, threads=args.threads, quiet=True, refresh=True,
                        macro_config={"aspp_channels": 64, "decoder_channels": 48})
    baseline = Genotype.uniform(space, "mbv3_3x3")
    budget = table.predict(baseline)  # run_search below reads this fresh table from the cache
    print(f"budget = predicted latency of the MobileNetV3 baseline at {size[0]}px: {budget:.2f} ms")

    # 2. the search
    search_dir = Path(args.out).with_suffix("")  # results/search/
    if search_dir.exists():
        shutil.rmtree(search_dir)  # the benchmark owns this folder and re-creates it each run
    result = run_search(space=space, budget_ms=budget, data="synthetic", image_size=size[0],
                        out_dir=search_dir, seed=0, quiet=True, threads=args.threads,
                        warmup_epochs=args.warmup_epochs, search_epochs=args.search_epochs,
                        steps_per_epoch=args.steps_per_epoch)
    summary = result.summary()
    print(f"searched genotype: {' '.join(result.genotype_budget.ops)}")

    # 3-4. train and measure every contender with the same recipe
    contenders = {
        "searched (budget)": {"name": "nas_child", "kwargs": {"genotype": result.genotype_budget.to_json()}},
        "searched (argmax)": {"name": "nas_child", "kwargs": {"genotype": result.genotype_argmax.to_json()}},
        "mbv3 baseline": {"name": "mbv3_baseline"},
        "fast_scnn": {"name": "fast_scnn"},
        "lraspp_mobilenetv3_small": {"name": "lraspp_mobilenetv3_small"},
    }
    sources = ["synthetic"] + ([args.people] if Path(args.people).is_dir() else [])
    rows = []
    for label, info in contenders.items():
        torch.manual_seed(0)
        model = build_model(info["name"], num_classes=2, **info.get("kwargs", {})).eval()
        stats = summarize(model, input_size=(args.size, args.size))
        row = {"model": label, "params": stats.total_params, "gflops": stats.gflops,
               "latency_ms": measure(model, (1, 3, args.size, args.size), threads=args.threads,
                                     warmup=5, runs=args.runs),
               "latency_search_size_ms": measure(model, (1, 3, *size), threads=args.threads,
                                                 warmup=5, runs=args.runs)}
        for src in sources:
            key = "miou_synthetic" if src == "synthetic" else "miou_people"
            row[key] = short_training_miou(info, src, size=args.train_size, steps=args.train_steps)
        rows.append(row)
        print(f"  {label}: {row}", flush=True)
    print()
    text = print_table(rows, [
        ("model", "model", "s"), ("params", "params", ","), ("gflops", f"GFLOPs@{args.size}", ".3f"),
        ("latency_search_size_ms", f"ms@{size[0]}", ".2f"), ("latency_ms", f"ms@{args.size}", ".2f"),
        ("miou_synthetic", "mIoU synthetic", ".3f"), ("miou_people", "mIoU people", ".3f")])
    write_json(args.out, {"environment": environment(), "settings": vars(args),
                          "budget_ms": budget, "search": summary, "rows": rows, "table": text})


if __name__ == "__main__":
    main()

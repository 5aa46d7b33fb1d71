"""Parameters, FLOPs, PyTorch eager latency and short-training mIoU of every hand-designed model.

    python benchmarks/models.py                    # full table (about 15-25 min on 2 cores)
    python benchmarks/models.py --quick            # smaller training, for a smoke run

Latency: batch 1, median of repeated runs after warm-up, ``--threads`` intra-op threads (default 2).
mIoU: each model trained from scratch with the same short recipe (SGD, poly schedule, batch 8,
``--train-steps`` steps at ``--train-size`` px), then evaluated on a held-out split: SyntheticPortraits
(val seed) and ``../shared/data/people`` (80/20 split with seed 0), when that folder exists.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, short_training_miou, write_json  # noqa: E402

from segnas_lite.data import default_people_dir  # noqa: E402
from segnas_lite.zoo import build_model  # noqa: E402
from segnas_lite.nas.measure import measure  # noqa: E402
from segnas_lite.models.summary import summarize  # noqa: E402

MODELS = ("fast_scnn", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--train-size", type=int, default=192)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="20 training steps, 10 timed runs")
    parser.add_argument("--people", default=str(default_people_dir()))
    parser.add_argument("--out", default=str(RESULTS / "models.json"))
    args = parser.parse_args()
    if args.quick:
        args.train_steps, args.runs = 20, 10
    sources = ["synthetic"] + ([args.people] if Path(args.people).is_dir() else [])
    rows = []
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, num_classes=2).eval()
        scores = {src: short_training_miou({"name": name}, src, size=args.train_size,
                                           steps=args.train_steps, seed=0) for src in sources}
        for size in args.sizes:
            summary = summarize(model, input_size=(size, size))
            rows.append({
                "model": name, "size": size, "params": summary.total_params,
                "gflops": summary.gflops,
                "latency_ms": measure(model, (1, 3, size, size), threads=args.threads, warmup=5,
                                      runs=args.runs),
                "miou_synthetic": scores["synthetic"],
                "miou_people": scores.get(args.people),
            })
            print(f"  {name} @ {size}: {rows[-1]['latency_ms']:.1f} ms", flush=True)
    print()
    text = print_table(rows, [("model", "model", "s"), ("size", "px", "d"),
                              ("params", "params", ","), ("gflops", "GFLOPs", ".3f"),
                              ("latency_ms", f"eager ms ({args.threads} thr)", ".1f"),
                              ("miou_synthetic", "mIoU synthetic", ".3f"),
                              ("miou_people", "mIoU people", ".3f")])
    write_json(args.out, {"environment": environment(), "settings": vars(args), "rows": rows,
                          "table": text})


if __name__ == "__main__":
    main()

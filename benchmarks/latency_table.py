"""How well does an additive latency table predict a whole network? Torch vs OpenVINO, side by side.

    python benchmarks/latency_table.py                  # seed space at 128 px, 30 genotypes (~5-10 min)
    python benchmarks/latency_table.py --sizes 128 256  # more image sizes
    python benchmarks/latency_table.py --quick          # tiny space, 8 genotypes (smoke run, < 1 min)

ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.3) predicts latency as ``fixed + sum_l LAT(l, op_l)``.
For each backend (PyTorch eager and OpenVINO f32, ``--threads`` threads, LATENCY hint) this script
builds the table of ``segnas_lite.nas.latency`` (every (layer, op) block timed in place), draws
``--genotypes`` random architectures, and compares the predicted with the measured end-to-end
latency: Spearman rank correlation (does the table order architectures correctly? that is what the
search needs) and MAPE (are the milliseconds right?). It also fits ``measured = slope * predicted +
intercept`` to show whether the error is an offset or a scale.

Per-call overhead correction (OpenVINO). Every block of the table is timed as its own compiled
model, so each entry also pays one synchronous ``infer`` call: Python -> runtime dispatch, copying
the input in and the output out (about 0.05-0.1 ms here). A whole network pays that once, and the
fixed-parts entry already contains it. So the sum over L blocks counts L extra calls. The
correction measures the call overhead directly, as the latency of an *empty* model (an identity,
which OpenVINO compiles to a bare input -> output copy) at each layer's input shape, and subtracts
it from every op of that layer:

    LAT_corrected(l, op) = LAT(l, op) - LAT(identity at layer l's input shape)

No fitting on the validation genotypes is involved, so the corrected figures are a fair
prediction. PyTorch eager needs no such correction: the whole network calls each block from Python
exactly as the table does. What neither table can capture is fusion and memory reuse *across*
layers (the compiled whole network may fuse a block's last 1x1 conv with the next block's first
one, keep tensors in cache, ...); that residual error is what the corrected MAPE shows.

The machine is shared: absolute numbers are noisy; compare rows measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.nas import Genotype, get_space  # noqa: E402
from segnas_lite.nas.latency import (LatencyTable, PredictorReport, build_table, measure,  # noqa: E402
                                     spearman, validate)

BACKENDS = ("torch", "openvino")


def call_overhead_ms(table: LatencyTable, space, *, image_size: int, threads: int,
                     runs: int) -> list[float]:
    """Latency (ms) of an empty OpenVINO model (identity) at each layer's input shape."""
    shapes = space.layer_input_shapes(image_size, image_size)
    return [measure(nn.Identity(), (1, *shape), backend="openvino", threads=threads, warmup=5,
                    runs=runs) for shape in shapes]


def corrected_table(table: LatencyTable, overhead_ms: list[float]) -> LatencyTable:
    """The table with each layer's call overhead subtracted from every op (never below zero)."""
    ms = [[max(0.0, t - o) for t in row] for row, o in zip(table.ms, overhead_ms)]
    meta = {**table.meta, "corrected": "minus per-layer identity-model call overhead"}
    return LatencyTable(table.space, table.ops, ms, table.fixed_ms, meta)


def linear_fit(predicted: list[float], measured: list[float]) -> dict:
    """Least squares ``measured = slope * predicted + intercept`` (a diagnostic, not a correction)."""
    mp, mm = statistics.fmean(predicted), statistics.fmean(measured)
    var = sum((p - mp) ** 2 for p in predicted)
    slope = sum((p - mp) * (m - mm) for p, m in zip(predicted, measured)) / var if var else float("nan")
    return {"slope": slope, "intercept": mm - slope * mp}


def summary(name: str, size: int, predicted: list[float], measured: list[float],
            table: LatencyTable, seconds: float) -> dict:
    """One row of the side-by-side table."""
    mape = 100 * statistics.fmean(abs(p - m) / m for p, m in zip(predicted, measured))
    fastest, slowest = table.fastest()[1], table.slowest()[1]
    return {"backend": name, "size": size, "spearman": spearman(predicted, measured), "mape": mape,
            "predicted_mean_ms": statistics.fmean(predicted),
            "measured_mean_ms": statistics.fmean(measured),
            "table_fastest_ms": fastest, "table_slowest_ms": slowest, "fixed_ms": table.fixed_ms,
            **linear_fit(predicted, measured), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="seed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--genotypes", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per table entry and network")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random genotypes")
    parser.add_argument("--use-cache", action="store_true",
                        help="reuse cached tables (default: measure fresh, in the same conditions "
                             "as the end-to-end runs)")
    parser.add_argument("--quick", action="store_true", help="tiny space, 8 genotypes, 5 runs")
    parser.add_argument("--out", default=str(RESULTS / "latency_table.json"))
    args = parser.parse_args()
    if args.quick:
        args.space, args.genotypes, args.runs = "tiny", 8, 5
    space = get_space(args.space)

    load_before = os.getloadavg()
    rows, details = [], []
    for size in args.sizes:
        for backend in args.backends:
            started = time.perf_counter()
            table = build_table(space, image_size=(size, size), backend=backend,
                                threads=args.threads, runs=args.runs, use_cache=args.use_cache,
                                quiet=True)
            report: PredictorReport = validate(table, space, num_genotypes=args.genotypes,
                                               seed=args.seed, image_size=(size, size),
                                               backend=backend, threads=args.threads,
                                               runs=args.runs, quiet=True)
            seconds = time.perf_counter() - started
            rows.append(summary(backend, size, report.predicted_ms, report.measured_ms, table,
                                seconds))
            detail = {"backend": backend, "size": size, "table": table.to_json(),
                      "genotypes": report.genotypes, "predicted_ms": report.predicted_ms,
                      "measured_ms": report.measured_ms}
            print(f"  {backend} @ {size}: {report.to_text()} [{seconds:.0f} s]", flush=True)
            if backend == "openvino":
                overhead = call_overhead_ms(table, space, image_size=size, threads=args.threads,
                                            runs=max(args.runs, 20))
                fixed = corrected_table(table, overhead)
                corrected = [fixed.predict(Genotype(space.name, tuple(ops))) for ops in report.genotypes]
                rows.append(summary("openvino-corrected", size, corrected, report.measured_ms,
                                    fixed, seconds))
                detail.update({"call_overhead_ms": overhead, "corrected_predicted_ms": corrected})
                print(f"  openvino-corrected @ {size}: call overhead "
                      f"{statistics.fmean(overhead):.3f} ms/layer x {len(overhead)} layers; "
                      f"MAPE {rows[-1]['mape']:.1f}%, Spearman {rows[-1]['spearman']:.3f}",
                      flush=True)
            details.append(detail)
    print()
    text = print_table(rows, [("backend", "backend", "s"), ("size", "px", "d"),
                              ("spearman", "Spearman", ".3f"), ("mape", "MAPE %", ".1f"),
                              ("predicted_mean_ms", "pred ms", ".2f"),
                              ("measured_mean_ms", "meas ms", ".2f"),
                              ("slope", "fit slope", ".2f"), ("intercept", "fit icpt ms", ".2f"),
                              ("table_fastest_ms", "fastest ms", ".2f"),
                              ("table_slowest_ms", "slowest ms", ".2f")])
    load = {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()}
    print(f"\n{args.genotypes} random genotypes of space {args.space!r}, {args.threads} threads, "
          f"median of {args.runs} runs. Load average {load['before'][0]:.1f} -> "
          f"{load['after'][0]:.1f} on {load['cpus']} CPUs.")
    if max(load["before"][0], load["after"][0]) > load["cpus"]:
        print("WARNING: the machine was busier than its CPU count: timings (PyTorch's threads "
              "above all) have large outliers; rerun on a quiet machine before trusting them.")
    write_json(args.out, {"environment": {**environment(), "load_average": load},
                          "settings": vars(args), "rows": rows, "details": details,
                          "table": text})


if __name__ == "__main__":
    main()

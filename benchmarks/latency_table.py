"""Can the search trust its latency? The in-place table and the calibrated predictor, per target.

    python benchmarks/latency_table.py                       # seed space, 128 + 256 px, torch /
                                                             # OpenVINO f32 / OpenVINO bf16 (~30 min)
    python benchmarks/latency_table.py --sizes 256 --targets openvino-f32
    python benchmarks/latency_table.py --quick               # tiny space, 32 px (smoke run, ~1 min)

For every (image size, target) this runs what ``segnas latency`` runs: the ProxylessNAS table
(Cai et al., ICLR 2019, Sec. 3.3: every (layer, op) timed in place, ``fixed + sum_l LAT(l, op_l)``),
its calibration on ``--num-fit`` random subnets measured end to end (``nas/calibrate.py``), and a
check on ``--validate`` other random subnets: Spearman rank correlation (does it order networks?
that is what the search needs) and MAPE (are the milliseconds right?), for the plain sum ("before")
and the calibrated predictor ("after"), next to the measurements' own repeat noise.

A last row cross-checks the timer itself: one random subnet exported as an f32 IR, timed by
``segnas_lite.timing`` and by OpenVINO's ``benchmark_app`` with the same settings.

Run it on a quiet machine: the JSON records the load and marks a busy run (``busy: true``), whose
figures must not be quoted.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.deploy.export import save_ir, to_openvino  # noqa: E402
from segnas_lite.nas import get_space  # noqa: E402
from segnas_lite.deploy.target import Target  # noqa: E402
from segnas_lite.nas.latency_report import latency_report  # noqa: E402
from segnas_lite.nas.measure import timed_child  # noqa: E402
from segnas_lite.nas.predictor import random_genotypes  # noqa: E402
from segnas_lite.teaching.plots import latency_report_figure, save_figure  # noqa: E402
from segnas_lite.deploy.bench import crosscheck  # noqa: E402
from segnas_lite.deploy.openvino import openvino_probe  # noqa: E402
from segnas_lite.timing import BenchmarkAppError, LoadMonitor  # noqa: E402

TARGETS = {"torch": ("torch", "f32"), "openvino-f32": ("openvino", "f32"),
           "openvino-bf16": ("openvino", "bf16")}


def target_row(space, size: int, target: str, args, out: Path) -> dict:
    backend, precision = TARGETS[target]
    started = time.perf_counter()
    report = latency_report(space, target=Target(backend, precision, args.threads, size),
                            out_dir=out / f"{target}_{size}", num_fit=args.num_fit,
                            num_validate=args.validate, seed=args.seed,
                            refresh=not args.use_cache, overwrite=True, quiet=True)
    save_figure(latency_report_figure(report), out / f"{target}_{size}" / "predicted_vs_measured.png")
    row = {"target": target, "ran": report["ran_precision"], "size": size,
           "before_spearman": report["in_place"]["spearman"],
           "before_mape": report["in_place"]["mape"],
           "after_spearman": report["spearman"], "after_mape": report["mape"],
           "noise_pct": report["noise_pct"], "n": report["n"],
           "speed_vs_calibration_pct": report["speed_vs_calibration_pct"],
           "busy": report["load"]["busy"], "seconds": round(time.perf_counter() - started, 1)}
    print(f"  {target} @ {size}: before {row['before_spearman']:.3f} / {row['before_mape']:.1f}%, "
          f"after {row['after_spearman']:.3f} / {row['after_mape']:.1f}%, noise "
          f"{row['noise_pct']:.1f}% [{row['seconds']:.0f} s]", flush=True)
    return {"row": row, "report": report}


def crosscheck_row(space, size: int, args) -> dict:
    """Our timer against benchmark_app on one random subnet's f32 IR (alternating rounds)."""
    genotype = random_genotypes(space, 1, seed=args.seed, stream=9)[0]
    ov_model = to_openvino(timed_child(genotype, space), input_size=(size, size))
    with tempfile.TemporaryDirectory() as folder:
        xml = save_ir(ov_model, Path(folder) / "model.xml", compress_to_fp16=False)
        try:
            result = crosscheck(xml, (1, 3, size, size), threads=args.threads,
                                seconds=args.app_seconds)
        except BenchmarkAppError as error:
            return {"error": str(error)}
    print(f"  cross-check @ {size}: segnas_lite.timing best median {result['ours_best_ms']:.3f} ms, "
          f"benchmark_app best median {result['benchmark_app_best_ms']:.3f} ms (ratio "
          f"{result['ratio']:.3f}; rounds {result['ours_ms']} / {result['benchmark_app_ms']})",
          flush=True)
    return {"size": size, "ops": list(genotype.ops), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="seed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-fit", type=int, default=60)
    parser.add_argument("--validate", type=int, default=30)
    parser.add_argument("--app-seconds", type=int, default=3, help="benchmark_app -t per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--use-cache", action="store_true",
                        help="reuse cached tables and calibrations (default: measure afresh)")
    parser.add_argument("--quick", action="store_true", help="tiny space at 32 px, few subnets")
    parser.add_argument("--out", default=str(RESULTS / "latency_table.json"))
    args = parser.parse_args()
    if args.quick:
        args.space, args.sizes, args.num_fit, args.validate = "tiny", [32], 10, 6
        args.app_seconds = 1
    space = get_space(args.space)
    figures = Path(args.out).with_suffix("")  # benchmarks/results/latency_table/<target>_<size>/

    rows, reports = [], []
    with LoadMonitor(what="the latency-table benchmark",
                     ov_probe=openvino_probe(args.threads)) as monitor:
        for size in args.sizes:
            for target in args.targets:
                result = target_row(space, size, target, args, figures)
                rows.append(result["row"])
                reports.append(result["report"])
        check = crosscheck_row(space, max(args.sizes), args)
    print()
    text = print_table(rows, [("target", "target", "s"), ("ran", "ran", "s"), ("size", "px", "d"),
                              ("before_spearman", "Spearman before", ".3f"),
                              ("before_mape", "MAPE % before", ".1f"),
                              ("after_spearman", "Spearman after", ".3f"),
                              ("after_mape", "MAPE % after", ".1f"),
                              ("noise_pct", "noise %", ".1f"),
                              ("speed_vs_calibration_pct", "speed drift %", ".1f"),
                              ("busy", "busy", "")])
    load = monitor.report.to_dict()
    print(f"\n{args.validate} held-out random subnets of {args.space!r} per row, calibration on "
          f"{args.num_fit} others, {args.threads} threads. Load: {load}")
    if load["busy"] or any(r["busy"] for r in rows):
        print("WARNING: the machine was busy during this run: do not quote these figures.")
    write_json(args.out, {"environment": environment(), "settings": vars(args), "load": load,
                          "busy": load["busy"] or any(r["busy"] for r in rows), "rows": rows,
                          "crosscheck": check, "reports": reports, "table": text})


if __name__ == "__main__":
    main()

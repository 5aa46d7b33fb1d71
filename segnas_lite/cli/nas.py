"""The ``segnas search`` and ``segnas latency`` commands: each command's options beside its code.

``cli.py`` wires them into the ``segnas`` parser; the shared option groups live there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segnas_lite.cli import (add_data_options, add_overwrite_option, add_quiet_option, add_seed_option,
                  add_teacher_options, data_options, fraction, image_side, positive_float,
                  positive_int, refuse_class_set_for_synthetic)
from segnas_lite.nas.gates import LATENCY_FORMS
from segnas_lite.nas.latency import BACKENDS
from segnas_lite.nas.space import SPACES, get_space
from segnas_lite.timing import PRECISIONS
from segnas_lite.zoo import load_trained


# --------------------------------------------------------------------------- search
def add_search_arguments(p: argparse.ArgumentParser) -> None:
    add_data_options(p, image_size=128)
    add_seed_option(p, what="the super-net's weights, the sampled paths and the data")
    add_quiet_option(p, what="no progress bars or epoch lines")
    p.add_argument("--space", choices=list(SPACES), default="seed",
                   help="search space (segnas_lite.nas.SPACES); default %(default)s")
    p.add_argument("--budget-ms", type=positive_float, default=None,
                   help="latency budget (ms); default: the 0.4 quantile of the predicted latency "
                   "of random architectures of the space, so about 60%% of them are rejected")
    p.add_argument("--budget-frac", type=fraction, default=None,
                   help="budget as a fraction of the way from the fastest (0) to the slowest (1) "
                   "predicted architecture; instead of --budget-ms")
    p.add_argument("--constraint", choices=("predicted", "measured"), default="predicted",
                   help="check sampled subnets with the latency table or by measuring them; "
                   "default %(default)s")
    add_latency_target_options(p, size_help="deployment image side that latency is predicted and "
                               "measured for; default: --image-size")
    p.add_argument("--latency-form", choices=LATENCY_FORMS, default=None,
                   help="how E[LAT] enters the alpha loss: hinge (default: flat inside the budget), "
                   "target (pulled to the budget), mul_log / additive (ProxylessNAS: pull ever "
                   "lower), none (the hard constraint alone)")
    p.add_argument("--warmup-sampling", choices=("fair", "constrained"), default=None,
                   help="warm-up paths: fair (default: uniform, every op trained equally) or "
                   "constrained (uniform under the budget, as the seed)")
    add_teacher_options(p, into="the super-net during warm-up")
    p.add_argument("--no-calibrate", action="store_true",
                   help="use the plain in-place table (no end-to-end calibration)")
    p.add_argument("--quick", action="store_true",
                   help="quick settings: 2 warm-up + 2 search epochs of 10 batches (minutes)")
    p.add_argument("--out", required=True,
                   help="run folder for genotype.json, genotype_argmax.json, history.json, "
                   "latency_table.json, summary.json and the search checkpoint")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    add_overwrite_option(p, what="the search in --out")


def cmd_search(args) -> int:
    """ProxylessNAS search with the seed's two changes; writes genotype.json, history.json."""
    from segnas_lite.nas.search import run_search
    refuse_class_set_for_synthetic(args)
    result = run_search(space=args.space, budget_ms=args.budget_ms, budget_frac=args.budget_frac,
                        data=args.data, data_options=data_options(args),
                        image_size=args.image_size, out_dir=args.out, quick=args.quick,
                        constraint=args.constraint, resume=args.resume, overwrite=args.overwrite,
                        seed=args.seed, quiet=args.quiet, backend=args.backend,
                        precision=args.precision, latency_size=args.latency_size,
                        calibrate=not args.no_calibrate,
                        teacher=load_trained(args.teacher, frozen=True)[0] if args.teacher else None,
                        **{key: value for key, value in (
                            ("latency_form", args.latency_form),
                            ("warmup_sampling", args.warmup_sampling),
                            ("distill_weight", args.distill_weight)) if value is not None})
    print(result.to_text())
    if result.within_budget is False:
        print(f"no derived net measured within the budget: see {Path(args.out) / 'summary.json'}",
              file=sys.stderr)
        return 1
    print(f"retrain the child: segnas train --genotype {Path(args.out) / 'genotype.json'} --out ...")
    return 0


# --------------------------------------------------------------------------- latency
def add_latency_target_options(p: argparse.ArgumentParser, *, size_help: str,
                               size_flag: str = "--latency-size", size_default=None) -> None:
    """Where the network will run: backend, precision and image side."""
    p.add_argument("--backend", choices=BACKENDS, default="openvino",
                   help="where latency is measured: the deployment target; default %(default)s")
    p.add_argument("--precision", choices=PRECISIONS, default="f32",
                   help="OpenVINO inference precision (torch runs f32); 'default' lets the CPU "
                   "plugin choose (bf16 where the CPU supports it); default %(default)s")
    p.add_argument(size_flag, type=image_side, default=size_default, help=size_help)


def add_latency_arguments(p: argparse.ArgumentParser) -> None:
    add_seed_option(p, what="which random subnets are fitted and validated")
    add_quiet_option(p)
    p.add_argument("--space", choices=list(SPACES), default="seed",
                   help="search space (segnas_lite.nas.SPACES); default %(default)s")
    add_latency_target_options(p, size_flag="--image-size", size_default=256,
                               size_help="deployment image side; default %(default)s")
    p.add_argument("--threads", type=positive_int, default=2, help="inference threads; default %(default)s")
    p.add_argument("--num-fit", type=positive_int, default=60,
                   help="random subnets measured end to end to calibrate the table; default "
                   "%(default)s")
    p.add_argument("--validate", type=positive_int, default=30,
                   help="held-out random subnets to check the predictor on; default %(default)s")
    p.add_argument("--refresh", action="store_true",
                   help="measure again instead of reading the cached table and calibration")
    p.add_argument("--out", required=True,
                   help="folder for latency_report.json and predicted_vs_measured.png")
    add_overwrite_option(p, what="the report in --out")


def cmd_latency(args) -> int:
    """Build or load the latency predictor for a deployment target and validate it."""
    from segnas_lite.nas.latency_report import latency_report, report_text
    report = latency_report(get_space(args.space), out_dir=args.out, backend=args.backend,
                            precision=args.precision, image_size=args.image_size,
                            threads=args.threads, num_fit=args.num_fit,
                            num_validate=args.validate, seed=args.seed, refresh=args.refresh,
                            overwrite=args.overwrite, quiet=args.quiet)
    from segnas_lite.teaching.viz import latency_report_figure, save_figure
    save_figure(latency_report_figure(report), Path(args.out) / "predicted_vs_measured.png")
    print(report_text(report))
    print(f"written: {Path(args.out) / 'latency_report.json'}, "
          f"{Path(args.out) / 'predicted_vs_measured.png'}")
    return 0

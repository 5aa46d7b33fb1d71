"""``segnas latency``: build and validate the latency predictor for a deployment target."""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import (add_latency_target_options, add_overwrite_option,
                                     add_quiet_option, add_seed_option, positive_int)
from segnas_lite.deploy.target import DEFAULT_THREADS
from segnas_lite.nas.predictor import NUM_FIT
from segnas_lite.nas.space import SPACES

HELP = "build and validate the latency predictor for a deployment target"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_seed_option(p, what="which random subnets are fitted and validated")
    add_quiet_option(p)
    p.add_argument("--space", choices=list(SPACES), default="seed",
                   help="search space (segnas_lite.nas.SPACES); default %(default)s")
    add_latency_target_options(p, size_flag="--image-size", size_default=256,
                               size_help="deployment image side; default %(default)s")
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help="inference threads; default %(default)s")
    p.add_argument("--num-fit", type=positive_int, default=NUM_FIT,
                   help="random subnets measured end to end to calibrate the table; default "
                   "%(default)s")
    p.add_argument("--validate", type=positive_int, default=30,
                   help="held-out random subnets to check the predictor on; default %(default)s")
    p.add_argument("--refresh", action="store_true",
                   help="measure again instead of reading the cached table and calibration")
    p.add_argument("--out", required=True,
                   help="folder for latency_report.json and predicted_vs_measured.png")
    add_overwrite_option(p, what="the report in --out")


def run(args) -> int:
    """Build or load the latency predictor for a deployment target, validate it, draw it."""
    from segnas_lite.deploy.target import Target
    from segnas_lite.nas.latency_report import latency_report, report_text
    from segnas_lite.nas.space import get_space
    from segnas_lite.teaching.plots import latency_report_figure, save_figure
    target = Target(backend=args.backend, precision=args.precision, threads=args.threads,
                    image_size=args.image_size)
    report = latency_report(get_space(args.space), target=target, out_dir=args.out,
                            num_fit=args.num_fit, num_validate=args.validate, seed=args.seed,
                            refresh=args.refresh, overwrite=args.overwrite, quiet=args.quiet)
    save_figure(latency_report_figure(report), Path(args.out) / "predicted_vs_measured.png")
    print(report_text(report))
    print(f"written: {Path(args.out) / 'latency_report.json'}, "
          f"{Path(args.out) / 'predicted_vs_measured.png'}")
    return 0

"""``segnas demo``: the quick end-to-end job on synthetic data (``teaching.demo.run``)."""
from __future__ import annotations

import argparse

from segnas_lite.cli.options import (add_overwrite_option, add_quiet_option, add_seed_option,
                                     image_side, positive_float, positive_int)

HELP = "the quick end-to-end job on synthetic data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from segnas_lite.teaching.demo import DemoConfig
    p.add_argument("--image-size", type=image_side, default=DemoConfig.image_size,
                   help="square side of the synthetic portraits; default %(default)s")
    p.add_argument("--epochs", type=positive_int, default=DemoConfig.epochs,
                   help="default %(default)s")
    p.add_argument("--train-size", type=positive_int, default=DemoConfig.train_size,
                   help="synthetic training portraits (validation: 32); default %(default)s")
    p.add_argument("--lr", type=positive_float, default=DemoConfig.lr, help="default %(default)s")
    add_seed_option(p, what="the weights, batch order and search (the portraits "
                    "are fixed)")
    p.add_argument("--out", default="runs/demo",
                   help="folder for the runs, figures and demo_summary.json; default %(default)s")
    add_overwrite_option(p, what="the results in --out")
    p.add_argument("--skip-search", action="store_true", help="no NAS step (Fast-SCNN only)")
    p.add_argument("--skip-export", action="store_true",
                   help="no OpenVINO step (no IR, parity check or OpenVINO timings)")
    add_quiet_option(p, what="no progress bars or search epoch lines")


def run(args) -> int:
    """Train Fast-SCNN, export it, search, retrain the child, print the table (``demo.run``)."""
    from segnas_lite.teaching import demo
    config = demo.DemoConfig(image_size=args.image_size, epochs=args.epochs,
                             train_size=args.train_size, lr=args.lr, seed=args.seed,
                             skip_search=args.skip_search, skip_export=args.skip_export,
                             quiet=args.quiet)
    demo.run(args.out, config, overwrite=args.overwrite)
    return 0

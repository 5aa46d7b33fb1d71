"""``segnas search``: a search under a latency budget (``nas.run.run_search``): ProxylessNAS
(gradient), or evolution / random search on the trained super-net (``--strategy``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segnas_lite.cli.options import (add_data_options, add_device_options,
                                     add_latency_target_options, add_overwrite_option,
                                     add_quiet_option, add_seed_option, add_supernet_options,
                                     add_teacher_options, class_set_flags, data_options, data_sources,
                                     fraction,
                                     join_processes, positive_float, with_supernet_options)
from segnas_lite.nas.gates import LATENCY_FORMS
from segnas_lite.nas.space import SPACES

HELP = "NAS under a latency budget: ProxylessNAS, evolution or random search"


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    add_supernet_options(p)
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
    add_device_options(p)


def search_config(args, *, teacher: bool):
    """The ``SearchConfig`` of the command line (``--quick``: ``SearchConfig.quick``); the
    deployment target's side is --latency-size, else --image-size."""
    from segnas_lite.deploy.target import Target
    from segnas_lite.nas.config import SearchConfig
    given = {key: value for key, value in (("latency_form", args.latency_form),
                                           ("distill_weight", args.distill_weight))
             if value is not None}
    if teacher and args.distill_weight is None:
        given["distill_weight"] = 0.5
    target = Target(backend=args.backend, precision=args.precision,
                    image_size=args.latency_size or args.image_size)
    settings = dict(image_size=args.image_size, target=target, budget_ms=args.budget_ms,
                    constraint=args.constraint, calibrate=not args.no_calibrate, seed=args.seed,
                    quiet=args.quiet, device=args.device, **given)
    config = SearchConfig.quick(**settings) if args.quick else SearchConfig(**settings)
    return with_supernet_options(config, args)


def run(args) -> int:
    """The search of ``--strategy`` (ProxylessNAS with the seed's two changes by default); writes
    genotype.json, history.json."""
    from segnas_lite.data.splits import refuse_class_set_for_synthetic
    from segnas_lite.nas.run import run_search
    from segnas_lite.zoo import load_trained
    ctx = join_processes(args)  # under torchrun: rank 0 alone measures, writes and prints
    sources = data_sources(args, default="synthetic")
    refuse_class_set_for_synthetic(sources, class_set_flags(args))
    teacher = load_trained(args.teacher, frozen=True)[0] if args.teacher else None
    result = run_search(args.space, sources, search_config(args, teacher=teacher is not None),
                        out_dir=args.out, resume=args.resume, overwrite=args.overwrite,
                        teacher=teacher, data_options={**data_options(args),
                                                       "split_seed": args.split_seed},
                        budget_frac=args.budget_frac)
    if not ctx.is_main:
        return 1 if result.within_budget is False else 0
    print(result.to_text())
    if result.within_budget is False:
        print(f"no derived net measured within the budget: see {Path(args.out) / 'summary.json'}",
              file=sys.stderr)
        return 1
    print(f"retrain the child: segnas train --genotype {Path(args.out) / 'genotype.json'} --out ...")
    return 0

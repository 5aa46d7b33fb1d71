"""Does the super-net rank? Issue 26's ranking diagnostic and super-net ablation, resumable.

    python benchmarks/rank.py                    # every missing piece (~5.5 h on 2 quiet cores)
    python benchmarks/rank.py --max-pieces 12    # at most 12 pieces, then stop (one session)
    python benchmarks/rank.py --only supernet    # the 5 super-nets and their estimates (~1 h)
    python benchmarks/rank.py --only standalone  # the 48 stand-alone trainings (~5 min each)
    python benchmarks/rank.py --report           # the table and figure from the pieces done
    python benchmarks/rank.py --smoke            # synthetic data, about a minute (the tests)
    python benchmarks/rank.py --fresh            # start over (discards the state and weights)

What it measures (../shared/DESIGN.md, "Judging a search"; Yu et al., ICLR 2020):

* **Subnets.** ``../shared/data/people`` + ``ccp_people``, one fixed split (``split_seed`` 0: 824
  train, 206 val photos). Latency: the calibrated predictor (``nas.predictor.build_predictor``,
  OpenVINO f32, 2 threads, 256 px). Budgets as ``run_search``'s ``budget_frac``: 0.3 and 0.6 of the
  way from the fastest to the slowest predicted net; 12 subnets per budget spread over the predicted
  latency under it (``nas.rank.spread_over_latency``). The FIRST run fixes them (genotypes,
  predicted ms, params, FLOPs, the table itself) in the state: a later session on another CPU
  continues with the same subnets and never re-selects.
* **Stand-alone mIoU** (the truth): ``segnas train --genotype G --recipe people --epochs 15
  --image-size 160 --split-seed 0 --seed S`` on both folders, in process (the same code:
  ``training_splits``, ``train_with_recipe``; evaluated once, after the last epoch), seeds 0, 1.
* **Super-nets** (the ablation): ``uniform`` (one uniform path per step, today's default),
  ``strict_fair`` (FairNAS), ``sandwich2`` (slowest + fastest + 2 random paths),
  ``sandwich2_distill`` (the same, distilled in place from the slowest), ``uniform_x2`` (twice the
  epochs). Each trains the search's warm-up (``ProxylessSearch.run_epoch``: 15 epochs of its
  weight split at 160 px) and never sees val. Its estimate of a subnet is the search's own fitness
  (``strategies.SupernetScore``: mIoU on the held-out alpha part of the TRAIN split), with the
  shared BatchNorm statistics and re-estimated on 256 training images (once-for-all).
* **Result** (``rank_report.py``): per super-net x recalibration x budget, Kendall's tau and
  Spearman's rho against the stand-alone mean, 95% bootstrap intervals (``nas.rank``), next to
  #params, FLOPs and predicted latency alone and one training seed against the other (the most a
  score can reach): ``benchmarks/results/rank.json`` and ``rank.png``.

Pieces: the selection, one super-net per variant, its estimates, one training per (subnet, seed),
each written to ``--out``/state.json when done and skipped by the next run; a super-net or training
stopped mid-way resumes from its last epoch's checkpoint (Ctrl-C safe). A state made with other
settings is refused (``--fresh`` discards it). The selection records the load while the latency
table was measured: ``busy`` means the predicted latencies (the subnets' spread) are unreliable;
re-run with ``--fresh --refresh-latency`` on a quiet machine before quoting anything.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ResumableState, StateMismatchError, add_resumable_args,  # noqa: E402
                    finish_resumable_args, log)
from rank_pieces import SupernetVariant, short, train_standalone  # noqa: E402
from rank_report import write_report  # noqa: E402

from segnas_lite import flags  # noqa: E402
from segnas_lite.data import default_people_dir  # noqa: E402
from segnas_lite.deploy.target import Target  # noqa: E402
from segnas_lite.nas.latency import LatencyTable  # noqa: E402
from segnas_lite.nas.predictor import NUM_FIT  # noqa: E402
from segnas_lite.nas.space import MacroConfig, get_space  # noqa: E402
from segnas_lite.runio import progress  # noqa: E402

DATA = (str(default_people_dir()), str(default_people_dir().parent / "ccp_people"))
GUESS_SECONDS = {"supernet": 490.0, "estimates": 310.0, "standalone": 300.0}
"""A piece's duration on 2 cores until this state has recorded one of its kind (the ETA)."""


@dataclass(frozen=True)
class Settings:
    """Everything the recorded pieces depend on: the state's recipe (``ResumableState`` refuses a
    state saved with others). The defaults are the real run; :meth:`smoke` the seconds-long one."""

    data: tuple[str, ...] = DATA
    split_seed: int = 0              # the train/val cut of every pool folder
    train_length: int | None = None  # cap on training images per source (synthetic: how many)
    space: str = "seed"
    target: Target = field(default_factory=lambda: Target("openvino", "f32", 2, 256))
    calibrate: bool = True           # the calibrated predictor; False: the in-place table
    num_fit: int = NUM_FIT
    budget_fracs: tuple[float, ...] = (0.3, 0.6)
    subnets_per_budget: int = 12
    pool: int = 4000                 # random subnets drawn to spread from
    image_size: int = 160            # training side (stand-alone and super-net)
    recipe: str = "people"
    epochs: int = 15                 # stand-alone epochs
    train_seeds: tuple[int, ...] = (0, 1)
    supernet_epochs: int = 15        # warm-up epochs of every super-net but the longer one
    supernet_steps: int | None = None  # cap on batches per super-net epoch (None: the whole split)
    longer: int = 2                  # the longer warm-up: this many times the epochs
    bn_images: int = 256             # training images for BatchNorm recalibration
    seed: int = 0                    # super-nets, the subnets' draw

    @classmethod
    def smoke(cls) -> "Settings":
        """Synthetic data, the tiny space, the torch table, 2 subnets per budget, 1 epoch."""
        return cls(data=("synthetic",), train_length=16, space="tiny",
                   target=Target("torch", "f32", 1, 64), calibrate=False, subnets_per_budget=2,
                   pool=500, image_size=64, epochs=1, supernet_epochs=1, supernet_steps=1,
                   bn_images=8)

    def variants(self) -> dict[str, dict]:
        """The super-net ablation: name -> ``SearchConfig`` changes to ``UNIFORM_WARMUP`` (the
        first: none, the plain uniform warm-up)."""
        return {"uniform": {},
                "strict_fair": {"warmup_sampling": "strict_fair"},
                "sandwich2": {"sandwich": 2},
                "sandwich2_distill": {"sandwich": 2, "inplace_distill": True},
                f"uniform_x{self.longer}": {"warmup_epochs": self.longer * self.supernet_epochs}}

    def recipe_dict(self) -> dict:
        return {**asdict(self), "variants": self.variants()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--out", default=None, help="state.json, super-net weights and checkpoints (default "
        "benchmarks/results/rank/; --smoke: a folder in the cache)")
    add("--json", default=None, help="the report (default: benchmarks/results/rank.json; "
        "--smoke: rank.json in --out); the figure is written beside it as .png")
    add_resumable_args(parser, only=("standalone", "supernet", "report"), bootstrap=2000,
                       smoke_help="tiny synthetic version (seconds)")
    return finish_resumable_args(parser.parse_args(argv), name="rank")


# --------------------------------------------------------------------------- the subnets
def latency_table(settings: Settings, space, *, refresh: bool = False) -> LatencyTable:
    """The predictor for ``settings.target`` (cached on disk per CPU by ``nas.latency``;
    ``refresh``: measure it again and replace the cached one)."""
    from segnas_lite.nas.latency import build_table
    from segnas_lite.nas.predictor import build_predictor
    common = dict(target=settings.target, num_classes=2, macro_config=MacroConfig(), quiet=True,
                  refresh=refresh)
    if settings.calibrate:
        return build_predictor(space, num_fit=settings.num_fit, seed=settings.seed, **common)
    return build_table(space, **common)


def select_subnets(state, settings: Settings, *, refresh: bool = False) -> dict:
    """The subnets of every budget, fixed by the first run (with the table they were chosen by)."""
    done = state.get("subnets", "selection")
    if done is not None:
        return done
    from segnas_lite.models.summary import summarize
    from segnas_lite.nas.rank import spread_over_latency
    from segnas_lite.nas.supernet import build_child
    space = get_space(settings.space)
    log(f"selecting subnets: latency predictor for {settings.target.describe()} (first run only)")
    table = latency_table(settings, space, refresh=refresh)
    fastest, slowest = table.fastest()[1], table.slowest()[1]
    budgets = {f"{f:g}": fastest + f * (slowest - fastest) for f in settings.budget_fracs}
    subnets: dict[str, dict] = {}
    for i, (name, budget_ms) in enumerate(budgets.items()):
        for genotype in spread_over_latency(space, table.predict, budget_ms=budget_ms,
                                            count=settings.subnets_per_budget, pool=settings.pool,
                                            seed=settings.seed + i):
            key = ",".join(genotype.ops)
            if key not in subnets:
                size = summarize(build_child(genotype, num_classes=2),
                                 input_size=settings.target.shape)
                subnets[key] = {"ops": list(genotype.ops), "budgets": [],
                                "predicted_ms": table.predict(genotype),
                                "params": size.total_params, "gflops": size.gflops}
            subnets[key]["budgets"].append(name)
    loads = {"table": table.meta.get("load"),
             "calibration": table.meta.get("calibration", {}).get("load")}
    busy = any(bool((load or {}).get("busy")) for load in loads.values())
    for what, load in loads.items():
        if load:
            state.add_load(f"latency {what}", load)
    return state.put("subnets", "selection", {
        "budgets_ms": budgets, "fastest_ms": fastest, "slowest_ms": slowest, "subnets": subnets,
        "table": json.loads(table.to_json()), "busy": busy, "cpu": flags.cpu_name(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S")})


# --------------------------------------------------------------------------- the plan
@dataclass
class Piece:
    """One piece of work: ``done()`` says whether the state holds it, ``run()`` makes and
    records it."""

    kind: str  # "supernet", "estimates" or "standalone"
    name: str
    done: Callable[[], bool]
    run: Callable[[], object]


def plan(state, settings: Settings, selection: dict, out: Path, only: str | None) -> list[Piece]:
    """Every piece in order: each super-net and its estimates, then stand-alone seed by seed (so
    that after the first seed every subnet has a truth)."""
    pieces: list[Piece] = []
    subnets = selection["subnets"]
    if only in (None, "supernet"):
        for name in settings.variants():
            variant = SupernetVariant(settings, name, selection, out)

            def estimated(n=name) -> bool:
                return all(state.get("estimate", f"{n}/{k}") is not None for k in subnets)

            def trained(n=name, v=variant) -> bool:  # weights left behind on another machine
                return state.get("supernet", n) is not None and (v.weights.exists() or estimated(n))

            pieces.append(Piece("supernet", name, trained,
                                lambda n=name, v=variant: state.put("supernet", n, v.train())))
            pieces.append(Piece("estimates", name, estimated, lambda n=name, v=variant: state.put(
                "estimates", n, v.estimate(state))))
    if only in (None, "standalone"):
        for seed in settings.train_seeds:
            for key, subnet in subnets.items():
                piece = f"{key}/s{seed}"
                pieces.append(Piece("standalone", f"{short(key)} s{seed}",
                                    lambda p=piece: state.get("standalone", p) is not None,
                                    lambda p=piece, k=key, n=subnet, s=seed: state.put(
                                        "standalone", p, train_standalone(settings, k, n, s, out))))
    return pieces


def eta_seconds(state, pending: list[Piece]) -> float:
    """The pending pieces' duration: the mean of the recorded ones of each kind, else a guess."""
    means = {}
    for kind in GUESS_SECONDS:
        seconds = [p["seconds"] for p in state.data["pieces"].get(kind, {}).values()
                   if isinstance(p, dict) and p.get("seconds")]
        means[kind] = statistics.fmean(seconds) if seconds else GUESS_SECONDS[kind]
    return sum(means[p.kind] for p in pending)


def run_pieces(state, pending: list[Piece], max_pieces: int | None) -> int:
    """Run ``pending`` in order (at most ``max_pieces``), each recorded as it finishes."""
    todo = pending[:max_pieces] if max_pieces is not None else pending
    log(f"{len(pending)} pieces to do ({len(todo)} in this run), about "
        f"{eta_seconds(state, todo) / 3600:.1f} h (the recorded speed of each kind of piece, "
        "else a guess for 2 cores)")
    bar = progress(todo, desc="rank pieces", unit="piece")
    for i, piece in enumerate(bar):
        text = f"{piece.kind} {piece.name}, ~{eta_seconds(state, todo[i:]) / 60:.0f} min left"
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(text)
        else:  # no bar (SEGNAS_QUIET): one line per piece
            log(f"[{i + 1}/{len(todo)}] {text}")
        with state.stage(piece.kind):
            piece.run()
    return len(todo)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.smoke() if args.smoke else Settings()
    warnings.filterwarnings("ignore", message=r"\d+ of \d+ masks differ in size")
    if args.only == "report":
        path = args.out / "state.json"
        if not path.exists():
            raise SystemExit(f"no state at {path}: run the benchmark first")
        write_report(json.loads(path.read_text()), json_path=args.json, bootstrap=args.bootstrap)
        return 0
    if args.fresh and args.out.is_dir():  # only what this script made
        for path in [*args.out.glob("supernet_*"), args.out / "standalone"]:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    try:
        state = ResumableState(args.out / "state.json", recipe=settings.recipe_dict(),
                               fresh=args.fresh)
    except StateMismatchError as exc:  # said plainly, without a traceback
        raise SystemExit(str(exc)) from None
    try:
        with state.stage("selection"):
            selection = select_subnets(state, settings, refresh=args.refresh_latency)
        pieces = plan(state, settings, selection, args.out, args.only)
        pending = [piece for piece in pieces if not piece.done()]
        ran = run_pieces(state, pending, args.max_pieces)
    except KeyboardInterrupt:
        log("\ninterrupted: every finished piece is in the state (and a super-net or training "
            "stopped mid-way resumes from its last epoch); run the same command to continue")
        return 130
    if ran < len(pending):
        log(f"stopped after {ran} pieces (--max-pieces); {len(pending) - ran} remain")
    write_report(state.data, json_path=args.json, bootstrap=args.bootstrap)
    return 0


if __name__ == "__main__":
    sys.exit(main())

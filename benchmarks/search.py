"""Does the search beat random? Issue 26's fair comparison at two latency budgets, resumable.

    python benchmarks/search.py --fresh --max-pieces 10  # first session (replaces an old state)
    python benchmarks/search.py --max-pieces 15  # any later session: at most 15 pieces, then stop
    python benchmarks/search.py                  # every missing piece (~8 h on 2 quiet cores)
    python benchmarks/search.py --only search    # the 2 super-nets and 12 searches (~2 h)
    python benchmarks/search.py --only train     # the retrainings of the nets found so far
    python benchmarks/search.py --jobs 2         # two trainings at once (1.4x as many, 2 cores)
    python benchmarks/search.py --report         # the tables and figure from the pieces done
    python benchmarks/search.py --budgets-here   # budgets measured on this CPU (no timed piece yet)
    python benchmarks/search.py --smoke          # synthetic data, a minute or two (the tests)
    python benchmarks/search.py --warmup sandwich2_distill --fresh   # another super-net training

What it measures (../shared/DESIGN.md, "Judging a search"; Li and Talwalkar, UAI 2019):

* **Data.** ``../shared/data/people`` + ``ccp_people``, one fixed split (``split_seed`` 0) for
  every search and training: the searches see the train split only (``run_search`` with
  ``data_options={"split_seed": 0}``; their fitness is a held-out part of it), val judges.
* **Budgets.** 0.3 and 0.6 of the way from the fastest to the slowest net predicted for OpenVINO
  f32, 2 threads, 256 px: rank.py's predictor and budgets (measured on a quiet machine), fixed by
  the first run. Milliseconds belong to one CPU: the pieces that time a network (selections,
  searches with their closed loop, latency rows) run only on the CPU the budgets were measured on;
  on another, a run does the warm-ups and the trainings of the nets already found (accuracy does
  not depend on the CPU) and says that the rest waits. ``--budgets-here`` moves the budgets to
  this machine's CPU (the predictor measured again, the same fractions) while no timed piece is
  recorded: a study need not wait for a CPU its sessions may never get again.
* **Searched nets.** Per search seed (0, 1) ONE super-net (``warmup``: the search's warm-up, the
  ``Settings.warmup`` variant of rank.py's ablation), then per budget the three strategies on it,
  each by ``nas.run.run_search`` under the hard budget with the closed loop on measured latency:
  ``gradient`` (ProxylessNAS alpha epochs), ``evolution`` and ``random`` (as many evaluations).
* **Random subnets.** 5 per budget, drawn uniformly (seeded), kept when their MEASURED latency
  (package timer, ``deploy.bench`` as the closed loop measures) lies in 0.85-1.0 of the budget.
* **Baseline.** The MobileNetV3 block in every layer of the same macro, every channel width times w
  (``nas.space.scaled_space``): the widest w of the grid 0.25..1 (step 0.05) measured within the
  budget, as the old benchmark scaled it.
* **Retraining.** Every net with seeds 0, 1, 2 and rank.py's recipe (``rank_pieces.
  train_standalone``: ``segnas train --recipe people --epochs 15 --image-size 160``).
* **Clock.** ``clock="paced"``: every timing is read against the MobileNetV3 baseline (width 1)
  called between its calls (``timing.pace``; ``search_pieces.make_pacer``), in paced ms whose
  unit the first run records. A shared VM's speed drifts by tens of percent within a minute; the
  paced clock moved 1.9-2.7% where wall-clock medians moved 28-33% (``benchmarks/pace.py``, a
  2-core AMD EPYC VM). Only another process on our cores still makes a paced piece busy. ``clock="wall"``: plain
  ms, as rank.py (whose budgets only a wall-clock study shares).
* **Latency rows.** One piece measures every net (interleaved passes, best pass), so every quoted
  latency comes from the same run; a piece measured on a busy machine is never quoted and is
  measured again on the next run (so are the selections, which are latency pieces too).
* **Report** (``search_report.py``, which says why the bootstrap's unit is the net): per net mean
  +- std; per strategy its difference to the random subnets' mean with a 95% interval, the verdict
  per budget; ``results/search.json``, ``search_pareto.png`` (beside rank.py's scatter).

Pieces, in order: 3 selections, 2 warm-ups, 12 searches, the latency rows, 3 x ~24 trainings. Each
is recorded in ``--out``/state.json as soon as it is done and skipped by the next run; a warm-up,
a gradient search or a training stopped mid-way resumes from its last epoch (Ctrl-C and SIGTERM
safe). ``--jobs N`` runs up to N trainings at once, each in its own process with cores/N torch
threads (``jobs.py``: on 2 cores, two 1-thread trainings do 1.4x the work of one 2-thread one);
every other piece still runs alone, after the trainings before it in the plan have ended. A state
made with other settings is refused (``--fresh`` discards it). Nets found by later pieces get their
trainings planned as they appear.
"""
from __future__ import annotations

import argparse
import itertools
import signal
from contextlib import nullcontext
import json
import shutil
import statistics
import sys
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS, ResumableState, StateMismatchError, add_resumable_args,  # noqa: E402
                    finish_resumable_args, log)
from jobs import Job, ParallelJobs, WorkerDiedError  # noqa: E402
from rank import DATA, Settings as RankSettings  # noqa: E402
from search_pieces import (BudgetMoveError, Warmup, fix_budgets, make_pacer,  # noqa: E402
                           measure_rows, move_budgets_here, on_budget_cpu, select_random,
                           select_widths,
                           strategy_search, train_net)
from search_report import (every_net_known, latency_status, nets_of,  # noqa: E402
                           unique_nets, write_report)

from segnas_lite import flags  # noqa: E402
from segnas_lite.deploy.target import Target  # noqa: E402
from segnas_lite.errors import SegnasError  # noqa: E402
from segnas_lite.nas.latency import LatencyTable  # noqa: E402
from segnas_lite.nas.predictor import NUM_FIT  # noqa: E402
from segnas_lite.runio import progress  # noqa: E402
from segnas_lite.timing import pacing  # noqa: E402

GUESS_SECONDS = {"select": 120.0, "warmup": 490.0, "search": 500.0, "latency": 150.0,
                 "train": 300.0}
"""A piece's duration on 2 cores until this state has recorded one of its kind (the ETA)."""
WARMUPS = tuple(RankSettings().variants())  # rank.py's super-net ablation, by name


class SettingsError(SegnasError, ValueError):
    """A benchmark setting that cannot work (an unknown warm-up, an empty window)."""


@dataclass(frozen=True)
class Settings:
    """Everything the recorded pieces depend on: the state's recipe (``ResumableState`` refuses a
    state saved with others). The defaults are the real run; :meth:`smoke` the minute-long one.
    The fields rank.py's helpers read (data, split_seed, train_length, space, target, calibrate,
    num_fit, seed, image_size, recipe, epochs) mean what they mean there."""

    data: tuple[str, ...] = DATA
    split_seed: int = 0              # the train/val cut of every pool folder
    train_length: int | None = None  # cap on training images per source
    space: str = "seed"
    target: Target = field(default_factory=lambda: Target("openvino", "f32", 2, 256))
    calibrate: bool = True           # the calibrated predictor (rank.py's, seed 0)
    num_fit: int = NUM_FIT
    seed: int = 0                    # the predictor's calibration draw, the random subnets' draw
    budget_fracs: tuple[float, ...] = (0.3, 0.6)
    search_seeds: tuple[int, ...] = (0, 1)
    strategies: tuple[str, ...] = ("gradient", "evolution", "random")
    warmup: str = "sandwich2_distill"  # the super-net's training: rank.py's best variant (+BN,
                                       # the fitness recalibrates), SearchConfig's default
    warmup_epochs: int = 15          # as rank.py's super-nets (its variant may change it)
    search_steps: int | None = None  # cap on batches per search epoch (None: the whole split)
    alpha_epochs: int = 5            # gradient: alpha epochs after the warm-up (~50 steps each)
    arch_lr: float = 0.05            # notebook 06's full setting (1e-3 barely moves alpha here)
    population: int = 24             # evolution (once-for-all's 100, scaled to a CPU) ...
    generations: int = 5             # ... 96 evaluations at most; random search makes as many
    bn_images: int = 256             # BatchNorm recalibration before every fitness (rank.py's)
    random_subnets: int = 5          # per budget
    window: tuple[float, float] = (0.85, 1.0)  # their measured latency, as fractions of the budget
    max_draws: int = 200             # random subnets measured per budget at most
    clock: str = "paced"             # "paced" (timing.pace, reference: the baseline) or "wall"
    width_min: float = 0.25          # the scaled baseline's width grid
    width_step: float = 0.05
    fit_runs: int = 20               # selection timings: runs per pass ...
    fit_repeats: int = 3             # ... interleaved passes (the best pass counts)
    runs: int = 30                   # the latency rows: runs per pass ...
    repeats: int = 5                 # ... interleaved passes
    image_size: int = 160            # super-net and retraining side
    recipe: str = "people"
    epochs: int = 15                 # retraining epochs
    train_seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        if self.warmup not in WARMUPS:
            raise SettingsError(f"unknown warm-up {self.warmup!r}: choose one of rank.py's "
                                f"super-net variants {list(WARMUPS)}")
        if self.clock not in ("paced", "wall"):
            raise SettingsError(f"clock must be 'paced' or 'wall', got {self.clock!r}")
        low, high = self.window
        if not 0.0 <= low < high:
            raise SettingsError(f"the window must be 0 <= low < high, got {self.window}")

    @classmethod
    def smoke(cls) -> "Settings":
        """Synthetic data, the tiny space, torch at 64 px, one budget, 1 epoch of everything."""
        return cls(data=("synthetic",), train_length=16, space="tiny",
                   target=Target("torch", "f32", 1, 64), num_fit=12, budget_fracs=(0.9,),
                   warmup_epochs=1, search_steps=1, alpha_epochs=1, population=4, generations=2,
                   bn_images=8, random_subnets=2, window=(0.0, 1.0), max_draws=40, width_min=0.5,
                   width_step=0.25, fit_runs=3, fit_repeats=1, runs=3, repeats=2, image_size=64,
                   epochs=1, train_seeds=(0, 1))

    def warmup_changes(self) -> dict:
        """The ``SearchConfig`` changes of the ``warmup`` variant (rank.py's definition)."""
        return RankSettings(supernet_epochs=self.warmup_epochs).variants()[self.warmup]

    def recipe_dict(self) -> dict:
        return {**asdict(self), "warmup_changes": self.warmup_changes()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--out", default=None, help="state.json and the pieces' folders (default "
        "benchmarks/results/search/; --smoke: in the cache)")
    add("--json", default=None, help="the report (default: benchmarks/results/search.json; "
        "--smoke: in --out); the figure beside it as <stem>_pareto.png")
    add("--rank-json", default=None, help="rank.py's report, drawn beside the Pareto (default: "
        "benchmarks/results/rank.json; --smoke: none)")
    add("--warmup", choices=WARMUPS, default=None,
        help="the super-net training (a variant of rank.py's ablation; default: Settings.warmup)")
    add("--jobs", type=int, default=1, metavar="N",
        help="run up to N trainings at once, each in its own process (cores/N threads each; "
        "the timed pieces still run alone)")
    add("--budgets-here", action="store_true",
        help="measure the budgets on this machine's CPU instead of the recorded one (allowed while "
        "no selection, search or latency row is recorded; the warm-ups and trainings stay)")
    add_resumable_args(parser, only=("select", "search", "latency", "train", "report"),
                       bootstrap=10000, smoke_help="tiny synthetic version (a minute or two)")
    args = finish_resumable_args(parser.parse_args(argv), name="search")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.rank_json is None and not args.smoke:
        args.rank_json = RESULTS / "rank.json"
    return args


# --------------------------------------------------------------------------- the plan
@dataclass
class Piece:
    """One piece of work: ``done()`` says whether the state holds it (quiet, for a timing piece),
    ``run()`` makes and records it. ``job``: the same work as a ``jobs.Job`` another process may
    run (a training: it times nothing), else None."""

    kind: str  # "select", "warmup", "search", "latency" or "train"
    name: str
    done: Callable[[], bool]
    run: Callable[[], object]
    job: Job | None = None


def _quiet(record) -> bool:
    return record is not None and not record.get("busy")


def plan(state, settings: Settings, budgets: dict, out: Path, only: str | None) -> list[Piece]:
    """Every piece the state holds enough to plan, in order: selections, then per search seed its
    warm-up and searches, the latency rows (once every net is known), trainings seed by seed (so
    that after the first seed every net has an mIoU)."""
    pieces: list[Piece] = []
    search_keys = [(f, s, g) for s in settings.search_seeds for f in settings.budget_fracs
                   for g in settings.strategies]
    timed = on_budget_cpu(budgets)  # selections, searches and latency rows: the budgets' CPU only
    if only in (None, "select") and timed:
        pieces.append(Piece("select", "mbv3 widths", lambda: _quiet(state.get("select", "widths")),
                            lambda: state.put("select", "widths", select_widths(state, settings))))
        table = LatencyTable.from_json(json.dumps(budgets["table"]))
        for frac in settings.budget_fracs:
            key = f"random/{frac:g}"
            pieces.append(Piece("select", f"random subnets {frac:g}",
                                lambda k=key: _quiet(state.get("select", k)),
                                lambda k=key, f=frac: state.put("select", k, select_random(
                                    state, settings, f, budgets["budgets_ms"][f"{f:g}"], table))))
    if only in (None, "search"):
        for seed in settings.search_seeds:
            warmup = Warmup(settings, seed, budgets, out)
            mine = [f"{f:g}/s{s}/{g}" for f, s, g in search_keys if s == seed]

            def warm(s=seed, w=warmup, keys=mine) -> bool:  # its checkpoint left on another machine
                return state.get("warmup", f"s{s}") is not None and (
                    w.checkpoint.exists() or all(state.get("search", k) is not None for k in keys))

            pieces.append(Piece("warmup", f"s{seed}", warm, lambda s=seed, w=warmup: state.put(
                "warmup", f"s{s}", w.train())))
            for frac, _, strategy in [k for k in search_keys if k[1] == seed and timed]:
                key = f"{frac:g}/s{seed}/{strategy}"
                pieces.append(Piece(
                    "search", f"{frac:g} s{seed} {strategy}",
                    lambda k=key: state.get("search", k) is not None,
                    lambda k=key, f=frac, s=seed, g=strategy, w=warmup: state.put(
                        "search", k, strategy_search(state, settings, frac=f, seed=s, strategy=g,
                                                     budgets=budgets, warmup=w, out=out))))
    if only in (None, "latency") and timed and every_net_known(state.data):
        nets = {n["key"]: {"space": n["space"], "ops": n["ops"]} for n in unique_nets(state.data)}
        pieces.append(Piece("latency", f"{len(nets)} nets",
                            lambda: latency_status(state.data, nets_of(state.data))["quoted"],
                            lambda: state.put("latency", "rows",
                                              measure_rows(state, settings, nets))))
    if only in (None, "train"):
        for seed in settings.train_seeds:
            for net in unique_nets(state.data):
                key = f"{net['key']}/s{seed}"
                job = Job(train_net, (settings, net, seed, out),
                          lambda result, k=key: state.put("train", k, result))
                pieces.append(Piece("train", f"{net['label']} ({net['budget']}) s{seed}",
                                    lambda k=key: state.get("train", k) is not None,
                                    lambda j=job: j.record(j.fn(*j.args)), job=job))
    return pieces


def unplanned_trainings(state, settings: Settings, only: str | None) -> int:
    """Trainings of nets still to be found (at most: two budgets may share a net)."""
    if only not in (None, "train") or every_net_known(state.data):
        return 0
    per_budget = len(settings.strategies) * len(settings.search_seeds) + settings.random_subnets + 1
    missing = len(settings.budget_fracs) * per_budget - len(unique_nets(state.data))
    return max(0, missing) * len(settings.train_seeds)


def mean_seconds(state) -> dict[str, float]:
    """Per kind of piece, the mean recorded duration, else the guess."""
    out = {}
    for kind, guess in GUESS_SECONDS.items():
        seconds = [p["seconds"] for p in state.data["pieces"].get(kind, {}).values()
                   if isinstance(p, dict) and p.get("seconds")]
        out[kind] = statistics.fmean(seconds) if seconds else guess
    return out


def run_pieces(state, make_plan: Callable[[], list[Piece]], max_pieces: int | None, *,
               unplanned: Callable[[], int] = lambda: 0, jobs: int = 1) -> tuple[int, int]:
    """Run the first pending piece of ``make_plan()`` until none is left or ``max_pieces`` ran,
    re-planning after each (a finished search adds trainings). A piece runs at most once per run:
    one measured on a busy machine waits for the next run. ``jobs`` > 1: pieces with a ``job``
    (trainings) run up to ``jobs`` at once in other processes; a piece without one waits until
    they have ended and runs alone. Returns (ran, still pending)."""
    tried: set[tuple[str, str]] = set()

    def pending() -> list[Piece]:
        return [p for p in make_plan() if not p.done() and (p.kind, p.name) not in tried]

    def eta(pieces: list[Piece]) -> float:
        means = mean_seconds(state)
        return (sum(means[p.kind] / (jobs if p.job else 1) for p in pieces)
                + unplanned() * means["train"] / jobs)

    first = pending()
    total = len(first) + unplanned()
    limit = "" if max_pieces is None else f"; at most {max_pieces} in this run"
    at_once = "" if jobs == 1 else f", up to {jobs} trainings at once"
    log(f"{len(first)} pieces to do now, and about {unplanned()} trainings of nets still to be "
        f"found: about {eta(first) / 3600:.1f} h (the recorded speed of each kind of piece, else "
        f"a guess for 2 cores){limit}{at_once}")
    steps = itertools.count() if max_pieces is None else range(max_pieces)
    bar = progress(steps, desc="search pieces", unit="piece",
                   total=total if max_pieces is None else min(max_pieces, total))

    def say(text: str) -> None:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(text)
        else:  # no bar (SEGNAS_QUIET): one line per piece
            log(text)

    ran = 0
    with ParallelJobs(jobs) as pool:
        for _ in bar:  # one finished piece per step
            while jobs > 1 and not pool.full and (max_pieces is None
                                                  or ran + pool.running < max_pieces):
                todo = pending()
                if not todo or todo[0].job is None:
                    break
                piece = todo[0]
                tried.add((piece.kind, piece.name))
                pool.submit(piece.name, piece.job)
                say(f"[started] {piece.kind} {piece.name} ({pool.running} running), "
                    f"~{eta(todo) / 60:.0f} min left")
            if pool.running:
                with state.stage("train"):
                    name = pool.wait_one()
                ran += 1
                say(f"[{ran}] done: train {name}")
                continue
            todo = pending()
            if not todo:
                break
            piece = todo[0]
            tried.add((piece.kind, piece.name))
            say(f"[{ran + 1}] {piece.kind} {piece.name}, ~{eta(todo) / 60:.0f} min left")
            with state.stage(piece.kind):
                piece.run()
            ran += 1
    left = [p for p in make_plan() if not p.done()]
    return ran, len(left) + unplanned()


def _interrupt_on_sigterm() -> None:
    """``kill`` (SIGTERM) stops the study as Ctrl-C does: the workers are terminated, every
    finished piece is in the state."""
    def handler(_signum, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.smoke() if args.smoke else Settings()
    if args.warmup:
        settings = replace(settings, warmup=args.warmup)
    warnings.filterwarnings("ignore", message=r"\d+ of \d+ masks differ in size")
    report = dict(json_path=args.json, rank_json=args.rank_json, bootstrap=args.bootstrap)
    if args.only == "report":
        path = args.out / "state.json"
        data = json.loads(path.read_text()) if path.exists() else None
        if data is None or "strategies" not in data.get("recipe", {}):
            raise SystemExit(f"no state of this benchmark at {path} (none, or an older version's): "
                             "run the benchmark first (--fresh replaces an older state)")
        write_report(data, **report)
        return 0
    if args.fresh and args.out.is_dir():  # only what this script made (the state is replaced)
        for path in [*args.out.glob("warmup_s*"), *args.out.glob("search_b*_s*_*"),
                     args.out / "standalone"]:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    try:
        state = ResumableState(args.out / "state.json", recipe=settings.recipe_dict(),
                               fresh=args.fresh)
    except StateMismatchError as exc:  # said plainly, without a traceback
        raise SystemExit(str(exc)) from None
    _interrupt_on_sigterm()
    try:
        pacer = make_pacer(state, settings)
        if pacer is not None:
            log(f"clock: paced by {pacer.name} ({pacer.reference_ms:.3f} ms per paced unit)")
        with pacing(pacer) if pacer is not None else nullcontext():
            return _run(args, state, settings, report)
    except (BudgetMoveError, WorkerDiedError) as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        log("\ninterrupted: every finished piece is in the state (a warm-up, gradient search or "
            "training stopped mid-way resumes from its last epoch); run the same command again")
        return 130


def _run(args, state, settings: Settings, report: dict) -> int:
    """Budgets, then every pending piece, then the report (inside the study's clock)."""
    with state.stage("budgets"):
        if args.budgets_here:
            log(f"budgets: measured again on {flags.cpu_name()} (--budgets-here)")
            move_budgets_here(state, settings)  # recorded: fix_budgets returns them
        shared = None if args.smoke else RESULTS / "rank" / "state.json"
        budgets = fix_budgets(state, settings, rank_state=shared,
                              refresh=args.refresh_latency)
    if not on_budget_cpu(budgets):
        log(f"this CPU ({flags.cpu_name()}) is not the one the budgets were measured on "
            f"({budgets['cpu']}): the selections, searches and latency rows wait for a session "
            "on that one; warm-ups and the trainings of nets already found run here")
    ran, left = run_pieces(state, lambda: plan(state, settings, budgets, args.out, args.only),
                           args.max_pieces, jobs=args.jobs,
                           unplanned=lambda: unplanned_trainings(state, settings, args.only))
    if left:
        log(f"ran {ran} pieces; {left} remain (or were measured on a busy machine and wait for "
            "the next run): run the same command again")
    write_report(state.data, **report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

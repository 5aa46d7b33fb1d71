"""The seed's Table 2 question, asked fairly on real photos: at a latency budget, is the searched
network more accurate than the other networks that fit the same budget?

    python benchmarks/search.py           # 2 budgets x 2 search seeds + ~25 retrainings (~2.5 h)
    python benchmarks/search.py --budget-fracs 0.3 0.6 --seeds 0 1 --random 5   # the same, in full
    python benchmarks/search.py --smoke --out /tmp/search.json --results-dir /tmp/search  # minutes
    python benchmarks/search.py --fresh   # start over (discards the saved state and searches)
    python benchmarks/search.py --latency-form mul_log --warmup-sampling constrained \
        --results-dir benchmarks/results/search_reference --out benchmarks/results/search_reference.json
                                          # the ablation: the reference's latency term and warm-up

Data: ``../shared/data/people`` (230 photos, person masks), the fixed 80/20 split with seed 0 for
every search seed. The searches see only the 184 train photos: a folder of links to them (in the
cache folder, never in the repository), because ``run_search`` splits its data with the search seed;
inside it ``run_search`` keeps 80% and halves them for weight and alpha steps. mIoU is on the 46 val
photos after retraining.

Latency: OpenVINO f32 at ``--latency-size`` 256 px, 2 threads (the deployment target), always
*measured* end to end. A budget is a fraction (``--budget-fracs``) of the way from the fastest to
the slowest architecture the calibrated predictor (``nas.predictor.build_predictor``, seed 0) allows;
the same milliseconds serve every search seed. At each budget the rows are:

* searched     ``run_search`` (``--search-size`` px) per ``--seeds``: the budget-derived genotype
* random       ``--random`` subnets drawn uniformly, kept only if measured within the budget
* mbv3         the MobileNetV3 baseline of the same macro (``mbv3_3x3`` in every layer), unscaled
* mbv3_scaled  the same with every channel width times w (``nas.space.scaled_space``): the largest
               w on the grid ``--width-min..1`` step ``--width-step`` measured within the budget
* uniform      one other op in every layer, when measured within the budget (the others are
               measured, listed under ``uniform_fit_ms``, and not trained)
* reference    Fast-SCNN and LR-ASPP MobileNetV3-Small (within the budget by their row latency)

"Within the budget": each net is judged by the measurement that selected it, the best of a few
medians either way: the search's closed-loop derivation for the searched nets, ``measure_genotypes``
+ ``best_of`` (``--fit-repeats`` interleaved passes of ``--fit-runs`` runs, as the search's
calibration measures) for the others; that one is also taken of the searched nets (``fit_ms``),
as a check. Every row is then timed once more (``measure``: best median of ``--rounds`` rounds of
``--runs``), with params and GFLOPs, and every network is retrained from scratch with one recipe
(``common.people_training``: batch 8, SGD lr 0.05, poly schedule, ``--train-steps`` steps at
``--train-size`` px, seed ``--train-seed``). The verdict per budget says "yes" when every searched
net measured within the budget and their mean mIoU beats the best random subnet and the
width-scaled baseline; the JSON also compares with the unscaled baseline, the uniform nets and
the references.

Resumable: every finished piece (budget, search, measurement, training) is written at once to
``--results-dir``/state.json (atomically) and skipped on the next run; a search stopped mid-way
resumes from its checkpoint. A saved state made with another recipe is refused: pass the same flags,
or ``--fresh``. Output: ``--out`` (JSON: environment, settings, rows, verdicts, wall time of each
stage, the machine load and ``busy: true`` when something else used the CPU while latencies were
measured), a printed table, and ``search_pareto.png`` beside the JSON.

How long (2 quiet cores, estimated): predictors ~10 min, 4 searches ~15 min, latency ~10 min,
~25 retrainings of 1200 steps at 160 px ~100 min; ``--smoke`` a few minutes. Latencies measured
while the machine was busy stay in the state: re-run with ``--fresh`` on a quiet machine before
quoting them.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS, ResumableState, environment, people_training,  # noqa: E402
                    print_table, write_json)

from segnas_lite import flags  # noqa: E402
from segnas_lite.data import default_people_dir, open_dataset  # noqa: E402
from segnas_lite.zoo import build_model  # noqa: E402
from segnas_lite.nas import Genotype, MacroConfig, get_space  # noqa: E402
from segnas_lite.deploy.target import Target  # noqa: E402
from segnas_lite.nas.config import SearchConfig  # noqa: E402
from segnas_lite.nas.gates import LATENCY_FORMS  # noqa: E402
from segnas_lite.nas.measure import best_of, measure, measure_genotypes  # noqa: E402
from segnas_lite.nas.predictor import build_predictor  # noqa: E402
from segnas_lite.nas.run import run_search  # noqa: E402
from segnas_lite.nas.space import scaled_space  # noqa: E402
from segnas_lite.runio import stream_seed  # noqa: E402
from segnas_lite.models.summary import summarize  # noqa: E402
from segnas_lite.deploy.openvino import openvino_probe  # noqa: E402
from segnas_lite.timing import LoadMonitor  # noqa: E402
from segnas_lite.teaching.plots import budget_pareto  # noqa: E402

SPLIT_SEED = 0      # the people split, whatever the search seed
RANDOM_STREAM = 7   # stream_seed stream of the random subnets
REFERENCES = ("fast_scnn", "lraspp_mobilenetv3_small")
SMOKE = dict(budget_fracs=[0.8], seeds=[0], random=2, max_random_draws=16, latency_size=128,
             num_fit=12, fit_runs=5, fit_repeats=2, runs=5, rounds=1, search_size=64,
             search_warmup_epochs=1, search_epochs=1, search_steps=2, train_size=64,
             train_steps=2, width_min=0.5, width_step=0.25)
RECIPE = ("space", "people", "latency_size", "threads", "num_fit", "fit_runs", "fit_repeats",
          "runs", "rounds", "search_size", "search_warmup_epochs", "search_epochs", "search_steps",
          "train_size", "train_steps", "train_seed", "lr", "random_seed", "latency_form",
          "warmup_sampling", "arch_lr")
"""The settings every saved piece depends on: a state saved with others is refused, not mixed."""


class BudgetTooTightError(RuntimeError):
    """Too few random subnets measured within a budget after ``--max-random-draws`` draws."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--people", default=str(default_people_dir()), help="the people set (never copied)")
    add("--space", default="seed")
    add("--budget-fracs", type=float, nargs="+", default=[0.3, 0.6],
        help="budgets, as fractions from the fastest to the slowest predicted architecture")
    add("--seeds", type=int, nargs="+", default=[0, 1], help="search seeds per budget")
    add("--random", type=int, default=5, help="random subnets within each budget")
    add("--max-random-draws", type=int, default=100,
        help="give up after this many draws per budget")
    add("--random-seed", type=int, default=0)
    add("--latency-size", type=int, default=256, help="deployment side for every latency")
    add("--threads", type=int, default=2)
    add("--num-fit", type=int, default=60, help="random subnets that calibrate the predictor")
    add("--fit-runs", type=int, default=20, help="runs per pass of the within-budget measurement")
    add("--fit-repeats", type=int, default=3, help="interleaved passes of that measurement")
    add("--runs", type=int, default=30, help="runs per round of each row's latency")
    add("--rounds", type=int, default=3, help="rounds per row latency (best median)")
    add("--search-size", type=int, default=128, help="training side of the search")
    add("--search-warmup-epochs", type=int, default=50, help="weight-only epochs (about 9 batches)")
    add("--search-epochs", type=int, default=25, help="alpha epochs after the warm-up")
    add("--search-steps", type=int, default=20, help="cap on batches per search epoch")
    add("--arch-lr", type=float, default=0.05,
        help="the search's Adam lr for alpha (notebook 06's full setting; the reference's 1e-3 "
             "barely moves alpha in a workshop-length search)")
    add("--latency-form", default="hinge", choices=LATENCY_FORMS,
        help="the search's latency term (the ablation against collapse: mul_log, the reference)")
    add("--warmup-sampling", default="fair", choices=("fair", "constrained"),
        help="the search's warm-up paths (constrained: under the budget, as the seed)")
    add("--train-size", type=int, default=160, help="retraining and evaluation side")
    add("--train-steps", type=int, default=1200, help="retraining SGD steps (batch 8)")
    add("--train-seed", type=int, default=0)
    add("--lr", type=float, default=0.05)
    add("--width-min", type=float, default=0.25, help="narrowest width of the scaled baseline")
    add("--width-step", type=float, default=0.05)
    add("--smoke", action="store_true", help="a tiny version that runs in a few minutes")
    add("--fresh", action="store_true", help="discard the saved state and start over")
    add("--verbose", action="store_true", help="progress of the searches and measurements")
    add("--results-dir", default=str(RESULTS / "search"), help="state.json and the searches")
    add("--out", default=str(RESULTS / "search.json"))
    args = parser.parse_args(argv)
    args.people = str(Path(args.people).resolve())
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    return args


def log(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- the networks
def nas_info(genotype: Genotype) -> dict:
    return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}


def nas_key(genotype: Genotype) -> str:
    return f"{genotype.space}:{','.join(genotype.ops)}"


def widths(args) -> list[float]:
    count = int(round((1.0 - args.width_min) / args.width_step))
    return sorted({round(args.width_min + i * args.width_step, 4) for i in range(count)} | {1.0})


def mbv3(space, width: float) -> Genotype:
    """The MobileNetV3 baseline at ``width`` (width 1 is the unscaled space itself)."""
    return Genotype.uniform(space if width == 1.0 else scaled_space(space, width), "mbv3_3x3")


def train_only_folder(people: Path) -> Path:
    """Links to the people photos of the train split (split seed 0), in the cache folder: the data
    every search sees, whatever its own seed (``run_search`` splits with the search seed)."""
    full = open_dataset(people, image_size=32, split="train", seed=SPLIT_SEED)
    pairs = [full.dataset.pairs[i] for i in full.indices]
    tag = hashlib.sha1(repr((str(people.resolve()), [p[0].name for p in pairs])).encode())
    folder = flags.cache_dir() / "people_train_only" / tag.hexdigest()[:12]
    if not folder.is_dir():
        partial = folder.with_name(folder.name + f".partial{os.getpid()}")
        for image, mask in pairs:
            for sub, path in (("Training_Images", image), ("Ground_Truth", mask)):
                (partial / sub).mkdir(parents=True, exist_ok=True)
                (partial / sub / path.name).symlink_to(path.resolve())
        os.replace(partial, folder)  # a reader never sees a half-made folder
    return folder


# --------------------------------------------------------------------------- latency
def deployment(args) -> Target:
    """Where every latency of this benchmark is for: OpenVINO f32 at ``--latency-size``."""
    return Target(backend="openvino", precision="f32", threads=args.threads,
                  image_size=args.latency_size)


def within_budget_ms(state, args, nets: list[tuple[str, Genotype]], what: str) -> dict[str, float]:
    """The within-budget statistic of every net, measured once and kept: ``best_of`` over
    ``--fit-repeats`` interleaved passes (``measure_genotypes``, as the search measures)."""
    missing: dict[str, dict[str, Genotype]] = {}  # space name -> {key: genotype}, one call each
    for key, genotype in nets:
        if state.get("fit_ms", key) is None:
            missing.setdefault(genotype.space, {})[key] = genotype
    for space_name, todo in missing.items():
        todo = list(todo.items())
        with LoadMonitor(what=what, warn=False, ov_probe=openvino_probe(args.threads)) as monitor:
            passes = measure_genotypes([g for _, g in todo], space=get_space(space_name),
                                       target=deployment(args), runs=args.fit_runs,
                                       repeats=args.fit_repeats, quiet=not args.verbose, desc=what)
        state.add_load(what, monitor.report.to_dict())
        for (key, _), ms in zip(todo, best_of(passes)):
            state.put("fit_ms", key, ms)
    return {key: state.get("fit_ms", key) for key, _ in nets}


def distinct_random(space, rng: random.Random):
    seen: set = set()
    while True:
        genotype = space.random_genotype(rng)
        if genotype.ops not in seen:
            seen.add(genotype.ops)
            yield genotype


def baseline_fits(state, args, space) -> tuple[dict[str, float], dict[float, float]]:
    """Within-budget latency of the uniform nets (op -> ms) and of the MobileNetV3 baseline at every
    width of the grid (width -> ms); both serve every budget."""
    uniform = {op: Genotype.uniform(space, op) for op in space.layers[0].ops}
    fit = within_budget_ms(state, args, [(nas_key(g), g) for g in uniform.values()], "uniform nets")
    uniform_ms = {op: fit[nas_key(g)] for op, g in uniform.items()}
    width_ms = {}
    for width in widths(args):
        genotype = mbv3(space, width)
        width_ms[width] = within_budget_ms(state, args, [(nas_key(genotype), genotype)],
                                           f"mbv3 width {width:g}")[nas_key(genotype)]
    return uniform_ms, width_ms


def random_under_budget(state, args, space, frac: float, budget_ms: float) -> list[Genotype]:
    """``--random`` uniform draws measured within the budget, in draw order; the draws (and their
    measurements) are saved, so a resumed run replays the same generator and continues it."""
    key = f"{frac:g}_s{args.random_seed}"
    draws = list(state.get("random_draws", key, []))
    source = distinct_random(space, random.Random(stream_seed(args.random_seed,
                                                              round(frac * 1000), RANDOM_STREAM)))
    for _ in draws:
        next(source)
    while True:
        kept = [d for d in draws if d["ms"] <= budget_ms][:args.random]
        if len(kept) == args.random:
            return [Genotype(space.name, tuple(d["ops"])) for d in kept]
        room = args.max_random_draws - len(draws)
        if room <= 0:
            raise BudgetTooTightError(
                f"only {len(kept)} of {len(draws)} random subnets measured within the "
                f"{budget_ms:.2f} ms budget (fraction {frac:g}); raise --max-random-draws or the "
                "budget fraction, or lower --random")
        batch = [next(source) for _ in range(min(room, max(4, 2 * (args.random - len(kept)))))]
        measured = within_budget_ms(state, args, [(nas_key(g), g) for g in batch],
                                    f"random subnets, budget {frac:g}")
        draws += [{"ops": list(g.ops), "ms": measured[nas_key(g)]} for g in batch]
        state.put("random_draws", key, draws)


def row_latency(state, args, key: str, info: dict) -> dict:
    """Latency (best median of ``--rounds``), params and GFLOPs of one network, kept in the
    state."""
    done = state.get("latency", key)
    if done is None:
        started = time.perf_counter()
        torch.manual_seed(0)
        model = build_model(info["name"], num_classes=2, **info.get("kwargs", {})).eval()
        stats = summarize(model, input_size=(args.latency_size,) * 2)
        ms = measure(model, (1, 3, args.latency_size, args.latency_size), backend="openvino",
                     precision="f32", threads=args.threads, warmup=5, runs=args.runs,
                     rounds=args.rounds)
        done = state.put("latency", key, {"latency_ms": ms, "params": stats.total_params,
                                          "gflops": stats.gflops,
                                          "seconds": round(time.perf_counter() - started, 1)})
    return done


# --------------------------------------------------------------------------- stages
def budgets(state, args, space) -> dict[float, dict]:
    """Each fraction's budget in ms from the seed-0 calibrated predictor (the one the seed-0 search
    builds and caches); the same ms for every search seed."""
    out = {}
    for frac in args.budget_fracs:
        done = state.get("budgets", f"{frac:g}")
        if done is None:
            table = build_predictor(space, target=deployment(args), num_fit=args.num_fit,
                                    seed=0, macro_config=MacroConfig(), quiet=not args.verbose)
            fastest, slowest = table.fastest()[1], table.slowest()[1]
            done = state.put("budgets", f"{frac:g}", {
                "fraction": frac, "budget_ms": fastest + frac * (slowest - fastest),
                "fastest_predicted_ms": fastest, "slowest_predicted_ms": slowest,
                "predictor": table.meta.get("key"),
                "calibration_load": table.meta.get("calibration", {}).get("load")})
        out[frac] = done
        log(f"budget {frac:g}: {done['budget_ms']:.2f} ms (predicted fastest "
            f"{done['fastest_predicted_ms']:.2f}, slowest {done['slowest_predicted_ms']:.2f})")
    return out


def search(state, args, space, data: Path, frac: float, budget_ms: float, seed: int) -> dict:
    """One search, resumed from its checkpoint when a previous run stopped inside it."""
    key = f"{frac:g}_s{seed}"
    done = state.get("search", key)
    if done is not None:
        return done
    out_dir = Path(args.results_dir) / f"search_b{frac:g}_s{seed}"
    resume = (out_dir / "search_checkpoint.pt").exists()
    log(f"search: budget {frac:g} ({budget_ms:.2f} ms), seed {seed}"
        f"{' (resumed from its checkpoint)' if resume else ''}")
    started = time.perf_counter()
    config = SearchConfig(image_size=args.search_size, target=deployment(args),
                          budget_ms=budget_ms, seed=seed, quiet=not args.verbose, calibrate=True,
                          num_fit=args.num_fit, warmup_epochs=args.search_warmup_epochs,
                          search_epochs=args.search_epochs, steps_per_epoch=args.search_steps,
                          latency_form=args.latency_form, warmup_sampling=args.warmup_sampling,
                          arch_lr=args.arch_lr)
    result = run_search(space, str(data), config, out_dir=out_dir, resume=resume,
                        overwrite=not resume)
    summary = result.summary()
    log(f"  derived: {' '.join(result.genotype_budget.ops)} ({fmt(summary['measured_ms'], '.2f')} "
        f"ms measured by the search, {time.perf_counter() - started:.0f} s)")
    return state.put("search", key, {
        "genotype": list(result.genotype_budget.ops), "argmax": list(result.genotype_argmax.ops),
        "summary": summary, "config": result.history.config, "out_dir": str(out_dir),
        "seconds": round(time.perf_counter() - started, 1)})


def budget_rows(state, args, space, frac: float, budget: dict, searches: dict, uniform_ms: dict,
                width_ms: dict) -> list[dict]:
    """The contenders at one budget (before latency and training): kind, label, model, fit."""
    budget_ms = budget["budget_ms"]
    rows = []

    def add(kind: str, label: str, genotype: Genotype | None = None, name: str | None = None,
            **extra) -> None:
        key = nas_key(genotype) if genotype is not None else name
        info = nas_info(genotype) if genotype is not None else {"name": name}
        rows.append({"budget_frac": frac, "budget_ms": budget_ms, "kind": kind, "label": label,
                     "key": key, "info": info,
                     "ops": list(genotype.ops) if genotype is not None else None,
                     "fit_ms": state.get("fit_ms", key), **extra})

    for seed in args.seeds:
        done = searches[(frac, seed)]
        add("searched", f"searched s{seed}", Genotype(space.name, tuple(done["genotype"])),
            search_measured_ms=done["summary"]["measured_ms"])
    for i, genotype in enumerate(random_under_budget(state, args, space, frac, budget_ms)):
        add("random", f"random {i}", genotype)
    add("mbv3", "mbv3 w1", mbv3(space, 1.0), width=1.0)
    fitting = [w for w, ms in width_ms.items() if ms <= budget_ms]
    if fitting:
        add("mbv3_scaled", f"mbv3 w{max(fitting):g}", mbv3(space, max(fitting)), width=max(fitting))
    for op, ms in uniform_ms.items():
        if op != "mbv3_3x3" and ms <= budget_ms:
            add("uniform", f"all {op}", Genotype.uniform(space, op))
    for name in REFERENCES:
        add("reference", name, name=name)
    return rows


def verdict(rows: list[dict], budget_ms: float) -> dict:
    """Searched (mean of seeds) against the best random subnet, the baselines and the references."""
    def mious(kind: str, fitting_only: bool = False) -> list[float]:
        return [r["miou"] for r in rows if r["kind"] == kind and r["miou"] is not None
                and (r["within_budget"] or not fitting_only)]

    searched = mious("searched")
    mean = statistics.fmean(searched) if searched else None
    best = {kind: max(mious(kind, fitting_only=True), default=None)
            for kind in ("random", "mbv3", "mbv3_scaled", "uniform", "reference")}

    def beats(other: float | None) -> bool | None:
        return None if mean is None or other is None else mean > other

    out = {"budget_ms": budget_ms, "searched_miou": searched, "searched_miou_mean": mean,
           "searched_within_budget": all(r["within_budget"] for r in rows
                                         if r["kind"] == "searched"),
           "random_miou_mean": statistics.fmean(mious("random")) if mious("random") else None,
           **{f"best_{kind}_miou": value for kind, value in best.items()},
           "unscaled_mbv3_miou": max(mious("mbv3"), default=None),
           **{f"beats_{kind}": beats(value) for kind, value in best.items()},
           "beats_unscaled_mbv3": beats(max(mious("mbv3"), default=None))}
    out["scaled_fits"] = any(r["kind"] == "mbv3_scaled" for r in rows)  # else nothing to beat
    needed = (out["searched_within_budget"], out["beats_random"],
              out["beats_mbv3_scaled"] if out["scaled_fits"] else True)
    out["answer"] = ("no" if any(x is False for x in needed) else
                     "undecided" if any(x is None for x in needed) else "yes")
    out["answer_rule"] = ("yes: every searched net measured within the budget, and their mean "
                          "mIoU beats the best random subnet and the width-scaled baseline (when "
                          "some width of it fits the budget)")
    return out


def fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wall = time.perf_counter()
    people = Path(args.people)
    if not people.is_dir():
        raise SystemExit(f"the people set is not at {people}: put it there (see its README) or "
                         "pass --people DIR / set SEGNAS_PEOPLE_DIR")
    results = Path(args.results_dir)
    if args.fresh:  # only what this script made: the state and its search folders
        for folder in results.glob("search_b*_s*"):
            shutil.rmtree(folder)
    state = ResumableState(results / "state.json", fresh=args.fresh,
                           recipe={name: getattr(args, name) for name in RECIPE})
    space = get_space(args.space)

    with state.stage("budgets"):
        budget = budgets(state, args, space)
    with state.stage("search"):
        data = train_only_folder(people)
        warnings.filterwarnings("ignore", message=r"\d+ of \d+ masks differ in size")  # said once
        searches = {(frac, seed): search(state, args, space, data, frac,
                                         budget[frac]["budget_ms"], seed)
                    for frac in args.budget_fracs for seed in args.seeds}
    with state.stage("within_budget"):
        uniform_ms, width_ms = baseline_fits(state, args, space)
        derived = [Genotype(space.name, tuple(s["genotype"])) for s in searches.values()]
        within_budget_ms(state, args, [(nas_key(g), g) for g in derived], "searched nets")
        rows = [row for frac in args.budget_fracs
                for row in budget_rows(state, args, space, frac, budget[frac], searches,
                                       uniform_ms, width_ms)]
    models = {row["key"]: row["info"] for row in rows}
    with state.stage("latency"):
        todo = [key for key in models if state.get("latency", key) is None]
        if todo:
            log(f"latency of {len(todo)} networks (OpenVINO f32, {args.latency_size} px)")
            with LoadMonitor(what="row latencies", warn=False,
                             ov_probe=openvino_probe(args.threads)) as monitor:
                for key in todo:
                    row_latency(state, args, key, models[key])
            state.add_load("row latencies", monitor.report.to_dict())
    with state.stage("train"):
        for i, (key, info) in enumerate(models.items(), start=1):
            if state.get("train", key) is None:
                log(f"train {i}/{len(models)}: {key}")
                state.put("train", key, people_training(
                    info, people, size=args.train_size, steps=args.train_steps,
                    seed=args.train_seed, split_seed=SPLIT_SEED, lr=args.lr))

    for row in rows:
        row.update(state.get("latency", row["key"]))
        trained = state.get("train", row["key"])
        row.update(miou=trained["miou"], pixel_accuracy=trained["pixel_accuracy"],
                   train_seconds=trained["seconds"])
        if row["fit_ms"] is None:  # the references: their row latency is the best of its rounds
            row["fit_ms"] = row["latency_ms"]
        # each net is judged by the measurement that selected it: a searched net by the search's
        # closed loop (re-measuring only it would regress it past an edge it was tuned to)
        selected = row.get("search_measured_ms") or row["fit_ms"]
        row["within_budget"] = selected <= row["budget_ms"]
        del row["info"]
    verdicts = {f"{frac:g}": verdict([r for r in rows if r["budget_frac"] == frac],
                                     budget[frac]["budget_ms"]) for frac in args.budget_fracs}
    report(args, state, space, budget, rows, verdicts, uniform_ms, width_ms, wall)


def report(args, state, space, budget, rows, verdicts, uniform_ms, width_ms, wall) -> None:
    print()
    text = print_table(rows, [
        ("budget_frac", "budget", "g"), ("budget_ms", "budget ms", ".2f"), ("kind", "kind", "s"),
        ("label", "net", "s"), ("fit_ms", "fit ms", ".2f"),
        ("latency_ms", f"ms@{args.latency_size}", ".2f"), ("within_budget", "fits", ""),
        ("params", "params", ","), ("gflops", "GFLOPs", ".3f"), ("miou", "mIoU people", ".3f")])
    print()
    for frac, v in verdicts.items():
        log(f"budget {frac} ({v['budget_ms']:.2f} ms): searched {fmt(v['searched_miou_mean'])} "
            f"(seeds {', '.join(fmt(m) for m in v['searched_miou'])}) vs best random "
            f"{fmt(v['best_random_miou'])}, scaled mbv3 {fmt(v['best_mbv3_scaled_miou'])}, "
            f"unscaled mbv3 {fmt(v['unscaled_mbv3_miou'])}; searched within budget: "
            f"{v['searched_within_budget']} -> {v['answer']}")
    loads = state.data["load"]
    busy = any(load.get("busy") for load in loads) or any(
        (b.get("calibration_load") or {}).get("busy") for b in budget.values())
    if busy:
        log("WARNING: the machine was busy while latencies were measured: do not quote them")
    out = Path(args.out)
    figure_rows, seen = [], set()
    for row in rows:  # nets shared by every budget once, in black
        shared = row["kind"] in ("mbv3", "uniform", "reference")
        if not (shared and row["key"] in seen):
            figure_rows.append({**row, "budget": None if shared else f"{row['budget_frac']:g}"})
            seen.add(row["key"])
    figure = budget_pareto(figure_rows, {f"{f:g}": b["budget_ms"] for f, b in budget.items()},
                           title=f"people val mIoU vs OpenVINO f32 latency at "
                                 f"{args.latency_size} px")
    figure.savefig(out.with_name(out.stem + "_pareto.png"), dpi=120)
    write_json(out, {
        "environment": environment(), "settings": vars(args), "space": space.name,
        "budgets": {f"{f:g}": b for f, b in budget.items()}, "rows": rows, "verdict": verdicts,
        "searches": {f"{f:g}_s{s}": state.get("search", f"{f:g}_s{s}")
                     for f in args.budget_fracs for s in args.seeds},
        "uniform_fit_ms": uniform_ms, "width_fit_ms": {f"{w:g}": ms for w, ms in width_ms.items()},
        "stage_seconds": state.data["stages"], "runs": state.data["runs"],
        "wall_seconds_this_run": round(time.perf_counter() - wall, 1),
        "load": loads, "busy": busy, "table": text})


if __name__ == "__main__":
    main()

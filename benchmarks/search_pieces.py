"""The pieces of ``benchmarks/search.py``: what is measured, searched and trained, one record each.

* ``measure_nets``: end-to-end latency of many nets (of one space or several) in interleaved passes,
  by the package timer on the deployment target (``deploy.bench.prepare`` + ``timing.time_runner``,
  the path of the search's closed loop, ``nas.measure``); the best pass per net.
* ``select_widths``, ``select_random``: the width-scaled MobileNetV3 baseline's latency at every
  width of the grid, and the random subnets whose MEASURED latency lies in the budget's window.
* ``Warmup``: one super-net per search seed (the search's warm-up), checkpointed every epoch.
* ``strategy_search``: ``nas.run.run_search`` of one strategy on that super-net under one budget.
* ``measure_rows``: the latency, params and FLOPs of every net, all in one piece (one run).
* ``train_net``: a net retrained alone, ``rank_pieces.train_standalone`` (rank.py's recipe).

A piece that times anything records the load while it did (``timing.LoadMonitor``): ``busy``
means its latencies are not to be quoted; ``search.py`` measures it again on its next run.

``make_pacer``: the study's clock. With ``clock="paced"`` (the default) every timing of the study
is read against the MobileNetV3 baseline called in the same moments (``timing.pace``), so the
drift of a shared VM's speed (tens of percent within a minute) cancels; only another process on
our cores still makes a piece busy.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

from rank_pieces import UNIFORM_WARMUP, train_standalone

from segnas_lite import flags
from segnas_lite.deploy.bench import prepare
from segnas_lite.deploy.openvino import openvino_probe
from segnas_lite.errors import SegnasError
from segnas_lite.nas import checkpoint
from segnas_lite.nas.config import SearchConfig
from segnas_lite.nas.evolution import EvolutionConfig
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.measure import best_of, repeat_noise, timed_child
from segnas_lite.nas.space import Genotype, get_space, scaled_space
from segnas_lite.runio import atomic_torch_save, load_checkpoint, seed_everything, stream_seed
from segnas_lite.timing import LoadMonitor, Pacer, clock_settings, load_average, time_runner

RANDOM_STREAM = 7          # stream_seed stream of the random subnets' draw
PREFILTER = (0.9, 1.05)    # predicted ms, relative to the window's ends, worth measuring
MAX_TRIES = 200_000        # draws looking for candidates predicted near the window


class RandomSubnetsError(SegnasError, RuntimeError):
    """Too few random subnets were measured within a budget's window."""


def net_key(space: str, ops) -> str:
    """The name of a net in the state: its space and ops (the same net in two budgets is one)."""
    return f"{space}:{','.join(ops)}"


def _monitor(settings, what: str) -> LoadMonitor:
    target = settings.target
    return LoadMonitor(warn=False, what=what, ov_probe=openvino_probe(target.threads)
                       if target.backend == "openvino" else None)


def _stamp(state, monitor: LoadMonitor, started: float) -> dict:
    """What every timing piece records about when, where and under what load it ran."""
    load = monitor.report.to_dict()
    return {"load": load, "busy": bool(load.get("busy")), "run": state.data.get("runs"),
            "cpu": flags.cpu_name(), "cpu_id": flags.cpu_id(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "clock": (clock_settings() or {"clock": "wall"})["clock"],
            "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- the clock
REFERENCE = "mbv3_3x3 in every layer, width 1"
"""The pacing reference: the study's own MobileNetV3 baseline at full width, on the target."""


def make_pacer(state, settings) -> Pacer | None:
    """The study's clock: None for wall-clock ms (``settings.clock == "wall"``), else a
    :class:`timing.Pacer` whose reference is ``REFERENCE`` prepared on ``settings.target``. Its
    unit (``reference_ms``) is measured by the first run and recorded in the state
    (``budgets/clock``); later runs reuse it, so the paced ms of every session share one unit."""
    if settings.clock == "wall":
        return None
    space, target = get_space(settings.space), settings.target
    runner = prepare(timed_child(Genotype.uniform(space, "mbv3_3x3"), space), target.input_shape(),
                     backend=target.backend, precision=target.precision, threads=target.threads)
    saved = state.get("budgets", "clock")
    if saved is not None:
        return Pacer(runner, saved["reference_ms"], saved["reference"])
    pacer = Pacer.calibrate(runner, name=REFERENCE)
    state.put("budgets", "clock", {**pacer.describe(), "cpu": flags.cpu_name(),
                                   "cpu_id": flags.cpu_id(),
                                   "date": time.strftime("%Y-%m-%d %H:%M:%S")})
    return pacer


# --------------------------------------------------------------------------- budgets
BUDGET_KEYS = ("space", "target", "budget_fracs", "calibrate", "num_fit", "seed")
"""The settings rank.py's budgets depend on: where they agree, search.py takes rank.py's."""


def rank_budgets(settings, rank_state: Path) -> dict | None:
    """rank.py's budgets, predictor table and CPU, if its state at ``rank_state`` chose its subnets
    with the same settings (``BUDGET_KEYS``) on a quiet machine; else None (always for a paced
    clock: rank.py's milliseconds are wall-clock ones)."""
    if not rank_state.is_file() or settings.clock != "wall":
        return None
    data = json.loads(rank_state.read_text())
    selection = data.get("pieces", {}).get("subnets", {}).get("selection")
    mine = json.loads(json.dumps({k: asdict(settings)[k] for k in BUDGET_KEYS}))
    if selection is None or selection.get("busy") or \
            any(data["recipe"].get(k) != v for k, v in mine.items()):
        return None
    return {"budgets_ms": selection["budgets_ms"], "fastest_ms": selection["fastest_ms"],
            "slowest_ms": selection["slowest_ms"], "table": selection["table"], "busy": False,
            "cpu": selection["cpu"], "date": selection["date"], "source": f"rank.py ({rank_state})"}


def fix_budgets(state, settings, *, refresh: bool = False, rank_state: Path | None = None) -> dict:
    """The budgets in ms, the predictor they came from and the CPU it was measured on, fixed by
    the first run: rank.py's (``rank_budgets``: the two studies share their budgets), else measured
    here. Every piece that times a network (selections, searches, latency rows) runs on that CPU
    only (``on_budget_cpu``), so that milliseconds are compared with milliseconds of one machine."""
    done = state.get("budgets", "budgets")
    if done is not None:
        return done
    shared = None if refresh or rank_state is None else rank_budgets(settings, rank_state)
    if shared is not None:
        print(f"budgets: rank.py's, measured on {shared['cpu']} ({shared['date']})", flush=True)
        return state.put("budgets", "budgets", shared)
    print(f"budgets: latency predictor for {settings.target.describe()} (first run only)",
          flush=True)
    from rank import latency_table  # rank.py's predictor
    table = latency_table(settings, get_space(settings.space), refresh=refresh)
    fastest, slowest = table.fastest()[1], table.slowest()[1]
    loads = {"table": table.meta.get("load"),
             "calibration": table.meta.get("calibration", {}).get("load")}
    for what, load in loads.items():
        if load:
            state.add_load(f"latency {what}", load)
    return state.put("budgets", "budgets", {
        "budgets_ms": {f"{f:g}": fastest + f * (slowest - fastest) for f in settings.budget_fracs},
        "fastest_ms": fastest, "slowest_ms": slowest, "table": json.loads(table.to_json()),
        "busy": any(bool((load or {}).get("busy")) for load in loads.values()),
        "cpu": flags.cpu_name(), "cpu_id": flags.cpu_id(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "clock": clock_settings() or {"clock": "wall"}, "source": "measured by search.py"})


TIMED_SECTIONS = ("select", "search", "latency")
"""The state's sections whose pieces time a network on the budgets' CPU."""


class BudgetMoveError(SegnasError, RuntimeError):
    """The budgets cannot move to this CPU: pieces timed on the old one are recorded."""


def move_budgets_here(state, settings, *, measure=None) -> dict:
    """The budgets measured again on THIS machine's CPU, the same fractions (``--budgets-here``: the
    sessions of a study need not all get the CPU the budgets were first measured on). Allowed only
    while no timed piece is recorded: milliseconds of two CPUs are never mixed. The warm-ups and
    trainings stay (they do not depend on the CPU). The new budgets replace the old only when their
    predictor was measured on a quiet machine; else the old stay and ``BudgetMoveError`` says so.
    ``measure(state, settings)``: ``fix_budgets`` with a fresh predictor unless given (tests)."""
    timed = {section: sorted(state.data["pieces"].get(section, {}))
             for section in TIMED_SECTIONS if state.data["pieces"].get(section)}
    old = state.get("budgets", "budgets")
    if timed:
        listed = "; ".join(f"{section}: {', '.join(keys)}" for section, keys in timed.items())
        raise BudgetMoveError(f"the budgets stay on {(old or {}).get('cpu')}: pieces timed there "
                              f"are recorded ({listed}). Finish the study on that CPU, or start "
                              "over with --fresh")
    measure = measure or (lambda st, se: fix_budgets(st, se, refresh=True))
    state.data["pieces"].setdefault("budgets", {}).pop("budgets", None)
    new = measure(state, settings)
    if new.get("busy"):
        state.data["pieces"]["budgets"].pop("budgets", None)
        if old is not None:
            state.put("budgets", "budgets", old)
        state.save()
        raise BudgetMoveError(f"the latency predictor measured on {flags.cpu_name()} was disturbed "
                              "(the state's load list says how): the budgets stay on "
                              f"{(old or {}).get('cpu')}; run --budgets-here again when nothing "
                              "else runs")
    return new


def on_budget_cpu(budgets: dict) -> bool:
    """Whether this machine's CPU is the one the budgets were measured on: the same model and
    instruction-set flags (``flags.cpu_id``; a budget recorded before ids were: the same model
    name; without a recorded CPU: yes)."""
    if "cpu_id" in budgets:
        return budgets["cpu_id"] == flags.cpu_id()
    return budgets.get("cpu") in (None, flags.cpu_name())


# --------------------------------------------------------------------------- latency
def measure_nets(settings, nets: list[tuple[str, tuple]], *, runs: int, repeats: int
                 ) -> tuple[list[float], list[list[float]]]:
    """End-to-end ms of ``nets`` ((space name, ops) each) on ``settings.target``: every net built
    and compiled once, then ``repeats`` interleaved passes of ``runs`` runs (a burst of load slows
    one pass, not one net). Returns (best pass per net, the passes)."""
    target = settings.target
    runners = [prepare(timed_child(Genotype(space, tuple(ops)), get_space(space)),
                       target.input_shape(), backend=target.backend, precision=target.precision,
                       threads=target.threads) for space, ops in nets]
    passes = [[time_runner(runner, warmup=3, runs=runs).median_ms for runner in runners]
              for _ in range(repeats)]
    return best_of(passes), passes


def width_grid(settings) -> list[float]:
    """The widths of the scaled baseline, widest first: 1, 1 - step, ... down to ``width_min``."""
    count = int(round((1.0 - settings.width_min) / settings.width_step))
    return sorted({round(settings.width_min + i * settings.width_step, 4) for i in range(count)}
                  | {1.0}, reverse=True)


def select_widths(state, settings) -> dict:
    """The MobileNetV3 baseline of the same macro (``mbv3_3x3`` in every layer) with every channel
    width times w (``nas.space.scaled_space``, the MobileNet width multiplier), measured at every w
    of the grid; each budget takes the widest that fits (``search_report.nets_of``)."""
    base, started = get_space(settings.space), time.perf_counter()
    nets = []
    for width in width_grid(settings):
        space = base if width == 1.0 else scaled_space(base, width)
        nets.append((width, Genotype.uniform(space, "mbv3_3x3")))
    with _monitor(settings, "mbv3 widths") as monitor:
        ms, _ = measure_nets(settings, [(g.space, g.ops) for _, g in nets],
                             runs=settings.fit_runs, repeats=settings.fit_repeats)
    return {"widths": [{"width": w, "space": g.space, "ops": list(g.ops), "fit_ms": m}
                       for (w, g), m in zip(nets, ms)], **_stamp(state, monitor, started)}


def select_random(state, settings, frac: float, budget_ms: float, table: LatencyTable) -> dict:
    """``random_subnets`` distinct uniform draws whose measured latency lies in ``window`` x budget.

    The draw is fixed by (``seed``, budget): a repeated selection (after a busy one) meets the
    same candidates in the same order. Only candidates the predictor puts near the window are
    measured (``PREFILTER``), in batches; at most ``max_draws`` are measured."""
    space, started = get_space(settings.space), time.perf_counter()
    low, high = (f * budget_ms for f in settings.window)
    rng = random.Random(stream_seed(settings.seed, round(frac * 1000), RANDOM_STREAM))
    seen: set = set()
    draws, kept, tries = [], [], 0
    with _monitor(settings, f"random subnets, budget {frac:g}") as monitor:
        while len(kept) < settings.random_subnets:
            room = settings.max_draws - len(draws)
            if room <= 0:
                raise RandomSubnetsError(
                    f"only {len(kept)} of {len(draws)} random subnets measured within "
                    f"{low:.2f}-{high:.2f} ms (budget {frac:g}); raise max_draws or widen the "
                    "window, or lower random_subnets")
            batch = []
            while len(batch) < min(room, max(4, 2 * (settings.random_subnets - len(kept)))):
                genotype, tries = space.random_genotype(rng), tries + 1
                if tries > MAX_TRIES:
                    raise RandomSubnetsError(f"no new subnet predicted near {low:.2f}-{high:.2f} "
                                             f"ms in {MAX_TRIES} draws (budget {frac:g})")
                predicted = table.predict(genotype)
                if genotype.ops not in seen and (PREFILTER[0] * low <= predicted
                                                 <= PREFILTER[1] * high):
                    seen.add(genotype.ops)
                    batch.append((genotype, predicted))
            ms, _ = measure_nets(settings, [(g.space, g.ops) for g, _ in batch],
                                 runs=settings.fit_runs, repeats=settings.fit_repeats)
            for (genotype, predicted), measured in zip(batch, ms):
                draws.append({"ops": list(genotype.ops), "predicted_ms": predicted,
                              "fit_ms": measured})
                if low <= measured <= high and len(kept) < settings.random_subnets:
                    kept.append(draws[-1])
    return {"random": kept, "draws": draws, "window_ms": [low, high],
            **_stamp(state, monitor, started)}


def measure_rows(state, settings, nets: dict[str, dict]) -> dict:
    """Latency, params and FLOPs of every net (``key -> {"space", "ops"}``), in one piece: every
    quoted latency comes from the same run, on the same machine, under one load record."""
    from segnas_lite.models.summary import summarize
    from segnas_lite.nas.supernet import build_child
    keys, started = sorted(nets), time.perf_counter()
    with _monitor(settings, "latency rows") as monitor:
        ms, passes = measure_nets(settings, [(nets[k]["space"], nets[k]["ops"]) for k in keys],
                                  runs=settings.runs, repeats=settings.repeats)
    rows = {}
    for key, value in zip(keys, ms):
        genotype = Genotype(nets[key]["space"], tuple(nets[key]["ops"]))
        size = summarize(build_child(genotype, num_classes=2), input_size=settings.target.shape)
        rows[key] = {"latency_ms": value, "params": size.total_params, "gflops": size.gflops}
    noise = repeat_noise(passes)  # NaN with one pass
    return {"keys": keys, "nets": rows, "noise_pct": noise if math.isfinite(noise) else None,
            **_stamp(state, monitor, started)}


# --------------------------------------------------------------------------- the searches
def search_config(settings, *, seed: int, strategy: str, budget_ms: float) -> SearchConfig:
    """One strategy's ``SearchConfig``: the same warm-up for all three (``settings.warmup``, one of
    rank.py's super-net variants), then alpha epochs, evolution or random search."""
    base = dict(image_size=settings.image_size, target=settings.target,
                warmup_epochs=settings.warmup_epochs, search_epochs=settings.alpha_epochs,
                steps_per_epoch=settings.search_steps, train_length=settings.train_length,
                arch_lr=settings.arch_lr, budget_ms=budget_ms, calibrate=settings.calibrate,
                num_fit=settings.num_fit, bn_recalibration=settings.bn_images,
                strategy=strategy, evolution=EvolutionConfig(
                    population=settings.population, generations=settings.generations),
                measure_child=True, seed=seed, quiet=True)
    return SearchConfig(**{**base, **UNIFORM_WARMUP, **settings.warmup_changes()})


class Warmup:
    """The super-net of one search seed: the search's warm-up (never sees val), checkpointed every
    epoch into ``warmup_s<seed>/``; the last checkpoint is where every strategy starts."""

    def __init__(self, settings, seed: int, budgets: dict, out: Path) -> None:
        self.settings, self.seed, self.budgets = settings, seed, budgets
        self.folder = out / f"warmup_s{seed}"
        self.checkpoint = self.folder / checkpoint.CHECKPOINT

    def train(self) -> dict:
        from segnas_lite.data.concat import open_datasets
        from segnas_lite.nas.search import ProxylessSearch
        from segnas_lite.nas.supernet import SegSuperNet
        s = self.settings
        config = search_config(s, seed=self.seed, strategy="gradient",
                               budget_ms=max(self.budgets["budgets_ms"].values()))
        train_set = open_datasets(list(s.data), image_size=s.image_size, split="train",  # as
                                  seed=self.seed, split_seed=s.split_seed,  # run_search opens it
                                  length=s.train_length)
        seed_everything(config.seed)
        net = SegSuperNet(get_space(s.space), num_classes=2, estimator=config.estimator)
        table = LatencyTable.from_json(json.dumps(self.budgets["table"]))
        search = ProxylessSearch(net, table, train_set, config=config, num_classes=2,
                                 out_dir=self.folder)
        resume = self.checkpoint.exists()
        checkpoint.prepare_out_dir(self.folder, table, resume=resume, overwrite=True)
        start = checkpoint.load(search) if resume else 0
        if not resume:
            seed_everything(config.seed)  # as ProxylessSearch.run does
        started, load = time.perf_counter(), load_average()
        for epoch in range(start, config.warmup_epochs):
            search.run_epoch(epoch)
            checkpoint.save(search, epoch)
        history = search.history
        return {"checkpoint": str(self.checkpoint.relative_to(self.folder.parent)),
                "epochs": config.warmup_epochs, "steps": len(history.weight_steps),
                "last_epoch_loss": history.epochs[-1].mean_weight_loss if history.epochs else None,
                "resumed_at_epoch": start, "seconds": round(time.perf_counter() - started, 1),
                "load_average": [load, load_average()]}


def _start_from_warmup(warmup: Warmup, folder: Path, config: SearchConfig,
                       table: LatencyTable) -> None:
    """Put the warm-up's last checkpoint into ``folder``, relabelled with this search's budget and
    config, so that ``run_search(resume=True)`` continues it with this strategy (the warm-up does
    not depend on the budget: its paths are drawn without the constraint)."""
    saved = load_checkpoint(warmup.checkpoint)
    history = json.loads(saved["history"])
    history["budget_ms"], history["config"] = float(config.budget_ms), config.to_dict()
    saved["history"] = json.dumps(history)
    folder.mkdir(parents=True, exist_ok=True)
    table.save(folder / "latency_table.json")  # run_search's resume reads the table from here
    atomic_torch_save(saved, folder / checkpoint.CHECKPOINT)


def strategy_search(state, settings, *, frac: float, seed: int, strategy: str, budgets: dict,
                    warmup: Warmup, out: Path) -> dict:
    """``run_search`` with ``strategy`` under the budget ``frac`` on the super-net of ``warmup``,
    with the closed loop on measured latency; the search folder keeps its output files
    (genotype, history, summary), not its checkpoint."""
    from segnas_lite.nas.run import run_search
    if not warmup.checkpoint.exists():
        raise RuntimeError(f"the warm-up of seed {seed} is not at {warmup.checkpoint}: run the "
                           "warmup piece first")
    s, started = settings, time.perf_counter()
    budget_ms = budgets["budgets_ms"][f"{frac:g}"]
    config = search_config(s, seed=seed, strategy=strategy, budget_ms=budget_ms)
    folder = out / f"search_b{frac:g}_s{seed}_{strategy}"
    table = LatencyTable.from_json(json.dumps(budgets["table"]))
    if not (folder / checkpoint.CHECKPOINT).exists():  # else: a search stopped mid-way resumes
        _start_from_warmup(warmup, folder, config, table)
    with _monitor(s, f"search {frac:g} s{seed} {strategy}") as monitor:
        result = run_search(s.space, list(s.data), config, out_dir=folder, resume=True,
                            data_options={"split_seed": s.split_seed})
    (folder / checkpoint.CHECKPOINT).unlink()  # the outputs stay; the super-net is the warm-up's
    summary = result.summary()
    return {"genotype": list(result.genotype_budget.ops),
            "argmax": list(result.genotype_argmax.ops),
            "measured_ms": result.measured_budget_ms, "within_budget": result.within_budget,
            "supernet_miou": result.supernet_miou, "evaluations": summary["evaluations"],
            "summary": summary, "folder": folder.name, **_stamp(state, monitor, started)}


# --------------------------------------------------------------------------- retraining
def train_net(settings, net: dict, seed: int, out: Path) -> dict:
    """``net`` (``search_report.nets_of``) retrained alone with rank.py's recipe and ``seed``; the
    record says how many torch threads trained it (``--jobs`` gives each worker cores/jobs)."""
    import torch
    result = train_standalone(replace(settings, space=net["space"]), net["key"],
                              {"ops": net["ops"]}, seed, out)
    return {**result, "threads": torch.get_num_threads()}

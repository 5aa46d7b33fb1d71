"""Answer key for lesson 05 · Latency tables and the hard constraint (lessons/05_latency.md).

One function per exercise of the lesson, in its order. Each one computes what the exercise asks
with ``segnas_lite``, returns the numbers in a dict, and its docstring gives the answer in words.

Run from the repository root:

    python lessons/solutions/05_latency.py           # quick: 64 px, few runs (about half a minute)
    python lessons/solutions/05_latency.py --full    # the notebook's workshop-sized settings

Quick mode is forced on when ``CI`` or ``SEGNAS_QUICK=1`` is set (``notebook_utils.setup``). Tables
and predictors are cached in ``$SEGNAS_CACHE`` (the notebook's own tables are reused when the
settings match). In quick mode exercise 5 calibrates the PyTorch table instead of the OpenVINO one
(converting and compiling 20 networks for OpenVINO takes about a minute); ``--full`` uses OpenVINO
as the notebook does. Latencies depend on the machine and on what else runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
import functools
import itertools
import math
import random
from fractions import Fraction

import numpy as np

from segnas_lite import timing
from segnas_lite.deploy.bench import prepare
from segnas_lite.nas import Genotype, InfeasibleBudgetError, get_space
from segnas_lite.nas.calibrate import LAMBDAS, calibrate, mape
from segnas_lite.deploy.target import Target
from segnas_lite.nas.constraint import default_budget, rejection_bias, sample_under_budget
from segnas_lite.nas.latency import LatencyTable, build_table, table_blocks
from segnas_lite.nas.latency_report import in_place_prediction
from segnas_lite.nas.predictor import (FIT_STREAM, build_predictor, random_genotypes, spearman,
                                       validate)
from segnas_lite.teaching.notebook_utils import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
THREADS = 2
MACRO = {"aspp_channels": 64, "decoder_channels": 48}  # the search's widths, as in the notebook


def _settings(quick: bool) -> dict:
    """The notebook's parameters: workshop values, or its quick (CI-sized) values."""
    if quick:
        return {"image_size": 64, "runs": 5, "rounds": 1, "num_genotypes": 8, "num_fit": 20,
                "num_samples": 4000, "backend": "torch"}
    return {"image_size": 128, "runs": 10, "rounds": 2, "num_genotypes": 30, "num_fit": 60,
            "num_samples": 20000, "backend": "openvino"}


@functools.lru_cache(maxsize=None)
def _table(space_name: str, threads: int, quick: bool, size: int | None = None) -> LatencyTable:
    """The in-place table as the notebook builds it (so its cached table is reused), at the
    notebook's image size or at ``size``."""
    s = _settings(quick)
    size = size or s["image_size"]
    return build_table(get_space(space_name),
                       target=Target(backend="torch", threads=threads, image_size=size),
                       runs=s["runs"], rounds=s["rounds"], num_classes=2, macro_config=MACRO,
                       quiet=True)


def _by_op(ratio: np.ndarray, ops: list[list[str]]) -> dict[str, float]:
    """Mean of a (layer, op) matrix per op name, over the layers that offer the op."""
    names = sorted({name for row in ops for name in row})
    return {name: float(np.mean([ratio[l][row.index(name)] for l, row in enumerate(ops)
                                 if name in row])) for name in names}


# --------------------------------------------------------------------------- exercise 1
def exercise_1(*, quick: bool = True) -> dict:
    """THREADS = 1: which ops slow down the most?

    Answer: far fewer than one would guess. PyTorch runs an op on two threads only where it has
    enough work to split, and at these sizes most ops have very little: a 40-channel depthwise
    convolution on a 16x16 map is over in microseconds, and waking and synchronising the second
    thread costs about as much as it saves. So most entries barely change (ratio one thread / two
    threads near 1, some even below 1: faster on one thread), and so does the fixed part. The ops
    that slow down clearly are those with large 1x1 convolutions on large maps: the ``mbv3`` ops
    (expansion x4) in the first layers at S4, up to about twice as long on one thread; depthwise
    ops (``dil``, ``sep``) and ``shuffle`` hardly at all, and nothing at S16/S32. Quick mode builds
    the two tables at 128 px (at the notebook's quick 64 px the maps are so small that no op gains
    anything from the second thread). The point for the search: the *relative* costs change with
    the thread count (here the ``mbv3`` ops at high resolution get dearer on one thread), so a
    table is only valid for the thread count it was built with, as it is only valid for its image
    size.
    """
    settings = setup(quick=quick, seed=SEED)
    size = 128  # the notebook's workshop size; see the answer for why not quick mode's 64 px
    one = _table("seed", 1, settings.quick, size)
    two = _table("seed", THREADS, settings.quick, size)
    ratio = np.asarray(one.ms) / np.asarray(two.ms)  # > 1: slower with one thread
    per_op = _by_op(ratio, one.ops)
    per_layer = ratio.mean(axis=1)
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    return {"threads": (one.meta["threads"], two.meta["threads"]), "image_size": size,
            "fixed_ms": (one.fixed_ms, two.fixed_ms), "fixed_ratio": one.fixed_ms / two.fixed_ms,
            "mean_ratio_per_op": per_op,
            "op_that_slows_down_most": max(per_op, key=per_op.get),
            "op_that_slows_down_least": min(per_op, key=per_op.get),
            "mean_ratio_per_layer": per_layer.tolist(),
            "largest_single_ratio": {"layer": int(worst[0]), "op": one.ops[worst[0]][worst[1]],
                                     "ratio": float(ratio[worst])},
            "fastest_ms": (one.fastest()[1], two.fastest()[1])}


# --------------------------------------------------------------------------- exercise 2
def exercise_2(*, quick: bool = True) -> dict:
    """SPACE = "proxyless": what does ``zero`` cost, and what does it do to the fastest network?

    Answer: almost nothing: the chain layer returns its input without running anything
    (``x + 0 = x``), so its table entry is only the cost of one Python call, a few microseconds,
    far below any real op of the layer. The fastest architecture therefore takes ``zero`` in all six
    layers that allow it (the layers with a shortcut) and keeps a real op only in the four stride-2
    layers that open a stage: a network 4 layers deep, cheaper than anything the seed's space can
    build. That is the reason ProxylessNAS adds ``zero`` (the search can make the network
    shallower), and also the danger: a latency term that keeps pulling (``mul_log``) can empty the
    network of its stride-1 layers. (Beware that the in-place table also charges the per-call
    overhead of each skipped layer; a real network pays nothing for it.)
    """
    settings = setup(quick=quick, seed=SEED)
    table = _table("proxyless", THREADS, settings.quick)
    space = get_space("proxyless")
    zero = [row[ops.index("zero")] for row, ops in zip(table.ms, table.ops) if "zero" in ops]
    real_min = [min(v for v, name in zip(row, ops) if name != "zero")
                for row, ops in zip(table.ms, table.ops) if "zero" in ops]
    fastest, fastest_ms = table.fastest()
    seed_fastest = _table("seed", THREADS, settings.quick).fastest()[1]
    return {"zero_layers": [l for l, spec in enumerate(space.layers) if "zero" in spec.ops],
            "residual_layers": [l for l, spec in enumerate(space.layers) if spec.residual],
            "zero_ms": zero, "cheapest_real_op_ms_in_those_layers": real_min,
            "zero_share_of_cheapest_real_op": [z / r for z, r in zip(zero, real_min)],
            "fastest_genotype": list(fastest.ops), "fastest_ms": fastest_ms,
            "zeros_in_fastest": fastest.ops.count("zero"),
            "layers_that_run_in_fastest": len(space) - fastest.ops.count("zero"),
            "seed_space_fastest_ms": seed_fastest, "fixed_ms": table.fixed_ms}


# --------------------------------------------------------------------------- exercise 3
def count_fitting(table: LatencyTable, budget_ms: float) -> int:
    """The exact number of architectures whose predicted latency fits ``budget_ms``.

    7 ** 10 sums are too many to list, so meet in the middle: list the 7 ** 5 sums of the first
    half of the layers and of the second half, sort one list, and for each sum of the first half
    count (binary search) the sums of the second half that still fit.
    """
    half = len(table.ms) // 2
    first = np.array([sum(combo) for combo in itertools.product(*table.ms[:half])])
    second = np.sort([sum(combo) for combo in itertools.product(*table.ms[half:])])
    room = budget_ms - table.fixed_ms - first  # what the second half may still spend
    return int(np.searchsorted(second, room, side="right").sum())


def exercise_3(*, quick: bool = True) -> dict:
    """BUDGET_MS just above the fastest latency: rejection rate with uniform p, draws per subnet?

    Answer: with the budget 1% above the fastest architecture's latency, only architectures within
    1% of the fastest fit: a tiny share of the 7 ** 10 = 2.8e8 (counted exactly below, not
    estimated), because nearly every layer must take its fastest op or one within a few
    microseconds of it. The rejection rate under uniform p is then close to 100%, and one accepted
    subnet needs 1 / acceptance draws on average, typically far more than ``max_resample`` = 100:
    the chance that 100 draws in a row fail is (1 - a) ** 100, close to 1, so the search raises
    ``InfeasibleBudgetError`` at its first constrained step although the budget *is* feasible (the
    fastest architecture fits). Rejection sampling works only when the budget leaves a real share
    of p's mass; near the fastest architecture either p must already concentrate on fast ops, or
    derivation (lesson 07) must do the work. The library agrees: ``sample_under_budget`` gives up
    after 100 tries (when the exact count says it should), and ``rejection_bias`` finds (almost) no
    accepted sample. At a looser budget (the notebook's default, the median of random
    architectures) the exact count and the library's Monte-Carlo acceptance rate agree within
    sampling noise.
    """
    settings = setup(quick=quick, seed=SEED)
    s = _settings(settings.quick)
    table = _table("seed", THREADS, settings.quick)
    space = get_space("seed")
    fastest_ms, slowest_ms = table.fastest()[1], table.slowest()[1]
    budget = 1.01 * fastest_ms  # just above the fastest latency
    uniform = [[1 / len(row)] * len(row) for row in table.ms]

    fitting = count_fitting(table, budget)
    acceptance = fitting / space.size()  # by hand: exact
    give_up = (1 - acceptance) ** 100
    rng = random.Random(SEED)
    try:
        tries = sample_under_budget(lambda: space.random_genotype(rng), table.predict, budget,
                                    max_resample=100, fastest_ms=fastest_ms)
        sampler = {"raised": False, "tries": len(tries)}
    except InfeasibleBudgetError as error:
        sampler = {"raised": True, "message": str(error).split(";")[0]}
    try:
        observed = rejection_bias(uniform, table, budget, num_samples=s["num_samples"],
                                  seed=SEED).acceptance_rate
    except InfeasibleBudgetError:
        observed = 0.0  # not one of the samples fitted

    loose = default_budget(table, seed=SEED)  # the notebook's budget: the median of random nets
    loose_exact = count_fitting(table, loose) / space.size()
    loose_observed = rejection_bias(uniform, table, loose, num_samples=s["num_samples"],
                                    seed=SEED).acceptance_rate
    return {"fastest_ms": fastest_ms, "slowest_ms": slowest_ms, "budget_ms": budget,
            "architectures": space.size(), "fitting_architectures": fitting,
            "acceptance_rate_exact": acceptance, "rejection_rate_exact": 1 - acceptance,
            "mean_draws_per_accepted_subnet": 1 / acceptance,
            "max_resample": 100, "chance_100_draws_all_rejected": give_up,
            "sample_under_budget": sampler, "acceptance_rate_monte_carlo": observed,
            "num_samples": s["num_samples"],
            "loose_budget_ms": loose, "loose_acceptance_exact": loose_exact,
            "loose_acceptance_monte_carlo": loose_observed,
            "loose_standard_error": math.sqrt(loose_exact * (1 - loose_exact) / s["num_samples"])}


# --------------------------------------------------------------------------- exercise 4
def exercise_4(*, quick: bool = True) -> dict:
    """PRECISION = "bf16": does the compiled model run bf16 here, and which ops gain most?

    Answer: read ``ran_precision``, never assume it. OpenVINO runs bf16 only on CPUs with AVX-512
    BF16 or AMX (recent Xeons); elsewhere asking for bf16 quietly compiles an f32 model, and the
    package records the precision that really ran (``deploy.openvino.compiled_precision``). On such a CPU
    the two tables differ only by timing noise (ratios near 1) and there is nothing to gain. Where
    bf16 does run, the ops whose time is arithmetic gain most, i.e. the large dense 1x1
    convolutions of the ``mbv3`` ops (expand x4) at high resolution (S4, S8); depthwise convolutions
    and small maps are bound by memory and per-call overhead and gain little. Quick mode times the
    seven ops of layer 0 (S4, the largest maps) in f32 and bf16; ``--full`` also compares the two
    calibrated predictors of the notebook (only where bf16 really runs).
    """
    settings = setup(quick=quick, seed=SEED)
    s = _settings(settings.quick)
    size, layer = s["image_size"], 0
    space = get_space("seed")
    blocks = table_blocks(space, (size, size), num_classes=2, macro_config=MACRO)
    shape = (1, *space.layer_input_shapes(size, size)[layer])
    rows, ran = [], {}
    for name in space.layers[layer].ops:
        row = {"op": name}
        for precision in ("f32", "bf16"):
            runner = prepare(blocks[(layer, name)], shape, backend="openvino",
                             precision=precision, threads=THREADS)
            ran[precision] = runner.precision
            row[f"{precision}_ms"] = timing.time_runner(runner, warmup=3, runs=s["runs"]).median_ms
        row["speedup"] = row["f32_ms"] / row["bf16_ms"]
        rows.append(row)
    result = {"layer": layer, "ran_precision": ran, "bf16_runs": ran["bf16"] == "bf16",
              "rows": rows, "gains_most": max(rows, key=lambda r: r["speedup"])["op"]}
    if not settings.quick and result["bf16_runs"]:
        tables = {precision: build_predictor(space, target=Target("openvino", precision, THREADS,
                                                                  size),
                                             num_fit=s["num_fit"], seed=SEED, macro_config=MACRO,
                                             quiet=True) for precision in ("f32", "bf16")}
        ratio = np.asarray(tables["f32"].ms) / np.asarray(tables["bf16"].ms)
        result["calibrated_speedup_per_op"] = _by_op(ratio, tables["f32"].ops)
        result["predictor_ran_precision"] = tables["bf16"].meta["ran_precision"]
    return result


# --------------------------------------------------------------------------- exercise 5
def exercise_5(*, quick: bool = True) -> dict:
    """NUM_FIT = 12: how do held-out Spearman and MAPE change, and which lambda does CV choose?

    Answer: the fit has 71 per-(layer, op) costs plus the fixed cost, and 12 measurements say
    little about each of them, so the prior (the in-place table scaled by s) has to carry more of
    the fit. It does so even at the same lambda: the objective adds lambda * sum (theta - s t) ** 2
    once, but one squared error per measurement, so with 12 instead of 60 subnets the prior weighs
    five times more relative to the data (``prior_weight_per_measurement`` below: lambda / n), and
    the cross-validation usually picks a larger lambda on top (the strongest value tried with 12
    subnets, weaker ones as the subnets grow; with 2-3 held-out subnets per fold the choice is
    noisy). How much is lost depends on how good the prior is. Where the in-place sum is already
    close (PyTorch, the quick run: a few percent MAPE), 12 subnets do as well as 20: the scale s
    and the fixed cost c, two numbers, are all the fit needs. On OpenVINO (``--full``, the
    notebook's case) the in-place sum overestimates every network by tens of percent; the two
    numbers still fix most of the MAPE (the per-call overhead that the in-place sum counts eleven
    times is mostly a global offset), but the per-op corrections that improve the ranking need
    many measurements: with 12, held-out Spearman gains less over the in-place sum and MAPE ends
    higher than with 60 (at 64 px OpenVINO's sub-millisecond timings are also noisier). With 8
    held-out subnets Spearman itself is uncertain by about +-0.3: compare directions over several
    seeds, not one digit. The 12 subnets are exactly the first 12 of the NUM_FIT fit (the same
    seeded generator), so here they are re-fitted from the same measurements with the library's
    ``calibrate``; ``build_predictor(num_fit=12)`` would measure them again.
    """
    settings = setup(quick=quick, seed=SEED)
    s = _settings(settings.quick)
    space = get_space("seed")
    target = Target(s["backend"], "f32", THREADS, s["image_size"])
    timing_runs = 3 if settings.quick else 10
    predictor = build_predictor(space, target=target, num_fit=s["num_fit"], seed=SEED,
                                runs=timing_runs, macro_config=MACRO, quiet=True)
    fit = predictor.meta["calibration"]
    fitted = [Genotype(space.name, tuple(ops)) for ops in fit["genotypes"]]
    small = 12
    same_prefix = random_genotypes(space, small, seed=SEED, stream=FIT_STREAM) == fitted[:small]
    in_place = predictor.meta["in_place"]
    refit = calibrate(predictor.ops, in_place["ms"], in_place["fixed_ms"], fitted[:small],
                      fit["measured_ms"][:small], seed=SEED)
    small_table = LatencyTable(space.name, predictor.ops, refit.ms, refit.fixed_ms)

    check = validate(predictor, space, num_genotypes=s["num_genotypes"], seed=SEED,
                     runs=timing_runs, repeats=3 if settings.quick else 5, macro_config=MACRO,
                     quiet=True)
    held_out = [Genotype(space.name, tuple(ops)) for ops in check.genotypes]
    measured = check.measured_ms

    def scores(predicted: list[float]) -> dict:
        return {"spearman": spearman(predicted, measured), "mape": mape(predicted, measured)}

    return {"backend": s["backend"], "image_size": s["image_size"],
            "num_held_out": len(held_out), "noise_pct": check.noise_pct,
            "first_12_are_the_fit_prefix": same_prefix,
            "in_place": scores([in_place_prediction(predictor, g) for g in held_out]),
            f"calibrated_{s['num_fit']}": {**scores(check.predicted_ms), "lam": fit["lam"],
                                           "prior_weight_per_measurement": fit["lam"] / len(fitted),
                                           "scale": fit["scale"], "cv_mape": fit["cv_mape"]},
            "calibrated_12": {**scores([small_table.predict(g) for g in held_out]),
                              "lam": refit.lam, "prior_weight_per_measurement": refit.lam / small,
                              "scale": refit.scale, "cv_mape": refit.cv_mape},
            "lambdas_tried": list(LAMBDAS)}


# --------------------------------------------------------------------------- exercise 6
def exercise_6(*, quick: bool = True) -> dict:
    """Toy example at a 9 ms budget: acceptance rate and accepted frequency of the slow op.

    Answer (by hand): fixed 2 ms + three layers of 1 ms (fast) or 3 ms (slow). An architecture with
    k slow layers takes 5 + 2k ms, so 9 ms allows k <= 2: every architecture except slow-slow-slow,
    7 of the 8, all equally likely under p = (1/2, 1/2): acceptance 7/8 = 0.875. Among the 7
    accepted ones a given layer is slow in 3 (itself slow and at most one of the other two:
    1 + 2 = 3): frequency 3/7 = 0.429 instead of p = 1/2, a total-variation distance of
    |3/7 - 1/2| = 1/14 = 0.071 per layer. At 7 ms (the notebook) it was 1/2, 1/4 and 1/4: the looser
    budget biases much less, but the bias is never zero while anything is rejected. The library's
    ``rejection_bias`` samples and agrees within its Monte-Carlo error.
    """
    settings = setup(quick=quick, seed=SEED)
    s = _settings(settings.quick)
    toy = LatencyTable("toy", [["fast", "slow"]] * 3, [[1.0, 3.0]] * 3, fixed_ms=2.0)
    result = {}
    for budget in (7.0, 9.0):
        # by hand: list the 8 architectures (1 = slow) and count
        architectures = list(itertools.product((0, 1), repeat=3))
        accepted = [a for a in architectures
                    if toy.fixed_ms + sum(3.0 if slow else 1.0 for slow in a) <= budget]
        acceptance = Fraction(len(accepted), len(architectures))
        slow_freq = Fraction(sum(a[0] for a in accepted), len(accepted))  # layer 0 (all alike)
        # the same in closed form: k slow layers take 5 + 2k ms; binomial counts
        k_max = math.floor((budget - 5.0) / 2.0)
        closed_acceptance = Fraction(sum(math.comb(3, k) for k in range(k_max + 1)), 8)
        closed_slow = Fraction(sum(math.comb(2, k - 1) for k in range(1, k_max + 1)),
                               sum(math.comb(3, k) for k in range(k_max + 1)))
        library = rejection_bias([[0.5, 0.5]] * 3, toy, budget, num_samples=s["num_samples"],
                                 seed=SEED)
        n_accepted = library.acceptance_rate * s["num_samples"]
        result[f"{budget:g} ms"] = {
            "acceptance_by_hand": acceptance, "acceptance_closed_form": closed_acceptance,
            "slow_frequency_by_hand": slow_freq, "slow_frequency_closed_form": closed_slow,
            "tv_by_hand": abs(slow_freq - Fraction(1, 2)),
            "acceptance_library": library.acceptance_rate,
            "slow_frequency_library": [f[1] for f in library.accepted_freq],
            "tv_library": library.tv_per_layer,
            "standard_error_acceptance": math.sqrt(float(acceptance * (1 - acceptance))
                                                   / s["num_samples"]),
            "standard_error_slow_frequency": math.sqrt(float(slow_freq * (1 - slow_freq))
                                                       / n_accepted)}
    return result


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5, exercise_6)


def main(argv=None) -> None:
    run(EXERCISES, lesson="05", argv=argv)


if __name__ == "__main__":
    main()

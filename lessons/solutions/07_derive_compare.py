"""Answer key for lesson 07 · Derive, retrain, compare (lessons/07_derive_compare.md).

One function per exercise of the lesson, in its order. Each one computes what the exercise asks
with ``segnas_lite``, returns the numbers in a dict, and its docstring gives the answer in words.

Run from the repository root:

    python lessons/solutions/07_derive_compare.py           # quick: tiny search and training
    python lessons/solutions/07_derive_compare.py --full    # the notebook's workshop settings

The search is notebook 06's, through ``notebook_utils.search_result`` (read from ``$SEGNAS_CACHE``
when it ran before); trained models come from ``notebook_utils.trained_model`` (cached by their
settings). Quick mode uses the same quick search as ``06_search.py`` (the notebook's quick
settings, latency predicted with the PyTorch table instead of OpenVINO, the derived child not
measured: exercise 2 then shows the closed loop on a simulated machine) and a smaller training
recipe (96 training images, 1 and 4 epochs); ``--full`` uses the notebook's settings, the
exercise's 12 epochs and OpenVINO. In quick mode the mIoU values mean little (lesson 07's note).
"""
from __future__ import annotations

import sys

import functools
from pathlib import Path

import numpy as np

from segnas_lite.nas import (InfeasibleBudgetError, derive_argmax, derive_under_budget, get_space,
                             genotype_latency)
from segnas_lite.nas.derive import derive_measured
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.measure import measure
from segnas_lite.nas.toy import toy_space
from segnas_lite.teaching.notebook_utils import search_result, setup, trained_model
from segnas_lite.models.summary import summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import NOTEBOOK_SEARCH, QUICK_SEARCH, run  # noqa: E402

SEED = 0
THREADS = 2
# The search of notebooks 06 and 07: NOTEBOOK_SEARCH / QUICK_SEARCH from report.py.
# The training recipe and the latency settings: notebook values, and smaller quick ones.
# ``epochs`` is the notebook's EPOCHS, ``long_epochs`` exercise 3's, ``pareto_epochs`` exercise 4's.
FULL = dict(recipe=dict(image_size=128, train_length=256, val_length=64, seed=SEED),
            epochs=6, long_epochs=12, pareto_epochs=6, latency_size=256, runs=20)
QUICK = dict(recipe=dict(image_size=64, train_length=96, val_length=16, seed=SEED),
             epochs=1, long_epochs=4, pareto_epochs=4, latency_size=128, runs=5)
CONTENDERS = {"searched": "nas_child", "mbv3 baseline": "mbv3_baseline",
              "fast_scnn": "fast_scnn", "lraspp small": "lraspp_mobilenetv3_small"}


def search(quick: bool):
    """Notebook 06's search (from the cache when it ran before)."""
    return search_result(space="seed", image_size=64 if quick else 128, seed=SEED,
                         **(QUICK_SEARCH if quick else NOTEBOOK_SEARCH))


def searched(quick: bool) -> tuple:
    """(search result, its latency table, p after the last alpha step), as in the notebook."""
    result = search(quick)
    table = LatencyTable.load(Path(result.out_dir) / "latency_table.json")
    return result, table, result.history.alpha_steps[-1].probs


def log_p(probs, genotype, space) -> float:
    """sum_l log p_{l, g_l}: the log-probability of a genotype under the search's p."""
    return float(sum(np.log(p[i]) for p, i in zip(probs, space.op_index(genotype))))


# --------------------------------------------------------------------------- exercise 1
def exercise_1(*, quick: bool = True) -> dict:
    """Tight budget just above ``table.fastest()[1]``: how many layers change, how much sum log p?

    Answer: near the fastest architecture the knapsack has almost no choice: the budget leaves only
    a sliver of slack over the fastest latency, so nearly every layer must take its fastest op
    whatever p says. Compared with the argmax genotype it changes every layer whose most probable
    op is not also the fastest one (most layers), and it gives up a large part of sum log p: each
    changed layer costs log p(argmax op) - log p(chosen op), and those add up (several nats, i.e.
    a genotype e ** (give-up) times less probable under p). The notebook's tight budget (halfway
    between the fastest and the argmax latency) keeps more of p's choices. The solution is exact up
    to the discretisation (dynamic programming over latency in steps of the slack / 4096, rounded
    up): the predicted latency never exceeds the budget, and a lower budget never gives a higher sum
    log p. (Even the search's own
    budget can be broken by the argmax: ``argmax_fits_search_budget``, the seed's "Future work".)
    """
    settings = setup(quick=quick, seed=SEED)
    result, table, probs = searched(settings.quick)
    space = get_space(result.history.space)
    fastest, fastest_ms = table.fastest()
    argmax = derive_argmax(probs, space)
    budgets = {"notebook tight": (fastest_ms + result.predicted_argmax_ms) / 2,
               "just above fastest": fastest_ms * 1.01}
    rows = {"argmax": {"budget_ms": None, "genotype": argmax}}
    for label, budget in budgets.items():
        rows[label] = {"budget_ms": budget, "genotype": derive_under_budget(
            probs, table.tensor(), table.fixed_ms, budget, space=space)}
    out = {"fastest_ms": fastest_ms, "fastest_genotype": list(fastest.ops),
           "search_budget_ms": result.budget_ms,
           "argmax_fits_search_budget": result.predicted_argmax_ms <= result.budget_ms}
    for label, row in rows.items():
        genotype = row["genotype"]
        out[label] = {
            "budget_ms": row["budget_ms"],
            "predicted_ms": genotype_latency(genotype, space, table.tensor(), table.fixed_ms),
            "sum_log_p": log_p(probs, genotype, space),
            "layers_changed_vs_argmax": sum(a != b for a, b in zip(genotype.ops, argmax.ops)),
            "layers_equal_to_fastest": sum(a == b for a, b in zip(genotype.ops, fastest.ops)),
            "genotype": list(genotype.ops)}
    for label in budgets:
        out[label]["log_p_given_up"] = out["argmax"]["sum_log_p"] - out[label]["sum_log_p"]
    return out


# --------------------------------------------------------------------------- exercise 2
def _lowered(attempts: list[dict], budget_ms: float, fastest_ms: float) -> list[dict]:
    """For each try after the first: how much lower its target was, and the rule by hand
    (the failed net's prediction scaled by budget / measured, at least 3% below the last target,
    never below the fastest architecture)."""
    steps = []
    for before, after in zip(attempts, attempts[1:]):
        rule = min(before["predicted_ms"] * budget_ms / before["measured_ms"],
                   before["target_ms"] * (1 - 0.03))
        steps.append({"target_ms": after["target_ms"],
                      "lowered_by_ms": before["target_ms"] - after["target_ms"],
                      "lowered_by_pct": 100 * (1 - after["target_ms"] / before["target_ms"]),
                      "by_hand_ms": max(rule, fastest_ms)})
    return steps


def exercise_2(*, quick: bool = True) -> dict:
    """By how much did each try lower its target, and why? A budget below the fastest architecture?

    Answer: ``derive_measured`` derives under a target (first the budget T), measures the derived
    net end to end, and when it is over T derives again under predicted * T / measured: the failed
    net's own prediction scaled down by how much the predictor underestimated it (a net measured
    10% over budget gets a target 10% below its own prediction), or 3% below the last target if
    that is lower, so every retry really changes something. Scaling the prediction and not the
    target matters: a net predicted well under its target would otherwise come back unchanged. A
    search whose derived net fitted at once shows one try (quick mode does not measure the child:
    none); the simulated machine below (20% slower than the table) shows the rule at work, checked
    try by try against the formula.
    Below the fastest architecture no genotype fits: ``derive_under_budget`` raises
    ``InfeasibleBudgetError`` naming the fastest latency, and the search refuses such a budget
    before its first step (``check_feasible``). ``derive_measured`` never targets below the fastest
    architecture: it derives that one, measures it over budget and stops, reporting
    ``within_budget = False`` (the search then writes ``genotype_over_budget.json``, never
    ``genotype.json``).
    """
    settings = setup(quick=quick, seed=SEED)
    result, table, probs = searched(settings.quick)
    space = get_space(result.history.space)
    fastest_ms = table.fastest()[1]
    real = result.latency["derive_attempts"]

    def slower_machine(genotype):  # a CPU 20% slower than the table predicts
        return 1.2 * table.predict(genotype)

    simulated = derive_measured(probs, table.tensor(), table.fixed_ms, result.budget_ms,
                                space=space, measure=slower_machine, max_tries=5)
    below = 0.9 * fastest_ms
    try:
        derive_under_budget(probs, table.tensor(), table.fixed_ms, below, space=space)
        raised = None
    except InfeasibleBudgetError as error:
        raised = str(error)
    loop_below = derive_measured(probs, table.tensor(), table.fixed_ms, below, space=space,
                                 measure=slower_machine, max_tries=5)
    return {"budget_ms": result.budget_ms, "fastest_ms": fastest_ms,
            "search_tries": [{k: a[k] for k in ("target_ms", "predicted_ms", "measured_ms")}
                             for a in real],
            "search_lowered": _lowered(real, result.budget_ms, fastest_ms),
            "simulated_tries": [{k: a[k] for k in ("target_ms", "predicted_ms", "measured_ms")}
                                for a in simulated.attempts],
            "simulated_lowered": _lowered(simulated.attempts, result.budget_ms, fastest_ms),
            "simulated_within_budget": simulated.within_budget,
            "below_fastest_budget_ms": below, "below_fastest_error": raised,
            "below_fastest_loop": {"tries": len(loop_below.attempts),
                                   "target_ms": loop_below.attempts[0]["target_ms"],
                                   "within_budget": loop_below.within_budget}}


# --------------------------------------------------------------------------- exercises 3 and 4
@functools.lru_cache(maxsize=None)
def contender(label: str, name: str, epochs: int, quick: bool) -> dict:
    """Train (or load) one model with the recipe, count it and time it as notebook 07 does."""
    s = QUICK if quick else FULL
    result = search(quick)
    deploy = {"backend": result.latency["backend"], "precision": result.latency["precision"]}
    kwargs = {"genotype": result.genotype_budget.to_json()} if name == "nas_child" else {}
    model, history = trained_model(name, epochs=epochs, **s["recipe"], **kwargs)
    size = s["latency_size"]
    stats = summarize(model, input_size=(size, size))
    return {"name": label, "miou": history[-1]["val_miou"], "params": stats.total_params,
            "gflops": stats.gflops,
            "latency_ms": measure(model, (1, 3, size, size), threads=THREADS, runs=s["runs"],
                                  rounds=3, **deploy)}


def pareto_front(rows: list[dict]) -> list[str]:
    """Names of the models that no other model beats on both axes (at most as slow and at least
    as accurate, better on one of them)."""
    def beats(other: dict, row: dict) -> bool:
        return (other["latency_ms"] <= row["latency_ms"] and other["miou"] >= row["miou"]
                and (other["latency_ms"] < row["latency_ms"] or other["miou"] > row["miou"]))
    return [row["name"] for row in rows if not any(beats(other, row) for other in rows)]


def exercise_3(*, quick: bool = True) -> dict:
    """EPOCHS = 12 for all four models: does the mIoU order change? And the latency order?

    Answer: the mIoU order can change, the latency order cannot (beyond timing noise). After a few
    epochs on a small synthetic set the models are ranked by how fast they learn (small models and
    good initial features first) and by the noise of one seed, gaps of 0.01-0.02 that a second
    seed can reverse; with more epochs the larger models (Fast-SCNN, LR-ASPP, the MobileNetV3
    baseline) catch up, so the order of the searched child against them is not settled by a short
    run. Latency depends on the architecture and the input size, not on the weights: the same
    model has the same operations on the same shapes (identical parameters and FLOPs, checked
    below), so its latency is the same up to measurement noise; only models within a few percent
    of each other can swap places between two measurements. So the latency axis of the Pareto
    figure is meaningful after any training; the accuracy axis needs the full recipe (and several
    seeds) before it means anything. (In quick mode the 1-epoch models still predict background
    everywhere: equal mIoU, an arbitrary order; after 4 epochs they separate.)
    """
    settings = setup(quick=quick, seed=SEED)
    s = QUICK if settings.quick else FULL
    out = {}
    for epochs in (s["epochs"], s["long_epochs"]):
        rows = [contender(label, name, epochs, settings.quick)
                for label, name in CONTENDERS.items()]
        out[f"{epochs} epochs"] = {
            "rows": rows,
            "order_by_miou": [r["name"] for r in sorted(rows, key=lambda r: -r["miou"])],
            "order_by_latency": [r["name"] for r in sorted(rows, key=lambda r: r["latency_ms"])],
            "pareto_front": pareto_front(rows)}
    short, longer = out.values()
    out["miou_order_changed"] = short["order_by_miou"] != longer["order_by_miou"]
    out["latency_order_changed"] = short["order_by_latency"] != longer["order_by_latency"]
    out["same_params_and_flops"] = all(
        (a["params"], a["gflops"]) == (b["params"], b["gflops"])
        for a, b in zip(short["rows"], longer["rows"]))
    return out


def exercise_4(*, quick: bool = True) -> dict:
    """Add "lraspp large": where does it land on the Pareto plot?

    Answer: to the right of LR-ASPP small: the MobileNetV3-Large backbone has about three times its
    parameters and FLOPs, and its latency is the highest or near the highest of the five. A model
    lands on the Pareto front only if no faster model is at least as accurate; for the slowest
    one that means being the most accurate of all five. After a short training that is unlikely
    (more weights to train on little data), so it usually sits below the front: dominated by a
    faster model that is at least as accurate. With the full recipe (and a pretrained backbone,
    which this comparison does not use) it can buy accuracy with latency and extend the front at
    its slow end. Either way it shows that the front, not one number, is the fair comparison.
    """
    settings = setup(quick=quick, seed=SEED)
    s = QUICK if settings.quick else FULL
    contenders = {**CONTENDERS, "lraspp large": "lraspp_mobilenetv3_large"}
    rows = [contender(label, name, s["pareto_epochs"], settings.quick)
            for label, name in contenders.items()]
    by_name = {row["name"]: row for row in rows}
    large, small = by_name["lraspp large"], by_name["lraspp small"]
    front = pareto_front(rows)
    faster = [r["name"] for r in rows if r["latency_ms"] < large["latency_ms"]]
    better = [r["name"] for r in rows if r is not large and r["miou"] >= large["miou"]]
    return {"rows": rows, "pareto_front": front, "lraspp_large_on_front": "lraspp large" in front,
            "models_faster_than_large": faster, "models_at_least_as_accurate": better,
            "large_vs_small_params": large["params"] / small["params"],
            "large_vs_small_latency": large["latency_ms"] / small["latency_ms"]}


# --------------------------------------------------------------------------- exercise 5
# The toy of the notebook's section 2 (its from-scratch cell): p and latency (ms) per layer and op.
TOY_P = [[0.60, 0.40], [0.70, 0.30], [0.52, 0.48]]
TOY_LAT = [[0.30, 0.10], [0.25, 0.15], [0.20, 0.12]]
TOY_FIXED, TOY_BUDGET = 0.10, 0.72


def toy_log_p(path) -> float:
    return float(sum(np.log(TOY_P[layer][i]) for layer, i in enumerate(path)))


def toy_latency(path) -> float:
    return TOY_FIXED + sum(TOY_LAT[layer][i] for layer, i in enumerate(path))


def log_p_lost_per_ms(layer: int) -> float:
    """What swapping ``layer`` from op 0 to op 1 costs in log p, per ms it saves."""
    lost = np.log(TOY_P[layer][0]) - np.log(TOY_P[layer][1])
    return float(lost / (TOY_LAT[layer][0] - TOY_LAT[layer][1]))


def greedy_swaps() -> list[dict]:
    """From the argmax (op 0 everywhere), swap to op 1 the layer that loses the least log p per ms
    saved, until the path fits: every step's path, its latency and sum of log p."""
    path = [0] * len(TOY_P)
    steps = [{"path": tuple(path), "ms": toy_latency(path), "log_p": toy_log_p(path)}]
    while toy_latency(path) > TOY_BUDGET + 1e-12:
        layer = min((l for l in range(len(path)) if path[l] == 0), key=log_p_lost_per_ms)
        path[layer] = 1
        steps.append({"path": tuple(path), "ms": toy_latency(path), "log_p": toy_log_p(path),
                      "swapped_layer": layer, "log_p_lost_per_ms": log_p_lost_per_ms(layer)})
    return steps


def exercise_5(*, quick: bool = True) -> dict:
    """The toy: swap greedily (least log p lost per ms saved) from the argmax until it fits.

    Answer: greedy first swaps layer 2 (counting from 0, as the paths print; it loses only
    log(0.52/0.48) = 0.08 for 0.08 ms, 1.0 per ms), but (0, 0, 1) still takes 0.77 ms > 0.72; it
    then swaps layer 0 (2.0 per ms) and stops at (1, 0, 1), 0.57 ms, sum log p -2.007. The
    knapsack picks (1, 0, 0), 0.65 ms, -1.927: swapping layer 0 alone saves enough, so the first
    greedy swap was wasted (it is never undone). Greedy by ratio is the fractional knapsack's rule;
    with whole items (one op per layer) it can be far from the best, which is why
    ``derive_under_budget`` uses dynamic programming.
    """
    space = toy_space(num_layers=len(TOY_P))
    steps = greedy_swaps()
    knapsack = tuple(space.op_index(derive_under_budget(TOY_P, np.array(TOY_LAT), TOY_FIXED,
                                                        TOY_BUDGET, space=space)))
    greedy = steps[-1]["path"]
    return {"summary": f"greedy {greedy} ({toy_log_p(greedy):.3f}) vs knapsack {knapsack} "
                       f"({toy_log_p(knapsack):.3f})",
            "greedy_steps": steps, "greedy": greedy, "knapsack": knapsack,
            "greedy_log_p": toy_log_p(greedy), "knapsack_log_p": toy_log_p(knapsack),
            "log_p_given_up_by_greedy": toy_log_p(knapsack) - toy_log_p(greedy)}


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5)


def main(argv=None) -> None:
    run(EXERCISES, lesson="07", argv=argv)


if __name__ == "__main__":
    main()

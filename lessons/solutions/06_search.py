"""Answer key for lesson 06 · The ProxylessNAS search (lessons/06_search.md).

One function per exercise of the lesson, in its order. Each one runs the searches the exercise
asks for with ``segnas_lite``, returns the numbers in a dict, and its docstring gives the answer.

Run from the repository root:

    python lessons/solutions/06_search.py           # quick: 64 px, 20 + 20 steps per search
    python lessons/solutions/06_search.py --full    # the notebook's workshop-sized settings:
                                                     # seven searches of a few minutes each

Searches go through ``notebook_utils.search_result``: a search with the same settings is read back
from ``$SEGNAS_CACHE`` instead of running again (``--full`` reuses the notebook's own search).
Quick mode takes the notebook's quick settings with two changes: latency is predicted by the plain
PyTorch table (``target=Target(backend="torch", ...)``, ``calibrate=False``) instead of the calibrated OpenVINO predictor,
whose calibration compiles networks for about a minute, and the derived child is not measured
(``measure_child=False``: no closed loop, which on a busy machine pauses and re-measures). What
these exercises look at (how p moves, the rejection rate, E[LAT]) does not depend on either.
"""
from __future__ import annotations

import sys

import math
from pathlib import Path

import numpy as np
import torch

from segnas_lite.nas import InfeasibleBudgetError, expected_latency, latency_loss
from segnas_lite.nas.gates import LATENCY_FORMS
from segnas_lite.nas.constraint import rejection_bias
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.predictor import spearman
from segnas_lite.nas.toy import toy_problem, toy_search
from segnas_lite.teaching.notebook_utils import search_result, setup

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import NOTEBOOK_SEARCH, QUICK_SEARCH, run  # noqa: E402

SEED = 0
# The search of notebooks 06 and 07: NOTEBOOK_SEARCH / QUICK_SEARCH from report.py.
TOLERANCE = 1e-6  # a probability that moved by less than this did not move (float32 rounding)


def search(quick: bool, **changes):
    """The notebook's search with ``changes`` (e.g. ``schedule="interleaved"``), from the cache
    when it ran before with the same settings."""
    settings = {**(QUICK_SEARCH if quick else NOTEBOOK_SEARCH), **changes}
    return search_result(space="seed", image_size=64 if quick else 128, seed=SEED, **settings)


def table_of(result) -> LatencyTable:
    """The latency table the search used (saved next to its history)."""
    return LatencyTable.load(Path(result.out_dir) / "latency_table.json")


def _alphas(history, step: int | None) -> np.ndarray:
    """(layers, ops) alphas before the first alpha step (``None``) or after step ``step``."""
    return np.array(history.alpha_init if step is None else history.alpha_steps[step].alphas)


def _search_seconds(history) -> float:
    return sum(epoch.seconds for epoch in history.epochs if epoch.phase == "search")


# --------------------------------------------------------------------------- exercise 1
def exercise_1(*, quick: bool = True) -> dict:
    """SCHEDULE = "interleaved": does p move differently in the first alpha steps?

    Answer: hardly in the very first ones, more and more afterwards. Both schedules share the
    warm-up and start from the same (uniform) p, and Adam with beta1 = 0 (the reference setting)
    moves every alpha by lr * g / |g|, i.e. by the learning rate itself, in its first step,
    whatever the size of the gradient (computed below: the first step's |delta alpha| is lr for
    nearly every op in both schedules). Only the direction can differ: in the interleaved schedule
    (ProxylessNAS, Cai et al., ICLR 2019) the first alpha step comes after ``arch_every`` = 5 more
    weight steps on paths drawn from p, so the weights it is judged on already differ a little.
    Later the difference grows: the weights keep training on paths drawn from p, so ops that p
    favours are trained more, look better and gain more p (the rich-get-richer loop the seed
    freezes the weights against), and in the same number of batches the interleaved search makes
    only one alpha step per five batches (4 instead of 20 in quick mode), so p ends less decided.
    """
    settings = setup(quick=quick, seed=SEED)
    result = {}
    for schedule in ("decoupled", "interleaved"):
        history = search(settings.quick, schedule=schedule).history
        lr = history.config["arch_lr"]
        first = np.abs(_alphas(history, 0) - _alphas(history, None))
        k = min(4, len(history.alpha_steps))
        start = history.alpha_matrix(None)
        result[schedule] = {
            "alpha_steps": len(history.alpha_steps),
            "weight_steps_during_search": sum(w.phase == "weights" for w in history.weight_steps),
            "arch_lr": lr,
            "first_step_max_abs_dalpha": float(first.max()),
            "first_step_mean_abs_dalpha": float(first.mean()),
            "largest_p_change_after_steps_1_to_k": [
                float(np.nanmean(np.nanmax(np.abs(history.alpha_matrix(s) - start), axis=1)))
                for s in range(k)],
            "final_entropy": history.entropy_curve()[-1],
            "final_mean_max_p": float(np.mean(np.nanmax(history.alpha_matrix(-1), axis=1))),
            "search_seconds": _search_seconds(history)}
    return result


# --------------------------------------------------------------------------- exercise 2
def exercise_2(*, quick: bool = True) -> dict:
    """ESTIMATOR = "two": only two ops per layer change per step; why is each step cheaper?

    Answer: in every alpha step each layer draws two ops from p (ProxylessNAS's ``two`` mode);
    only their two alphas get a gradient (a 2-way softmax over the pair), and after Adam's step
    both are shifted by the same offset so that the sum of exp(alpha) over the pair, hence the
    softmax denominator, is what it was: the other five probabilities stay exactly where they were
    and the pair's total stays the same (checked below on every step and layer, up to float32
    rounding). It is cheaper because Eq. 4 needs dL/dg_j = <dL/d(out), o_j(x)> only for the two
    ops of the pair, so the backward pass re-runs one other candidate per layer (the partner)
    instead of all six others (``full_v2``): 10 extra op forwards per step instead of 60. The step
    is not six times faster overall: the forward and backward of the sampled path, the data and
    the rejection sampling cost the same. The price is noise: each alpha gets a gradient only in
    the steps where it is drawn.
    """
    settings = setup(quick=quick, seed=SEED)
    two = search(settings.quick, estimator="two").history
    full = search(settings.quick).history
    counts, outside, drift = [], 0, 0.0
    for s, step in enumerate(two.alpha_steps):
        before, after = two.alpha_matrix(s - 1 if s else None), two.alpha_matrix(s)
        for l, (names, pair) in enumerate(zip(two.op_names, step.pairs)):
            moved = np.abs(after[l, :len(names)] - before[l, :len(names)]) > TOLERANCE
            changed = {names[i] for i in np.flatnonzero(moved)}
            counts.append(len(changed))
            outside += len(changed - set(pair))
            index = [names.index(name) for name in pair]
            drift = max(drift, abs(after[l, index].sum() - before[l, index].sum()))
    return {"alpha_steps": len(two.alpha_steps),
            "layer_steps": len(counts), "most_ops_changed_in_a_layer_step": max(counts),
            "layer_steps_with_two_changed": sum(c == 2 for c in counts),
            "changed_ops_outside_the_pair": outside, "largest_change_of_pair_total": drift,
            "reruns_per_step": {"full_v2": sum(len(n) - 1 for n in full.op_names),
                                "two": len(two.op_names)},
            "search_seconds": {"full_v2": _search_seconds(full), "two": _search_seconds(two)}}


# --------------------------------------------------------------------------- exercise 3
def _budget_effects(result) -> dict:
    """Rejection and E[LAT] of one search: at the start (uniform p) and over its alpha steps."""
    history, table = result.history, table_of(result)
    rates = history.rejection_rates()  # per alpha step: rejected tries / tries
    curve = history.expected_latency_curve()
    uniform = [[1 / len(row)] * len(row) for row in table.ms]
    return {"budget_ms": result.budget_ms,
            "acceptance_uniform_p": rejection_bias(uniform, table, result.budget_ms,
                                                   seed=SEED).acceptance_rate,
            "rejection_rate_first_5_last_5_steps": (float(np.mean(rates[:5])),
                                                    float(np.mean(rates[-5:]))),
            "expected_latency_first_last": (curve[0], curve[-1])}


def exercise_3(*, quick: bool = True) -> dict:
    """Halve the budget: rejection rate, E[LAT], and the layers whose TV distance is large?

    Answer: first, halving the budget in milliseconds usually makes it infeasible: the budget is
    the 0.4 quantile of random architectures' latency, and the fastest architecture already needs
    more than half of it (the fixed stem + ASPP + decoder alone take a large share). The search
    refuses it up front with ``InfeasibleBudgetError``, naming the fastest latency (checked below).
    A budget just above the fastest one fails too, later: see lesson 05, exercise 3. The useful
    version halves the share of random architectures that fit (``budget_quantile`` 0.2 instead of
    0.4). Then:
    - rejection: at the start (uniform p) 80% of the draws are rejected instead of 60%, i.e. 5
      draws per accepted subnet instead of 2.5; later it depends on where p goes;
    - E[LAT] starts above the budget, so the hinge term is active and pulls E[LAT] down, step after
      step, until it is inside the budget; there the hinge stops and only the cross-entropy moves
      p (at the looser budget E[LAT] starts near the budget and the hinge barely acts);
    - TV distance: for the same p, the tighter budget truncates more, so the accepted frequencies
      move further from p in every layer that matters (computed below on the looser search's final
      p, under both budgets). The large-TV layers are those where p puts much mass on ops that are
      slow for that layer (a large expected extra latency over the layer's fastest op): the
      constraint removes that mass. A search under the tight budget also moves p itself towards
      fast ops (the hinge), so its own final TV can be small: the latency term did the
      constraint's work.
    """
    settings = setup(quick=quick, seed=SEED)
    base = search(settings.quick)
    table = table_of(base)
    fastest_ms = table.fastest()[1]
    half = base.budget_ms / 2
    try:
        halved = _budget_effects(search(settings.quick, budget_ms=half))
        halved["infeasible"] = False
    except InfeasibleBudgetError as error:
        halved = {"budget_ms": half, "infeasible": True, "message": str(error).split(". ")[0]}
    tighter = search(settings.quick, budget_quantile=0.2)

    probs = base.history.alpha_steps[-1].probs  # one p, two budgets: the constraint's own effect
    extra = [float(np.dot(p, np.asarray(row) - min(row))) for p, row in zip(probs, table.ms)]
    same_p = {}
    for label, budget in (("base", base.budget_ms), ("quantile_0.2", tighter.budget_ms)):
        bias = rejection_bias(probs, table, budget, seed=SEED)
        same_p[label] = {"acceptance": bias.acceptance_rate, "tv_per_layer": bias.tv_per_layer,
                         "mean_tv": float(np.mean(bias.tv_per_layer)),
                         "largest_tv_layers": [int(l) for l in
                                               np.argsort(bias.tv_per_layer)[::-1][:3]],
                         "spearman_tv_vs_extra_latency": spearman(bias.tv_per_layer, extra)}
    return {"fastest_ms": fastest_ms, "half_budget": halved, "base": _budget_effects(base),
            "quantile_0.2": _budget_effects(tighter),
            "expected_extra_latency_per_layer_ms": extra, "same_p_two_budgets": same_p}


# --------------------------------------------------------------------------- exercise 4
def adam_bound(lr: float, steps: int, beta2: float) -> float:
    """The most one parameter can move in ``steps`` Adam steps with beta1 = 0, by hand.

    Step t moves it by lr * |g_t| / sqrt(v_t / (1 - beta2 ** t)) and v_t >= (1 - beta2) g_t ** 2,
    so by at most lr * sqrt((1 - beta2 ** t) / (1 - beta2)) (exactly lr at t = 1)."""
    return lr * sum(math.sqrt((1 - beta2 ** t) / (1 - beta2)) for t in range(1, steps + 1))


def exercise_4(*, quick: bool = True) -> dict:
    """ARCH_LR = 1e-3 (reference) vs 0.3 (quick mode), same number of steps: why, and the risk?

    Answer: Adam with beta1 = 0 moves each alpha by about lr per step, whatever the gradient's
    size (at most lr * sqrt(t) at step t, computed below as a hard bound). With lr = 1e-3 and 20
    alpha steps an alpha moves by a few hundredths at most, so p stays at about 1/7 = 0.14 in every
    layer: nothing is decided, the derived genotype is close to a random pick. The reference
    ImageNet search takes about a hundred thousand alpha steps, where 1e-3 adds up to logit changes
    of several units. A short search needs the large rate to move p at all (0.3: p reaches 0.5 and
    more within 20 steps). The risk: each step follows the Eq. 4 gradient of one batch and one
    sampled path, a noisy and biased estimate (lesson 04), on weights warmed up for a few batches;
    with a large rate a few noisy steps decide a layer, and once p favours an op it is sampled more
    (rejection and, interleaved, training follow p), so an early accident is locked in. Fast
    convergence is then not evidence of a good architecture; compare several seeds.
    """
    settings = setup(quick=quick, seed=SEED)
    result = {}
    for lr in (1e-3, 0.3):
        history = search(settings.quick, arch_lr=lr).history
        steps = len(history.alpha_steps)
        moved = np.abs(_alphas(history, -1) - _alphas(history, None))
        result[f"lr {lr:g}"] = {
            "alpha_steps": steps, "max_abs_dalpha": float(moved.max()),
            "bound_max_abs_dalpha": adam_bound(lr, steps, history.config["arch_betas"][1]),
            "max_p": float(np.nanmax(history.alpha_matrix(-1))),
            "mean_max_p": float(np.mean(np.nanmax(history.alpha_matrix(-1), axis=1))),
            "final_entropy": history.entropy_curve()[-1],
            "argmax_genotype": list(history.derived_genotype().ops)}
    result["uniform_p"] = 1 / 7
    return result


# --------------------------------------------------------------------------- exercise 5
def latency_pull(form: str, table: LatencyTable, budget_ms: float) -> dict:
    """Does the latency term of ``form`` move alpha when E[LAT] is inside the budget?

    Uniform p, a constant stand-in for the cross-entropy, one plain gradient step on alpha: the
    change of E[LAT] says where the term pulls ("down", "up" or nowhere). Latencies below 1 ms are
    taken in microseconds, as the search does, so that ``mul_log`` can take their logarithm."""
    unit = 1.0 if table.fastest()[1] > 1.0 else 1000.0
    lat = table.tensor() * unit
    alpha = torch.zeros(lat.shape, dtype=torch.float64, requires_grad=True)

    def e_lat(a: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(a[l, :len(row)], 0) for l, row in enumerate(table.ms)]
        return expected_latency(probs, lat, table.fixed_ms * unit)

    before = e_lat(alpha)
    loss = latency_loss(torch.tensor(1.0, dtype=torch.float64), before, budget=budget_ms * unit,
                        form=form)
    loss.backward()
    with torch.no_grad():
        change = float(e_lat(alpha - 0.1 * alpha.grad) - before) / unit
    return {"grad_norm": float(alpha.grad.norm()), "e_lat_change_ms": change,
            "pulls": "nowhere" if change == 0 else ("down" if change < 0 else "up")}


def exercise_5(*, quick: bool = True) -> dict:
    """LATENCY_FORM = "mul_log" vs "hinge": argmax latency vs budget, cheapest ops in the argmax?

    Answer: ``mul_log`` (and ``additive``) keep pulling E[LAT] down even inside the budget: their
    gradient never vanishes (computed below with E[LAT] at half the budget), so a search with them
    drifts towards the cheapest op in many layers and its argmax genotype lands well below the
    budget (in the long benchmark search: DilConv everywhere at half the budget). ``hinge`` is flat
    inside the budget: there only the cross-entropy moves alpha, so its argmax keeps more of the
    slower, more accurate ops, ends near the budget and may even exceed it (argmax derivation does
    not look at the budget: lesson 07's knapsack fixes that). ``target`` pulls towards the budget
    from both sides (up when E[LAT] is below it), ``none`` not at all. In a 20-step quick search
    the noise of the cross-entropy gradient can hide the difference between the searched genotypes
    (count the cheapest ops over several seeds, or run ``--full``); the gradient check does not
    depend on the search.
    """
    settings = setup(quick=quick, seed=SEED)
    result = {}
    for form in ("mul_log", "hinge"):
        found = search(settings.quick, latency_form=form)
        table = table_of(found)
        cheapest = [names[int(np.argmin(row))] for names, row in zip(table.ops, table.ms)]
        argmax = found.genotype_argmax.ops
        result[form] = {"budget_ms": found.budget_ms,
                        "argmax_predicted_ms": found.predicted_argmax_ms,
                        "argmax_over_budget": found.predicted_argmax_ms > found.budget_ms,
                        "argmax_vs_budget": found.predicted_argmax_ms / found.budget_ms,
                        "layers_with_cheapest_op": sum(a == c for a, c in zip(argmax, cheapest)),
                        "final_expected_latency_ms": found.history.expected_latency_curve()[-1],
                        "argmax_genotype": list(argmax)}
    table = table_of(search(settings.quick))
    uniform_e_lat = table.fixed_ms + sum(sum(row) / len(row) for row in table.ms)
    result["pull_inside_budget"] = {form: latency_pull(form, table, 2 * uniform_e_lat)
                                    for form in LATENCY_FORMS}
    return result


# --------------------------------------------------------------------------- exercise 6
def toy_steps_until_stuck(toy, *, steps: int, lr: float, seed: int):
    """``toy_search`` for ``steps`` steps, or for as many as it manages before 100 draws in a row
    are over the budget -> (the trace, the step it gave up at or None)."""
    try:
        return toy_search(toy, steps=steps, lr=lr, seed=seed), None
    except InfeasibleBudgetError:
        done = max(n for n in range(steps) if _completes(toy, n, lr, seed))
        return toy_search(toy, steps=done, lr=lr, seed=seed), done


def _completes(toy, steps: int, lr: float, seed: int) -> bool:
    try:
        toy_search(toy, steps=steps, lr=lr, seed=seed)
        return True
    except InfeasibleBudgetError:
        return False


def exercise_6(*, quick: bool = True) -> dict:
    """The toy with budget_ms=4.0: where does p go, and why does the hard constraint not stop it?

    Answer: p moves towards op 1, the slow op, in the layers where the path that made the data has
    it (the first and the last), often in the middle layer too, and the share of rejected draws
    grows until most draws are rejected (with some seeds 100 draws in a row are, and sampling gives
    up: the library raises ``InfeasibleBudgetError``); the argmax path ends over the budget and
    E[LAT] under p rises above it. The path that made the data uses op 1 twice and no longer fits;
    the accepted paths lack it, and Eq. 4 measures what *adding* each op to an accepted path would
    do to the loss, so op 1 keeps gaining probability. The hard constraint only filters what is drawn:
    the loss never sees a rejected path, so nothing in it says "too slow". The real search's
    latency term (here the hinge on E[LAT], notebook 06 section 1) is that signal: its gradient
    lowers the probability of slow ops while E[LAT] is above the budget. (The toy leaves it out on
    purpose; in ProxylessNAS the hard constraint is the seed's addition on top of the latency loss.)
    """
    runs = {}
    for seed in range(2 if quick else 6):
        toy = toy_problem(seed=seed, budget_ms=4.0)
        trace, gave_up = toy_steps_until_stuck(toy, steps=30, lr=3.0, seed=seed)
        rejected = [(len(tries) - 1) / len(tries) for tries in trace.tries]
        probs = [[float(v) for v in torch.softmax(torch.tensor(a), 0)] for a in trace.alphas[-1]]
        argmax = tuple(int(np.argmax(p)) for p in probs)
        e_lat = sum(p[0] * lat[0] + p[1] * lat[1] for p, lat in zip(probs, toy.latency_ms))
        runs[f"seed {seed}"] = {
            "gave_up_at_step": gave_up, "steps": len(trace.tries),
            "rejected_share_first_5": float(np.mean(rejected[:5])),
            "rejected_share_last_5": float(np.mean(rejected[-5:])),
            "p_op1_per_layer": [p[1] for p in probs], "argmax": argmax,
            "argmax_ms": toy.path_latency(argmax), "expected_latency_ms": e_lat,
            "teacher_fits": toy.path_latency(toy.teacher_path) <= toy.budget_ms}
    return {"budget_ms": 4.0, **runs}


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5, exercise_6)


def main(argv=None) -> None:
    run(EXERCISES, lesson="06", argv=argv)


if __name__ == "__main__":
    main()

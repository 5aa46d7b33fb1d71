"""Derivation: argmax, and the budget-constrained knapsack DP against brute force."""
import itertools
import math

import numpy as np
import pytest
import torch

from segnas_lite.nas import (InfeasibleBudgetError, chain_space, derive_argmax,
                             derive_under_budget, genotype_latency, latency_rows_to_table,
                             tiny_space)

SPACE = chain_space("four", stem_channels=8, stages=((8, 1), (8, 1), (8, 1), (8, 1)),
                    ops=("mbv3_3x3", "sep_3x3", "shuffle"))  # 4 layers x 3 ops


def random_problem(seed, integer=True):
    rng = np.random.default_rng(seed)
    probs = [rng.dirichlet(np.ones(3)) for _ in range(4)]
    lat = rng.integers(1, 10, size=(4, 3)).astype(float) if integer else rng.uniform(0.5, 9, (4, 3))
    return probs, lat


def brute_force(probs, lat, fixed, budget):
    """Best sum of log-probabilities over all 3**4 genotypes with fixed + latency <= budget."""
    best = -math.inf
    for choice in itertools.product(range(3), repeat=4):
        if fixed + sum(lat[l, i] for l, i in enumerate(choice)) <= budget:
            best = max(best, sum(math.log(probs[l][i]) for l, i in enumerate(choice)))
    return best


def score(genotype, probs, space=SPACE):
    return sum(math.log(p[i]) for p, i in zip(probs, space.op_index(genotype)))


def test_argmax_picks_the_most_likely_op():
    probs = [torch.tensor([0.1, 0.7, 0.2]), torch.tensor([0.5, 0.2, 0.3]),
             torch.tensor([0.2, 0.2, 0.6]), torch.tensor([0.3, 0.4, 0.3])]
    assert derive_argmax(probs, SPACE).ops == ("sep_3x3", "mbv3_3x3", "shuffle", "sep_3x3")
    with pytest.raises(ValueError, match="match"):
        derive_argmax(probs[:3], SPACE)


@pytest.mark.parametrize("seed", range(60))
def test_dp_equals_brute_force_on_exact_latencies(seed):
    probs, lat = random_problem(seed)
    fixed = 3.0
    lowest, highest = fixed + lat.min(1).sum(), fixed + lat.max(1).sum()
    budget = float(np.random.default_rng(seed + 1000).uniform(lowest, highest))
    genotype = derive_under_budget(probs, lat, fixed, budget, space=SPACE, resolution_ms=1.0)
    assert genotype_latency(genotype, SPACE, lat, fixed) <= budget
    assert score(genotype, probs) == pytest.approx(brute_force(probs, lat, fixed, budget), abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_dp_on_real_valued_latencies_is_feasible_and_near_optimal(seed):
    probs, lat = random_problem(seed, integer=False)
    fixed, resolution = 2.5, 0.01
    budget = fixed + float(np.median(lat.sum(0)))
    genotype = derive_under_budget(probs, lat, fixed, budget, space=SPACE, resolution_ms=resolution)
    assert genotype_latency(genotype, SPACE, lat, fixed) <= budget + 1e-9
    best = brute_force(probs, lat, fixed, budget)
    # rounding up may cost at most one resolution step per layer
    assert brute_force(probs, lat, fixed, budget - 4 * resolution) - 1e-12 <= score(genotype, probs)
    assert score(genotype, probs) <= best + 1e-12


def test_argmax_can_break_the_budget_while_dp_does_not():
    probs = [torch.tensor([0.8, 0.1, 0.1])] * 4  # op 0 is the favourite ...
    lat = np.array([[9.0, 2.0, 3.0]] * 4)  # ... and the slowest
    fixed, budget = 4.0, 26.0  # all four favourites need 40 ms
    greedy = derive_argmax(probs, SPACE)
    assert genotype_latency(greedy, SPACE, lat, fixed) > budget
    constrained = derive_under_budget(probs, lat, fixed, budget, space=SPACE)
    assert genotype_latency(constrained, SPACE, lat, fixed) <= budget
    # the most probable fit keeps two favourites: 4 + 9 + 9 + 2 + 2 = 26 ms
    assert constrained.ops.count("mbv3_3x3") == 2 and constrained.ops.count("sep_3x3") == 2
    assert genotype_latency(constrained, SPACE, lat, fixed) == pytest.approx(26.0)


def test_generous_budget_gives_argmax():
    probs, lat = random_problem(1)
    genotype = derive_under_budget(probs, lat, 0.0, 1e6, space=SPACE, resolution_ms=1.0)
    assert genotype == derive_argmax(probs, SPACE)


def test_infeasible_budget_names_the_fastest_latency():
    probs, lat = random_problem(2)
    fastest = 1.0 + lat.min(1).sum()
    with pytest.raises(InfeasibleBudgetError, match=f"{fastest:.3f} ms"):
        derive_under_budget(probs, lat, 1.0, fastest - 0.5, space=SPACE)
    genotype = derive_under_budget(probs, lat, 1.0, fastest, space=SPACE)  # exactly fits
    assert genotype_latency(genotype, SPACE, lat, 1.0) == pytest.approx(fastest)


def test_layers_with_different_numbers_of_ops():
    space = tiny_space()  # (3, 3, 4, 3, 3) choices: one layer also has "zero"
    rng = np.random.default_rng(0)
    probs = [torch.tensor(rng.dirichlet(np.ones(n))) for n in space.num_choices()]
    rows = [list(rng.uniform(1, 5, n)) for n in space.num_choices()]
    table = latency_rows_to_table(rows)  # NaN padding beyond each layer's ops
    fixed = 2.0
    budget = fixed + sum(min(r) for r in rows) + 1.0
    genotype = derive_under_budget(probs, table, fixed, budget, space=space)
    space.validate(genotype)
    assert genotype_latency(genotype, space, table, fixed) <= budget + 1e-9


def test_budget_just_above_the_fastest_net_is_feasible_despite_rounding():
    """Ten layers whose latencies are not multiples of the resolution: rounding each one up used
    to make a budget a hair above the fastest net look infeasible."""
    from segnas_lite.nas import Genotype, derive_under_budget, seed_space
    space = seed_space()
    rng = np.random.default_rng(0)
    table = rng.uniform(0.1, 0.5, size=(len(space.layers), 7)) + 0.0037
    probs = [rng.dirichlet(np.ones(7)) for _ in space.layers]
    fastest_ops = tuple(spec.ops[int(np.argmin(row))] for spec, row in zip(space.layers, table))
    fastest = 1.0 + sum(row.min() for row in table)
    g = derive_under_budget(probs, table, 1.0, fastest + 1e-6, space=space)
    assert g == Genotype(space.name, fastest_ops)
    slowest = 1.0 + sum(row.max() for row in table)
    unconstrained = derive_under_budget(probs, table, 1.0, slowest + 5.0, space=space)
    assert unconstrained.ops == tuple(spec.ops[int(np.argmax(p))] for spec, p in zip(space.layers, probs))


# --------------------------------------------------------------------------- the closed loop
def test_closed_loop_tightens_until_the_measured_latency_fits():
    from segnas_lite.nas.derive import derive_measured
    space = SPACE
    rng = np.random.default_rng(0)
    lat = [sorted(rng.uniform(0.5, 2.0, len(spec.ops)).tolist()) for spec in space.layers]
    table = latency_rows_to_table(lat)
    # prefer the slow ops, so the derivation spends the whole budget
    probs = [np.linspace(1, 2, len(spec.ops)) / np.linspace(1, 2, len(spec.ops)).sum()
             for spec in space.layers]
    fixed = 1.0
    fastest = fixed + sum(min(r) for r in lat)
    slowest = fixed + sum(max(r) for r in lat)
    budget = (fastest + slowest) / 2
    calls = []

    def fake_timer(genotype):  # the real machine: 15% slower than the table predicts
        ms = 1.15 * genotype_latency(genotype, space, table, fixed)
        calls.append(ms)
        return ms

    result = derive_measured(probs, table, fixed, budget, space=space, measure=fake_timer)
    assert result.within_budget and result.measured_ms <= budget
    assert len(result.attempts) >= 2 and len(calls) == len(result.attempts)
    assert result.attempts[0]["measured_ms"] > budget  # the plain derivation broke the budget
    targets = [a["target_ms"] for a in result.attempts]
    assert all(b < a for a, b in zip(targets, targets[1:]))  # the target only tightens
    assert "within the budget" in result.to_text()


def test_closed_loop_reports_when_no_try_fits():
    from segnas_lite.nas.derive import derive_measured
    space = SPACE
    lat = [[1.0] * len(spec.ops) for spec in space.layers]
    table = latency_rows_to_table(lat)
    probs = [np.full(len(spec.ops), 1.0 / len(spec.ops)) for spec in space.layers]
    budget = 1.0 + len(lat) * 1.0 + 0.5
    result = derive_measured(probs, table, 1.0, budget, space=space, max_tries=3,
                             measure=lambda g: 10 * budget)  # nothing can fit on this "machine"
    assert not result.within_budget and "OVER" in result.to_text()
    assert 1 <= len(result.attempts) <= 3


def test_closed_loop_scales_the_failed_prediction_so_the_next_try_changes():
    """A net predicted far under its target but measured over budget must not be derived again:
    the next target follows its own prediction scaled by budget / measured."""
    from segnas_lite.nas.derive import derive_measured
    space = SPACE
    lat = [[1.0, 2.0][:len(spec.ops)] + [3.0] * (len(spec.ops) - 2) for spec in space.layers]
    table = latency_rows_to_table(lat)
    probs = [np.array([0.2, 0.8] + [0.0] * (len(spec.ops) - 2)) + 1e-9 for spec in space.layers]
    probs = [p / p.sum() for p in probs]
    fixed = 1.0
    preferred = fixed + 2.0 * len(lat)  # op 1 everywhere: what the probabilities want
    budget = preferred + 2.5  # the preferred net is predicted 2.5 ms under the budget...

    def fake_timer(genotype):  # ...but this machine runs it 30% slower than predicted
        return 1.3 * genotype_latency(genotype, space, table, fixed)

    result = derive_measured(probs, table, fixed, budget, space=space, measure=fake_timer)
    ops = [tuple(a["ops"]) for a in result.attempts]
    assert len(set(ops)) == len(ops), "every try must derive a different network"
    assert result.within_budget and result.measured_ms <= budget
    first = result.attempts[0]
    assert result.attempts[1]["target_ms"] == pytest.approx(
        first["predicted_ms"] * budget / first["measured_ms"])


def test_a_net_over_budget_is_measured_again_before_the_target_tightens():
    from segnas_lite.nas.derive import derive_measured
    space = SPACE
    lat = [[1.0] * len(spec.ops) for spec in space.layers]
    table = latency_rows_to_table(lat)
    probs = [np.full(len(spec.ops), 1.0 / len(spec.ops)) for spec in space.layers]
    budget = 1.0 + len(lat) + 0.5
    slow_then_fast = iter([budget * 1.5])  # the first reading caught a slow moment

    result = derive_measured(probs, table, 1.0, budget, space=space, pause_s=0.0,
                             measure=lambda g: next(slow_then_fast),
                             remeasure=lambda g: budget * 0.95)
    assert result.within_budget and len(result.attempts) == 1
    assert result.attempts[0]["measurements_ms"] == [budget * 1.5, budget * 0.95]
    assert result.measured_ms == budget * 0.95
    # without remeasure, the same first reading would have counted
    again = derive_measured(probs, table, 1.0, budget, space=space, max_tries=1,
                            measure=lambda g: budget * 1.5)
    assert not again.within_budget and again.attempts[0]["measurements_ms"] == [budget * 1.5]


@pytest.mark.parametrize("seed", range(40))
def test_default_grid_agrees_with_brute_force_at_sub_millisecond_budgets(seed):
    """Issue 24: with a fixed 0.01 ms grid a budget of ~1 ms left only tens of steps and the DP
    returned a less probable genotype; the default grid scales with the slack."""
    rng = np.random.default_rng(seed + 500)
    probs, _ = random_problem(seed)
    lat = rng.uniform(0.005, 0.08, size=(len(SPACE.layers), 3))  # sub-millisecond ops
    fixed = 0.3
    lowest, highest = fixed + lat.min(1).sum(), fixed + lat.max(1).sum()
    budget = float(rng.uniform(lowest, highest))
    genotype = derive_under_budget(probs, lat, fixed, budget, space=SPACE)
    assert genotype_latency(genotype, SPACE, lat, fixed) <= budget
    assert score(genotype, probs) == pytest.approx(brute_force(probs, lat, fixed, budget), abs=1e-9)


def test_argmax_is_returned_whenever_it_fits():
    """The workshop case: the argmax fits (0.92 against 0.937 ms) but a coarse grid rounded its
    extras up past the slack; the unconstrained optimum must come back unchanged."""
    probs = [torch.tensor([0.6, 0.3, 0.1])] * 4
    lat = np.array([[0.158, 0.15, 0.151]] * 4)  # the favourite is a hair slower than the rest
    fixed = 0.3
    budget = fixed + 4 * 0.158 + 0.001  # the argmax fits by 1 microsecond
    genotype = derive_under_budget(probs, lat, fixed, budget, space=SPACE, resolution_ms=0.01)
    assert genotype == derive_argmax(probs, SPACE)

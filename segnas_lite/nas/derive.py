"""Turn the learned probabilities into one architecture.

``derive_argmax`` is what ProxylessNAS does: the most likely op per layer. The seed (Sec. 3, "Future
work") points out the flaw: the per-layer winners together may break the latency budget.
``derive_under_budget`` fixes it exactly: among all genotypes whose predicted latency fits,

    maximise  sum_l log p_{l, c_l}   subject to   fixed + sum_l LAT(l, c_l) <= budget,

i.e. the most probable architecture under the joint distribution prod_l p_l that fits. This is a
multiple-choice knapsack; we solve it by dynamic programming over latency discretised to
``resolution_ms`` (by default the slack ``budget - fastest`` cut into ``DP_UNITS`` steps, so the grid
scales with the budget). Latencies are rounded UP and the remaining budget DOWN, so the answer never
exceeds the budget; it is exact up to the discretisation: it may miss an architecture that fits by
less than ``num_layers * resolution_ms``. When the argmax itself fits it is returned as is (it is the
unconstrained optimum, so no rounding may replace it by a less probable genotype).
``derive_measured`` closes the loop on the real machine: it measures what it derived and tightens
the target until the measured latency fits (``closed_loop``, which evolution and random search use
too, choosing among the subnets they scored).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from segnas_lite.errors import SegnasError
from segnas_lite.nas.space import Genotype, SearchSpace


DP_UNITS = 4096  # grid steps the slack is cut into by default (the DP's cost grows linearly with it)


class InfeasibleBudgetError(SegnasError, ValueError):
    """No architecture of the space fits the latency budget."""


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def _check_probs(probs: Sequence, space: SearchSpace) -> list[np.ndarray]:
    probs = [_as_numpy(p) for p in probs]
    if [len(p) for p in probs] != list(space.num_choices()):
        raise ValueError(f"probabilities per layer {[len(p) for p in probs]} do not match the "
                         f"space's choices {list(space.num_choices())}")
    return probs


def derive_argmax(probs: Sequence, space: SearchSpace) -> Genotype:
    """The most probable op in every layer (ProxylessNAS's derivation)."""
    probs = _check_probs(probs, space)
    return Genotype(space.name, tuple(spec.ops[int(np.argmax(p))]
                                      for p, spec in zip(probs, space.layers)))


def genotype_latency(genotype: Genotype, space: SearchSpace, lat_table, fixed_ms: float) -> float:
    """Predicted latency of ``genotype``: ``fixed + sum_l lat[l, choice_l]`` (ms)."""
    table = _as_numpy(lat_table)
    return float(fixed_ms) + sum(float(table[l, i]) for l, i in enumerate(space.op_index(genotype)))


def derive_under_budget(probs: Sequence, lat_table, fixed_ms: float, budget_ms: float, *,
                        space: SearchSpace, resolution_ms: float | None = None) -> Genotype:
    """The genotype maximising ``sum_l log p_{l,c_l}`` with predicted latency ``<= budget_ms``,
    exact up to the discretisation (module docstring).

    ``lat_table[l, i]`` is the latency (ms) of the i-th op of layer l (NaN/inf beyond the layer's
    ops, as in ``gates.expected_latency``). ``resolution_ms`` is the DP's latency grid; ``None``
    scales it to the slack (``(budget - fastest) / DP_UNITS``). Raises ``InfeasibleBudgetError``
    when even the fastest architecture does not fit.
    """
    probs = _check_probs(probs, space)
    table = _as_numpy(lat_table)
    if resolution_ms is not None and resolution_ms <= 0:
        raise ValueError(f"resolution_ms must be positive, got {resolution_ms}")
    lats = [table[l, :len(p)] for l, p in enumerate(probs)]
    for l, lat in enumerate(lats):
        if not np.all(np.isfinite(lat)) or np.any(lat < 0):
            raise ValueError(f"layer {l} has a missing or negative latency: {lat.tolist()}")
    fastest = float(fixed_ms) + sum(float(lat.min()) for lat in lats)
    slowest = float(fixed_ms) + sum(float(lat.max()) for lat in lats)
    if budget_ms < fastest:
        raise InfeasibleBudgetError(
            f"no architecture fits {budget_ms:.3f} ms: the fastest one takes {fastest:.3f} ms "
            f"(fixed part {fixed_ms:.3f} ms); raise the budget or measure a faster space")
    argmax = derive_argmax(probs, space)
    if budget_ms >= slowest or genotype_latency(argmax, space, table, fixed_ms) <= budget_ms:
        return argmax  # the unconstrained optimum fits: nothing to trade
    # The DP spends the slack (budget - fastest) on each layer's *extra* cost over its fastest op.
    # Extras are rounded up and the slack down, so the answer never exceeds the budget, and the
    # all-fastest choice (extra 0) always fits.
    slack = budget_ms - fastest
    if resolution_ms is None:
        resolution_ms = max(slack / DP_UNITS, 1e-12)
    capacity = math.floor(slack / resolution_ms + 1e-9)  # units of resolution
    costs = [np.ceil((lat - lat.min()) / resolution_ms - 1e-9).astype(np.int64) for lat in lats]

    # best[c] = highest sum of log-probabilities of the layers so far using at most c units.
    best = np.zeros(capacity + 1)
    choices = []  # choices[l][c] = op picked in layer l when c units are left for layers 0..l
    for p, cost in zip(probs, costs):
        logp = np.log(np.clip(p, 1e-300, None))
        new = np.full(capacity + 1, -np.inf)
        pick = np.full(capacity + 1, -1, dtype=np.int64)
        for i, (w, gain) in enumerate(zip(cost, logp)):
            if w > capacity:
                continue
            candidate = np.full(capacity + 1, -np.inf)
            candidate[w:] = best[:capacity + 1 - w] + gain  # spend w units on op i
            better = candidate > new
            new[better], pick[better] = candidate[better], i
        best = new
        choices.append(pick)

    # Walk back from the full capacity to read off the choice of each layer.
    chosen, units = [], capacity
    for l in range(len(probs) - 1, -1, -1):
        i = int(choices[l][units])
        chosen.append(i)
        units -= int(costs[l][i])
    chosen.reverse()
    return Genotype(space.name, tuple(spec.ops[i] for i, spec in zip(chosen, space.layers)))


# --------------------------------------------------------------------------- closing the loop
@dataclass
class MeasuredDerivation:
    """What ``derive_measured`` did: every try, and whether the last one kept the budget."""

    genotype: Genotype
    predicted_ms: float
    measured_ms: float
    budget_ms: float
    attempts: list[dict] = field(default_factory=list)

    @property
    def within_budget(self) -> bool:
        return self.measured_ms <= self.budget_ms

    def to_text(self) -> str:
        lines = [f"try {i + 1}: predicted {a['predicted_ms']:.2f} ms (target {a['target_ms']:.2f}),"
                 f" measured {a['measured_ms']:.2f} ms" for i, a in enumerate(self.attempts)]
        verdict = "within" if self.within_budget else "OVER"
        return "\n".join(lines + [f"{verdict} the budget of {self.budget_ms:.2f} ms "
                                  f"after {len(self.attempts)} tries"])


def derive_measured(probs: Sequence, lat_table, fixed_ms: float, budget_ms: float, *,
                    space: SearchSpace, measure: Callable[[Genotype], float], max_tries: int = 5,
                    min_step: float = 0.03,
                    remeasure: Callable[[Genotype], float] | None = None,
                    pause_s: float = 5.0) -> MeasuredDerivation:
    """Budget-constrained derivation whose result is *measured* within the budget: the
    :func:`closed_loop` around :func:`derive_under_budget` (the most probable genotype under each
    target), down to the fastest architecture of the table."""
    table = _as_numpy(lat_table)
    lats = [table[l, :len(spec.ops)] for l, spec in enumerate(space.layers)]
    fastest = float(fixed_ms) + sum(float(np.nanmin(lat)) for lat in lats)
    return closed_loop(
        lambda target: derive_under_budget(probs, lat_table, fixed_ms, target, space=space),
        lambda genotype: genotype_latency(genotype, space, lat_table, fixed_ms), budget_ms,
        fastest_ms=fastest, measure=measure, max_tries=max_tries, min_step=min_step,
        remeasure=remeasure, pause_s=pause_s)


def closed_loop(choose: Callable[[float], Genotype], predict: Callable[[Genotype], float],
                budget_ms: float, *, fastest_ms: float, measure: Callable[[Genotype], float],
                max_tries: int = 5, min_step: float = 0.03,
                remeasure: Callable[[Genotype], float] | None = None,
                pause_s: float = 5.0) -> MeasuredDerivation:
    """Choose under a target, measure, tighten: until the *measured* latency fits the budget.

    A prediction can be off by a few percent, which is enough to break a tight budget. So:
    ``choose(target)`` the best genotype predicted within a target (first the budget itself; the
    gradient search takes the most probable one, evolution and random search the fittest one they
    scored), measure it end to end with ``measure``; if it is over budget, choose again under
    ``predicted * budget / measured`` (the failed net's own prediction, scaled by how much the
    predictor underestimated it) or ``min_step`` below the previous target, whichever is lower.
    Scaling the *prediction*, not the target, matters: a net predicted well under its target would
    otherwise be chosen again and again. At most ``max_tries`` times, or until the target reaches
    ``fastest_ms`` (the fastest genotype ``choose`` can return; targets never go below it). The
    result says what happened; its ``within_budget`` is False when no try fitted (the last try is
    returned, for the caller to report, never to pass off as fitting).

    ``remeasure``: a fresh measurement (no cache). A net measured over budget is measured once more
    after ``pause_s`` seconds and the faster of the two counts (the package's statistic: the best of
    rounds taken apart), so a few seconds in which the machine ran slow do not cost the net; both
    readings are kept in the try's ``measurements_ms``.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    target, attempts = float(budget_ms), []
    for _ in range(max_tries):
        genotype = choose(max(target, fastest_ms))
        predicted = float(predict(genotype))
        readings = [float(measure(genotype))]
        if readings[0] > budget_ms and remeasure is not None:
            time.sleep(pause_s)
            readings.append(float(remeasure(genotype)))
        measured = min(readings)
        attempts.append({"target_ms": max(target, fastest_ms), "ops": list(genotype.ops),
                         "predicted_ms": predicted, "measured_ms": measured,
                         "measurements_ms": readings})
        if measured <= budget_ms or target <= fastest_ms:
            break
        target = min(predicted * budget_ms / measured, target * (1.0 - min_step))
    return MeasuredDerivation(genotype, predicted, measured, float(budget_ms), attempts)

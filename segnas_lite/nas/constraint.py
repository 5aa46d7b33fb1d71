"""The seed's hard latency constraint: sample subnets until one fits the budget.

Every subnet the search samples (warm-up, weight and alpha steps) has its latency predicted from the
table or measured end to end; over budget means reject and draw again (``sample_under_budget``).
Resampling draws from p *truncated to the feasible set*, not from p, so the Eq. 4 estimator becomes
biased; ``rejection_bias`` measures how much. ``default_budget`` picks a budget that bites: a
quantile (by default 0.4 in the search) of the predicted latency of random architectures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from segnas_lite.nas.derive import InfeasibleBudgetError
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.space import Genotype


def sample_under_budget(draw: Callable[[], Genotype], latency: Callable[[Genotype], float],
                        budget_ms: float, *, max_resample: int,
                        fastest_ms: float) -> list[tuple[Genotype, float, bool]]:
    """The seed's hard constraint: ``draw()`` until ``latency(g) <= budget_ms``.

    Returns every try as ``(genotype, latency, accepted)``; the last one is the accepted subnet (the
    super-net is left in that state by ``draw``). Raises ``InfeasibleBudgetError`` after
    ``max_resample`` rejections, naming the fastest latency the space allows.
    """
    tries = []
    for _ in range(max_resample):
        genotype = draw()
        ms = float(latency(genotype))
        tries.append((genotype, ms, ms <= budget_ms))
        if ms <= budget_ms:
            return tries
    raise InfeasibleBudgetError(
        f"{max_resample} sampled subnets in a row exceeded the {budget_ms:.3f} ms budget (their "
        f"latencies ranged {min(t[1] for t in tries):.3f}-{max(t[1] for t in tries):.3f} ms); the "
        f"fastest architecture of the space takes {fastest_ms:.3f} ms. Raise the budget, or "
        "max_resample if the budget is only rarely hit")


@dataclass
class RejectionBias:
    """How far the truncated sampling distribution is from p (see ``rejection_bias``)."""

    acceptance_rate: float
    tv_per_layer: list[float]          # 0.5 * sum_i |freq_accepted_i - p_i|, per layer
    accepted_freq: list[list[float]]   # op frequencies among accepted samples, per layer
    probs: list[list[float]]
    mean_latency_all_ms: float         # mean predicted latency of samples from p
    mean_latency_accepted_ms: float    # ... of the accepted ones


def rejection_bias(probs: Sequence, table: LatencyTable, budget_ms: float, *,
                   num_samples: int = 4000, seed: int = 0) -> RejectionBias:
    """Sample ``num_samples`` genotypes from ``p`` (one op per layer, independently), keep those with
    predicted latency <= budget, and compare the accepted op frequencies with p.

    Rejection sampling draws from ``p(g | LAT(g) <= T)``, whose per-layer marginals differ from
    ``p_l``; the Eq. 4 gradient is then taken under this truncated distribution. A total-variation
    distance near 0 means the constraint hardly biases that layer; near 1, it decides the layer alone.
    """
    generator = torch.Generator().manual_seed(seed)
    probs = [torch.as_tensor(p, dtype=torch.float64).detach().flatten() for p in probs]
    latency = torch.full((num_samples,), float(table.fixed_ms), dtype=torch.float64)
    choices = []
    for p, row in zip(probs, table.ms):
        index = torch.multinomial(p, num_samples, replacement=True, generator=generator)
        latency += torch.tensor(row, dtype=torch.float64)[index]
        choices.append(index)
    accepted = latency <= budget_ms
    count = int(accepted.sum())
    if count == 0:
        raise InfeasibleBudgetError(f"none of {num_samples} samples from p fits {budget_ms:.3f} ms "
                                    f"(fastest: {table.fastest()[1]:.3f} ms)")
    freqs, tv = [], []
    for p, index in zip(probs, choices):
        freq = torch.bincount(index[accepted], minlength=len(p)).double() / count
        freqs.append(freq.tolist())
        tv.append(0.5 * float((freq - p).abs().sum()))
    return RejectionBias(count / num_samples, tv, freqs, [p.tolist() for p in probs],
                         float(latency.mean()), float(latency[accepted].mean()))


def default_budget(table: LatencyTable, *, quantile: float = 0.5, num_samples: int = 4000,
                   seed: int = 0) -> float:
    """The ``quantile`` of the predicted latency of uniformly random architectures (ms).

    With quantile q, a share 1 - q of uniform samples is rejected at the start of the search, so
    the constraint bites (the search's default is 0.4). (The midpoint between fastest and slowest
    would be simpler, but one badly timed table entry drags it far up and nothing is rejected.)"""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    generator = torch.Generator().manual_seed(seed)
    latency = torch.full((num_samples,), float(table.fixed_ms), dtype=torch.float64)
    for row in table.ms:
        index = torch.randint(len(row), (num_samples,), generator=generator)
        latency += torch.tensor(row, dtype=torch.float64)[index]
    return float(torch.quantile(latency, quantile))

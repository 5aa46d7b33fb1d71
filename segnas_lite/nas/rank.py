"""Does the super-net rank? The diagnostic every weight-sharing search owes its reader.

A one-shot search trusts the super-net: a subnet scored with *inherited* weights stands in for the
same subnet trained alone. Yu et al. (ICLR 2020, "Evaluating the search phase of neural
architecture search") measured that trust and often found it misplaced; Yu, Ranftl and Salzmann
(ICLR 2021, "How to train your super-net") list what restores it. The measurement is simple:

1. draw a dozen or more subnets spread over the latency range under the budget
   (:func:`spread_over_latency`);
2. score each with the super-net's weights (:func:`supernet_estimate`), with and without
   re-estimating BatchNorm statistics for that subnet first (:func:`recalibrate_bn`);
3. train each alone with the retraining recipe, at least two seeds (the benchmark does this);
4. compare the two rankings with Kendall's tau and Spearman's rho (:func:`rank_agreement`), next to
   what the number of parameters, the FLOPs or the latency alone achieve. A super-net whose tau does
   not beat the parameter count cannot make a search beat random search.

The rank statistics and their bootstrap intervals come from ``scipy.stats`` (not re-implemented).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segnas_lite.nas.space import Genotype, SearchSpace
from segnas_lite.nas.supernet import SegSuperNet
from segnas_lite.train.engine import evaluate


# --------------------------------------------------------------------------- BN recalibration
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor] | Iterable[tuple]) -> int:
    """Re-estimate every BatchNorm's running mean and variance from ``batches`` -> images seen.

    The running statistics of a super-net are an average over all the paths that were sampled
    while it trained, so they fit no single subnet. Once-for-all (Cai et al., ICLR 2020) resets them
    and recomputes them for the subnet at hand: forward passes in train mode, no gradients, with
    ``momentum=None`` so that BatchNorm keeps the plain cumulative average over all batches. The
    weights do not change; the model's train/eval mode and each layer's momentum are restored.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: every batch weighs by its share
    seen = 0
    device = next(model.parameters()).device
    model.train()
    try:
        with torch.no_grad():
            for batch in batches:
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(images.to(device))
                seen += int(images.shape[0])
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.train(was_training)
    return seen


def calibration_batches(dataset: Dataset, *, images: int = 256, batch_size: int = 16,
                        seed: int = 0) -> list[torch.Tensor]:
    """A fixed random sample of ``images`` training images in batches (the same for every subnet,
    so that the estimates differ by architecture only)."""
    count = min(images, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    loader = DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size)
    return [batch[0] for batch in loader]


# --------------------------------------------------------------------------- the super-net's estimate
def supernet_estimate(supernet: SegSuperNet, genotype: Genotype, val_set: Dataset, *,
                      num_classes: int, calibration: Sequence[torch.Tensor] | None = None,
                      batch_size: int = 8, ignore_index: int = 255) -> float:
    """The mIoU that ``genotype`` reaches with the super-net's weights on ``val_set``.

    ``calibration``: training batches for :func:`recalibrate_bn` (None: keep the shared statistics).
    The subnet is extracted as a stand-alone copy (``SegSuperNet.extract_child``), so the super-net
    itself, its BatchNorm statistics included, is left untouched.
    """
    child = supernet.extract_child(genotype).to(next(supernet.parameters()).device)
    if calibration is not None:
        recalibrate_bn(child, calibration)
    metrics = evaluate(child, val_set, num_classes=num_classes, batch_size=batch_size,
                       ignore_index=ignore_index, quiet=True)
    return metrics.miou


# --------------------------------------------------------------------------- which subnets
def spread_over_latency(space: SearchSpace, latency_ms: Callable[[Genotype], float], *,
                        budget_ms: float, count: int, low_frac: float = 0.0, pool: int = 4000,
                        seed: int = 0) -> list[Genotype]:
    """``count`` distinct random subnets whose predicted latency lies in
    [``low_frac`` * budget, budget], spread evenly over that range.

    Draws ``pool`` random genotypes, keeps those in range, sorts them by latency and takes the ones
    nearest to ``count`` evenly spaced latencies. Evenly spread subnets keep the ranking from being
    decided by a few near-identical latencies (and show whether the super-net merely learned
    "bigger is better"). Raises ``ValueError`` when too few subnets fall in range.
    """
    rng = random.Random(seed)
    found: dict[tuple[str, ...], float] = {}
    for _ in range(pool):
        genotype = space.random_genotype(rng)
        if genotype.ops in found:
            continue
        ms = latency_ms(genotype)
        if low_frac * budget_ms <= ms <= budget_ms:
            found[genotype.ops] = ms
    if len(found) < count:
        raise ValueError(f"only {len(found)} of {pool} random subnets lie within "
                         f"[{low_frac:.2f}, 1] x {budget_ms:.3f} ms; widen the range or the pool")
    items = sorted(found.items(), key=lambda kv: kv[1])
    latencies = np.array([ms for _, ms in items])
    picked: list[int] = []
    for target in np.linspace(latencies[0], latencies[-1], count):
        order = np.argsort(np.abs(latencies - target))
        picked.append(next(int(i) for i in order if int(i) not in picked))
    return [Genotype(space.name, items[i][0]) for i in sorted(picked)]


# --------------------------------------------------------------------------- agreement
@dataclass
class Agreement:
    """How well one score ranks the subnets like their stand-alone mIoU does."""

    kendall: float
    kendall_p: float
    spearman: float
    n: int
    kendall_low: float | None = None   # 95% bootstrap interval of Kendall's tau
    kendall_high: float | None = None
    spearman_low: float | None = None  # ... and of Spearman's rho (the same resamples)
    spearman_high: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def rank_agreement(scores: Sequence[float], truth: Sequence[float], *, bootstrap: int = 0,
                   seed: int = 0) -> Agreement:
    """Kendall's tau (with its p-value) and Spearman's rho of ``scores`` against ``truth``
    (``scipy.stats.kendalltau`` / ``spearmanr``); with ``bootstrap`` > 0 also 95% percentile
    intervals of tau and of rho from that many paired resamples (``scipy.stats.bootstrap``, one
    call: both statistics of each resample)."""
    x = np.asarray(scores, dtype=float)
    y = np.asarray(truth, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need two equally long sequences of at least 3 values, got {x.size} and "
                         f"{y.size}")
    tau = stats.kendalltau(x, y)
    rho = stats.spearmanr(x, y)
    result = Agreement(kendall=float(tau.statistic), kendall_p=float(tau.pvalue),
                       spearman=float(rho.statistic), n=int(x.size))
    if bootstrap:
        def tau_and_rho(a, b):  # a resample of repeated pairs only has no ranking: count it as 0
            return np.nan_to_num([stats.kendalltau(a, b).statistic,
                                  stats.spearmanr(a, b).statistic])

        ci = stats.bootstrap((x, y), tau_and_rho, paired=True,
                             vectorized=False, n_resamples=bootstrap, method="percentile",
                             random_state=np.random.default_rng(seed)).confidence_interval
        result.kendall_low, result.spearman_low = (float(v) for v in ci.low)
        result.kendall_high, result.spearman_high = (float(v) for v in ci.high)
    return result


def proxy_agreements(truth: Sequence[float], proxies: dict[str, Sequence[float]], *,
                     bootstrap: int = 0, seed: int = 0) -> dict[str, Agreement]:
    """:func:`rank_agreement` of each named score (super-net estimates, #params, FLOPs, latency)
    against the same stand-alone mIoU."""
    return {name: rank_agreement(values, truth, bootstrap=bootstrap, seed=seed)
            for name, values in proxies.items()}


def noise_ceiling(between_seeds: float, *, seeds: int, statistic: str = "kendall") -> float:
    """The rank agreement a *perfect* score would reach against the mean of ``seeds`` training
    seeds, given how well one seed agrees with another (``between_seeds``, a tau or a rho).

    Stand-alone mIoU is the truth only up to training noise, so no score can rank it perfectly.
    Classical test theory gives the ceiling: if one seed correlates ``r`` with another, the mean of
    k seeds has reliability ``k r / (1 + (k - 1) r)`` (the Spearman-Brown formula) and a perfect
    score correlates with that mean as its square root. Rank statistics are converted to and from
    Pearson's r with their relations for normal data (Kendall, "Rank correlation methods", 1948:
    ``tau = (2 / pi) asin(r)``; ``rho = (6 / pi) asin(r / 2)``), so the ceiling assumes roughly
    normal seed noise of equal size for every subnet. A seed-to-seed agreement of 0 or below (the
    truth is noise) gives a ceiling of 0. Written out here: scipy has no function for it.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if statistic == "kendall":
        r = np.sin(np.pi / 2 * between_seeds)
    elif statistic == "spearman":
        r = 2 * np.sin(np.pi / 6 * between_seeds)
    else:
        raise ValueError(f"statistic must be 'kendall' or 'spearman', got {statistic!r}")
    if r <= 0:
        return 0.0
    reliability = seeds * r / (1 + (seeds - 1) * r)  # of the mean of the seeds
    best = float(np.sqrt(min(reliability, 1.0)))  # a perfect score's r with that mean
    if statistic == "kendall":
        return float(2 / np.pi * np.arcsin(best))
    return float(6 / np.pi * np.arcsin(best / 2))

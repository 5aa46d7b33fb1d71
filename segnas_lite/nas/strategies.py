"""Step 3 of a search: choose the genotype, by alpha (gradient), evolution or random search.

``conclude`` is what every search ends with (``ProxylessSearch.derive``): the strategy's choice,
measured within the budget in a closed loop, the super-net's estimate of it (``SupernetScore``,
BatchNorm recalibrated per ``bn_recalibration``) and the output files. The gradient strategy
(ProxylessNAS) derives from the learned alphas (``derive.py``). With ``strategy="evolution"`` or
``"random"`` the search trains the super-net (the warm-up, with whatever fairness, sandwich or
distillation the config asks for), runs no alpha step, and searches the trained super-net instead
(../shared/DESIGN.md, "Judging a search"):

* **fitness** of a subnet = the super-net's mIoU for it with inherited weights
  (``rank.supernet_estimate``), BatchNorm statistics re-estimated on ``bn_recalibration`` training
  images first, on the held-out part of the TRAIN split that the gradient strategy's alpha steps
  use (``search.split_for_search``), never on val;
* **latency** = the same source under the same hard budget as the gradient search's samples (the
  table, or the end-to-end measurement for ``constraint="measured"``): a subnet over budget is
  rejected and redrawn (``evolution.evolve``, ``evolution.random_search``);
* **the choice** = the same closed loop on measured latency as the gradient derivation
  (``derive.closed_loop``): the fittest subnet scored is measured; if it runs over budget, the
  target is tightened and the fittest scored subnet predicted within it is measured next.

Random search scores as many subnets as evolution does at most
(``SearchConfig.strategy_evaluations``), so the two are compared at the same cost (Li and
Talwalkar, UAI 2019).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from segnas_lite.nas import checkpoint
from segnas_lite.nas.derive import (MeasuredDerivation, closed_loop, derive_argmax, derive_measured,
                                    derive_under_budget)
from segnas_lite.nas.evolution import StrategyResult, evolve, random_search
from segnas_lite.nas.history import SearchResult
from segnas_lite.nas.measure import MeasuredLatency
from segnas_lite.nas.rank import calibration_batches, supernet_estimate
from segnas_lite.nas.space import Genotype
from segnas_lite.nas.supernet import SegSuperNet

if TYPE_CHECKING:  # only for the annotations: search.py imports this module
    from segnas_lite.nas.search import ProxylessSearch


class BudgetNotMetWarning(UserWarning):
    """The closed-loop derivation found no architecture whose measured latency fits the budget."""


class SupernetScore:
    """Genotype -> the super-net's mIoU for it on ``held_out`` (inherited weights; remembered).

    ``held_out`` is read once into memory, so that hundreds of scores do not redraw or reload the
    images; ``calibration``: training batches for BatchNorm recalibration (None: the super-net's
    shared statistics)."""

    def __init__(self, supernet: SegSuperNet, held_out: Dataset, *, num_classes: int,
                 calibration: list[torch.Tensor] | None, batch_size: int, ignore_index: int) -> None:
        pairs = [held_out[i] for i in range(len(held_out))]
        self.held_out = TensorDataset(torch.stack([image for image, _ in pairs]),   # (N, 3, H, W)
                                      torch.stack([mask for _, mask in pairs]))     # (N, H, W)
        self.supernet, self.calibration = supernet, calibration
        self.num_classes, self.batch_size, self.ignore_index = num_classes, batch_size, ignore_index
        self.cache: dict[tuple[str, ...], float] = {}

    @classmethod
    def of_search(cls, search: "ProxylessSearch") -> "SupernetScore":
        """The score a search uses: the held-out images of one alpha epoch (``arch_batches`` batches
        of the alpha split; all of it when ``steps_per_epoch`` is None) and ``bn_recalibration``
        images of the weight split."""
        cfg = search.config
        held_out = Subset(search.arch_set, range(search.arch_batches * cfg.batch_size))
        calibration = (calibration_batches(search.weight_set, images=cfg.bn_recalibration,
                                           batch_size=cfg.batch_size, seed=cfg.seed)
                       if cfg.bn_recalibration else None)
        return cls(search.net, held_out, num_classes=search.num_classes, calibration=calibration,
                   batch_size=cfg.batch_size, ignore_index=cfg.ignore_index)

    def __call__(self, genotype: Genotype) -> float:
        if genotype.ops not in self.cache:
            self.cache[genotype.ops] = supernet_estimate(
                self.supernet, genotype, self.held_out, num_classes=self.num_classes,
                calibration=self.calibration, batch_size=self.batch_size,
                ignore_index=self.ignore_index)
        return self.cache[genotype.ops]


@dataclass
class ScoredPool:
    """Every subnet a strategy scored, with its fitness and predicted latency: what the closed
    loop chooses from."""

    space: str
    fitness: dict[tuple[str, ...], float]
    predicted_ms: dict[tuple[str, ...], float]

    @classmethod
    def of(cls, found: StrategyResult, *, space: str,
           predict: Callable[[Genotype], float]) -> "ScoredPool":
        fitness = {tuple(ops): float(score) for generation in found.generations
                   for ops, score, _ in generation["population"]}
        return cls(space, fitness, {ops: float(predict(Genotype(space, ops))) for ops in fitness})

    @property
    def fastest_ms(self) -> float:
        return min(self.predicted_ms.values())

    def fittest_within(self, target_ms: float) -> Genotype:
        """The fittest subnet predicted within ``target_ms`` (ties: the faster); the fastest one
        scored when none is."""
        within = [ops for ops, ms in self.predicted_ms.items() if ms <= target_ms]
        if not within:
            return Genotype(self.space, min(self.predicted_ms, key=self.predicted_ms.get))
        return Genotype(self.space, max(within, key=lambda ops: (self.fitness[ops],
                                                                 -self.predicted_ms[ops])))


def run_strategy(search: "ProxylessSearch", score: Callable[[Genotype], float]) -> StrategyResult:
    """Evolution or random search over the super-net of ``search``, under its budget and latency
    source; both draw with ``config.evolution.max_resample`` tries per subnet and ``config.seed``."""
    cfg = search.config
    common = dict(fitness=score, latency_ms=search.latency_fn, budget_ms=search.budget_ms,
                  seed=cfg.seed)
    if cfg.strategy == "evolution":
        return evolve(search.space, config=cfg.evolution, **common)
    if cfg.strategy == "random":
        return random_search(search.space, evaluations=cfg.strategy_evaluations,
                             max_resample=cfg.evolution.max_resample, **common)
    raise ValueError(f"run_strategy runs evolution or random search, not {cfg.strategy!r}")


def conclude(search: "ProxylessSearch") -> SearchResult:
    """Step 3 of every search: choose the genotype by ``config.strategy``, measure it within the
    budget in the closed loop (``config.measure_child``; without it, the choice under the
    predicted budget), score it with the super-net, and write the output files.

    ``genotype.json`` is written only when the measured latency fits; otherwise
    ``genotype_over_budget.json`` and a :class:`BudgetNotMetWarning`."""
    cfg = search.config
    score = SupernetScore.of_search(search)
    if cfg.strategy == "gradient":
        first, chosen, loop = _by_alpha(search)
    else:
        first, chosen, loop = _by_scores(search, score)
    result = SearchResult(first, chosen, search.budget_ms, search.table.predict(first),
                          search.table.predict(chosen), loop.measured_ms if loop else None,
                          search.history, str(search.out_dir) if search.out_dir else None,
                          latency={"backend": cfg.target.backend,
                                   "precision": cfg.target.precision,
                                   "latency_size": cfg.target.image_size,
                                   "calibrated": bool(search.table.meta.get("calibrated")),
                                   "derive_attempts": loop.attempts if loop else []},
                          supernet_miou=score(chosen))
    if loop is not None and not loop.within_budget:
        warnings.warn(f"no derived architecture measured within the budget of "
                      f"{search.budget_ms:.2f} ms:\n{loop.to_text()}\nRaise the budget or "
                      "re-run on a quiet machine; the result is in genotype_over_budget.json",
                      BudgetNotMetWarning, stacklevel=3)
    if search.out_dir is not None:
        checkpoint.write_outputs(search.out_dir, result)
    return result


def _child_measure(search: "ProxylessSearch") -> Callable[[Genotype], float]:
    """How the chosen child is measured: ``child_latency_fn``, the measured constraint's own
    (cached) measurement, or end to end on ``config.target``."""
    if search.child_latency_fn is not None:
        return search.child_latency_fn
    if isinstance(search.latency_fn, MeasuredLatency):
        return search.latency_fn
    return search.measured_latency(runs=20, rounds=2)


def _by_alpha(search: "ProxylessSearch") -> tuple[Genotype, Genotype, MeasuredDerivation | None]:
    """The gradient strategy: the argmax genotype, and the most probable one within the budget
    (``derive.derive_under_budget``), measured in the closed loop (``derive.derive_measured``)."""
    cfg = search.config
    probs = [p.detach() for p in search.net.probabilities()]
    argmax = derive_argmax(probs, search.space)
    if not cfg.measure_child:
        return argmax, derive_under_budget(probs, search.lat_tensor, search.table.fixed_ms,
                                           search.budget_ms, space=search.space), None
    measure = _child_measure(search)
    loop = derive_measured(probs, search.lat_tensor, search.table.fixed_ms, search.budget_ms,
                           space=search.space, measure=measure, max_tries=cfg.max_derive_tries,
                           remeasure=getattr(measure, "remeasure", None))
    return argmax, loop.genotype, loop


def _by_scores(search: "ProxylessSearch", score: SupernetScore) -> tuple[
        Genotype, Genotype, MeasuredDerivation | None]:
    """Evolution or random search: the fittest subnet scored, and the fittest one measured within
    the budget (``derive.closed_loop`` over the :class:`ScoredPool`). The strategy's record goes to
    ``search.history.strategy``."""
    cfg = search.config
    found = run_strategy(search, score)
    search.history.strategy = {"strategy": found.strategy, "evaluations": found.evaluations,
                               "rejections": found.rejections, "best": asdict(found.best),
                               "generations": found.generations}
    fittest = Genotype(search.space.name, found.best.ops)
    pool = ScoredPool.of(found, space=search.space.name, predict=search.table.predict)
    if not cfg.measure_child:
        return fittest, pool.fittest_within(search.budget_ms), None
    measure = _child_measure(search)
    loop = closed_loop(pool.fittest_within, search.table.predict, search.budget_ms,
                       fastest_ms=pool.fastest_ms, measure=measure, max_tries=cfg.max_derive_tries,
                       remeasure=getattr(measure, "remeasure", None))
    return fittest, loop.genotype, loop

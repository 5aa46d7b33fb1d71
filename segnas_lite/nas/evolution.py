"""Two more ways to search one trained super-net: evolution, and random search as its baseline.

Once the super-net is trained, any subnet can be scored in seconds with inherited weights. The
gradient search (ProxylessNAS, ``search.py``) is one way to pick the best; two others need no
architecture parameters at all:

* **Evolution** (once-for-all, Cai et al., ICLR 2020, Sec. 3.4): a population of random subnets
  within the budget; each generation keeps the best quarter as parents, and fills the population
  with mutants (each layer redrawn with a small probability) and crossovers (each layer from one
  of two parents). A child over the latency budget is rejected and redrawn: the seed's hard
  constraint again.
* **Random search** (Li and Talwalkar, UAI 2019): as many random subnets within the budget as
  evolution scored, and the best of them. Every NAS method must beat it with the same count of
  evaluations, or it has not earned its complexity.

Fitness is the super-net's mIoU on a held-out part of the **training** split (never on val, which
judges the final nets). Both functions take it as a callable, so they are easy to test.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from segnas_lite.errors import SegnasError
from segnas_lite.nas.space import Genotype, SearchSpace


class SearchBudgetError(SegnasError, RuntimeError):
    """No subnet within the latency budget could be drawn in ``max_resample`` tries."""


@dataclass(frozen=True)
class EvolutionConfig:
    """once-for-all's settings, scaled to a CPU: a population of 100 with 25% parents, half of
    each new generation from mutation (each layer redrawn with ``mutate_prob``), half from
    crossover."""

    population: int = 100
    generations: int = 10
    parent_frac: float = 0.25
    mutation_frac: float = 0.5
    mutate_prob: float = 0.1
    max_resample: int = 500

    def __post_init__(self) -> None:
        if self.population < 4 or self.generations < 1:
            raise SearchBudgetError("evolution needs a population >= 4 and generations >= 1")
        if not (0 < self.parent_frac < 1 and 0 <= self.mutation_frac <= 1
                and 0 < self.mutate_prob <= 1):
            raise SearchBudgetError("parent_frac in (0, 1), mutation_frac in [0, 1] and "
                                    "mutate_prob in (0, 1] please")

    @property
    def num_parents(self) -> int:
        """Parents kept from each generation (at least two, for crossover)."""
        return max(2, round(self.parent_frac * self.population))

    @property
    def max_evaluations(self) -> int:
        """Fitness evaluations evolution makes at most: the first population, then the children of
        every later generation (parents are not scored again). A child met before is not scored
        again either, so a run can score fewer: random search with this many scores at least as
        many subnets as evolution did."""
        return self.population + (self.generations - 1) * (self.population - self.num_parents)


@dataclass
class Candidate:
    ops: tuple[str, ...]
    fitness: float
    latency_ms: float


@dataclass
class StrategyResult:
    """What a strategy found, and how (one row per generation for evolution; one for random)."""

    strategy: str
    best: Candidate
    evaluations: int                     # distinct subnets whose fitness was computed
    rejections: int                      # drawn subnets over the budget, redrawn
    generations: list[dict] = field(default_factory=list)

    @property
    def genotype_ops(self) -> tuple[str, ...]:
        return self.best.ops


class _Scorer:
    """Fitness with a memory: a subnet met twice is scored once (and counted once)."""

    def __init__(self, space: SearchSpace, fitness: Callable[[Genotype], float]) -> None:
        self.space, self.fitness, self.cache = space, fitness, {}

    def __call__(self, ops: tuple[str, ...]) -> float:
        if ops not in self.cache:
            self.cache[ops] = float(self.fitness(Genotype(self.space.name, ops)))
        return self.cache[ops]


def _draw_within(make: Callable[[], tuple[str, ...]], latency: Callable[[tuple], float],
                 budget_ms: float, max_resample: int) -> tuple[tuple[str, ...], float, int]:
    """The hard constraint: draw until a subnet fits -> (ops, latency, rejections)."""
    for rejected in range(max_resample):
        ops = make()
        ms = latency(ops)
        if ms <= budget_ms:
            return ops, ms, rejected
    raise SearchBudgetError(f"no subnet within {budget_ms:.3f} ms in {max_resample} draws; "
                            "raise the budget")


def evolve(space: SearchSpace, *, fitness: Callable[[Genotype], float],
           latency_ms: Callable[[Genotype], float], budget_ms: float,
           config: EvolutionConfig = EvolutionConfig(), seed: int = 0) -> StrategyResult:
    """Evolution under a hard latency budget (see the module docstring)."""
    rng = random.Random(seed)
    score = _Scorer(space, fitness)
    latency = lambda ops: float(latency_ms(Genotype(space.name, ops)))  # noqa: E731
    choices = [spec.ops for spec in space.layers]
    rejections = 0

    def random_ops() -> tuple[str, ...]:
        return tuple(rng.choice(ops) for ops in choices)

    def mutate(parent: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(rng.choice(ops) if rng.random() < config.mutate_prob else op
                     for op, ops in zip(parent, choices))

    def crossover(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(rng.choice(pair) for pair in zip(a, b))

    population = []
    for _ in range(config.population):
        ops, ms, rejected = _draw_within(random_ops, latency, budget_ms, config.max_resample)
        rejections += rejected
        population.append(Candidate(ops, score(ops), ms))
    history = []
    num_parents = config.num_parents
    num_mutants = round(config.mutation_frac * config.population)
    for generation in range(config.generations):
        population.sort(key=lambda c: c.fitness, reverse=True)
        rejected_now = 0
        history.append({"generation": generation, "best": population[0].fitness,
                        "mean": sum(c.fitness for c in population) / len(population),
                        "population": [[list(c.ops), c.fitness, c.latency_ms]
                                       for c in population]})
        if generation == config.generations - 1:
            break
        parents = population[:num_parents]
        children = []
        for i in range(config.population - num_parents):
            if i < num_mutants:
                make = lambda: mutate(rng.choice(parents).ops)  # noqa: E731
            else:
                make = lambda: crossover(rng.choice(parents).ops, rng.choice(parents).ops)  # noqa: E731
            ops, ms, rejected = _draw_within(make, latency, budget_ms, config.max_resample)
            rejected_now += rejected
            children.append(Candidate(ops, score(ops), ms))
        rejections += rejected_now
        history[-1]["rejected"] = rejected_now
        population = parents + children
    best = max(population, key=lambda c: c.fitness)
    return StrategyResult("evolution", best, evaluations=len(score.cache), rejections=rejections,
                          generations=history)


def random_search(space: SearchSpace, *, fitness: Callable[[Genotype], float],
                  latency_ms: Callable[[Genotype], float], budget_ms: float, evaluations: int,
                  seed: int = 0, max_resample: int = 500) -> StrategyResult:
    """The best of ``evaluations`` distinct random subnets within the budget."""
    rng = random.Random(seed)
    score = _Scorer(space, fitness)
    latency = lambda ops: float(latency_ms(Genotype(space.name, ops)))  # noqa: E731
    choices = [spec.ops for spec in space.layers]
    seen: list[Candidate] = []
    rejections = 0
    draws = 0
    while len(score.cache) < evaluations:
        ops, ms, rejected = _draw_within(lambda: tuple(rng.choice(o) for o in choices), latency,
                                         budget_ms, max_resample)
        rejections += rejected
        draws += 1
        if ops in score.cache:
            if draws > 50 * evaluations:
                raise SearchBudgetError(f"fewer than {evaluations} distinct subnets fit "
                                        f"{budget_ms:.3f} ms")
            continue
        seen.append(Candidate(ops, score(ops), ms))
    best = max(seen, key=lambda c: c.fitness)
    summary = {"generation": 0, "best": best.fitness,
               "mean": sum(c.fitness for c in seen) / len(seen), "rejected": rejections,
               "population": [[list(c.ops), c.fitness, c.latency_ms] for c in seen]}
    return StrategyResult("random", best, evaluations=len(score.cache), rejections=rejections,
                          generations=[summary])

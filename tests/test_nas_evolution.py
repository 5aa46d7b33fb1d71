"""Evolution and random search on one super-net, under the hard latency budget."""
import pytest

from segnas_lite.nas import get_space
from segnas_lite.nas.evolution import EvolutionConfig, SearchBudgetError, evolve, random_search

SPACE = get_space("seed")


def _latency(genotype):  # a made-up additive latency: later ops of each layer cost more
    return sum(spec.ops.index(op) for spec, op in zip(SPACE.layers, genotype.ops)) * 0.1 + 1.0


def _fitness(genotype):  # a made-up fitness that prefers the last ops but has a twist
    return sum((spec.ops.index(op) * 3 % len(spec.ops)) for spec, op in zip(SPACE.layers, genotype.ops))


BUDGET = 1.0 + 0.1 * sum(len(spec.ops) - 1 for spec in SPACE.layers) * 0.4


def test_evolution_never_returns_an_over_budget_child():
    config = EvolutionConfig(population=20, generations=4)
    result = evolve(SPACE, fitness=_fitness, latency_ms=_latency, budget_ms=BUDGET, config=config)
    assert _latency_of(result.best.ops) <= BUDGET
    for generation in result.generations:
        assert all(lat <= BUDGET for _, _, lat in generation["population"])
    assert result.rejections > 0  # the budget is tight enough that some draws were rejected


def _latency_of(ops):
    return sum(spec.ops.index(op) for spec, op in zip(SPACE.layers, ops)) * 0.1 + 1.0


def test_evolution_improves_on_its_first_generation():
    config = EvolutionConfig(population=24, generations=6)
    result = evolve(SPACE, fitness=_fitness, latency_ms=_latency, budget_ms=BUDGET, config=config)
    assert result.generations[-1]["best"] >= result.generations[0]["best"]
    assert result.generations[-1]["mean"] > result.generations[0]["mean"]


def test_random_search_evaluates_as_many_subnets_as_evolution():
    config = EvolutionConfig(population=16, generations=3)
    evo = evolve(SPACE, fitness=_fitness, latency_ms=_latency, budget_ms=BUDGET, config=config)
    rnd = random_search(SPACE, fitness=_fitness, latency_ms=_latency, budget_ms=BUDGET,
                        evaluations=evo.evaluations)
    assert rnd.evaluations == evo.evaluations
    assert all(lat <= BUDGET for _, _, lat in rnd.generations[0]["population"])


def test_an_impossible_budget_is_a_named_error():
    with pytest.raises(SearchBudgetError, match="raise the budget"):
        random_search(SPACE, fitness=_fitness, latency_ms=_latency, budget_ms=0.5, evaluations=3,
                      max_resample=20)

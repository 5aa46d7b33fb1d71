"""Training a super-net that ranks, through the real search loop, and the three search strategies.

The warm-up options (strict fairness, the sandwich, in-place distillation) must change which paths
a step trains; evolution and random search must run no alpha step, score subnets on the held-out
part of the TRAIN split, keep the budget and write the same files as the gradient search. The
latency table is the hand-made one of test_nas_search (nothing is timed).
"""
import json
from collections import Counter

import pytest
import torch

from segnas_lite.deploy.target import Target
from segnas_lite.nas import Genotype, tiny_space
from segnas_lite.nas import run as run_module
from segnas_lite.nas.config import SearchConfig, SearchConfigError
from segnas_lite.nas.derive import closed_loop
from segnas_lite.nas.evolution import EvolutionConfig
from segnas_lite.nas.history import History
from segnas_lite.nas.run import run_search
from segnas_lite.nas.strategies import ScoredPool, SupernetScore
from test_nas_search import SIZE, Interrupt, fake_table, make_search, same, weights_of

TABLE = fake_table(tiny_space())
BUDGET = 27.0  # halfway between the fastest (15 ms) and the slowest (37 ms) tiny net


def warmup_ops(search):
    return [[tuple(s.ops) for s in w.samples] for w in search.history.weight_steps
            if w.phase == "warmup"]


# --------------------------------------------------------------------------- the warm-up
def test_the_seeds_warmup_trains_one_path_per_step():
    search = make_search(warmup_epochs=1, search_epochs=0, sandwich=0, budget_ms=BUDGET)
    search.run()
    assert all(len(paths) == 1 for paths in warmup_ops(search))
    assert all(w.path_losses is None for w in search.history.weight_steps)


def test_sandwich_trains_slowest_fastest_and_n_random_paths_every_step():
    search = make_search(warmup_epochs=1, search_epochs=1, sandwich=2, budget_ms=BUDGET)
    search.run()
    slowest, fastest = TABLE.slowest()[0].ops, TABLE.fastest()[0].ops
    steps = [w for w in search.history.weight_steps if w.phase == "warmup"]
    assert len(steps) == 3
    for w in steps:
        assert [tuple(s.ops) for s in w.samples[:2]] == [slowest, fastest]
        assert len(w.samples) == 4 and all(s.accepted for s in w.samples)
        assert len(w.path_losses) == 4 and w.loss == pytest.approx(sum(w.path_losses) / 4)
    randoms = {tuple(s.ops) for w in steps for s in w.samples[2:]}
    assert len(randoms) > 1  # the random paths are drawn anew
    assert len(search.history.alpha_steps) == 3  # the gradient search goes on as before


def test_inplace_distillation_changes_what_the_other_paths_learn_from():
    plain = make_search(warmup_epochs=1, search_epochs=0, sandwich=1, inplace_distill=False,
                        budget_ms=BUDGET)
    taught = make_search(warmup_epochs=1, search_epochs=0, sandwich=1, inplace_distill=True,
                         budget_ms=BUDGET)
    plain.run()
    taught.run()
    first, second = plain.history.weight_steps[0], taught.history.weight_steps[0]
    assert [s.ops for s in first.samples] == [s.ops for s in second.samples]
    assert first.path_losses[0] == pytest.approx(second.path_losses[0])  # the teacher: labels
    assert first.path_losses[1:] != pytest.approx(second.path_losses[1:])  # students: its output
    assert not same(weights_of(plain), weights_of(taught))


def _check_cycles(paths_per_step, cycle_length):
    space = tiny_space()
    assert len(paths_per_step) % cycle_length == 0
    for start in range(0, len(paths_per_step), cycle_length):
        cycle = paths_per_step[start:start + cycle_length]
        for layer, spec in enumerate(space.layers):
            counts = Counter(ops[layer] for ops in cycle)
            if len(spec.ops) == cycle_length:
                assert counts == Counter({op: 1 for op in spec.ops}), (start, layer)
            else:
                assert set(counts) == set(spec.ops), (start, layer)


def test_strict_fair_warmup_trains_every_op_once_per_cycle_across_epochs():
    # the tiny space's longest layer has 4 ops: 8 steps in epochs of 2 = 2 cycles of 4
    settings = dict(warmup_epochs=4, search_epochs=0, steps_per_epoch=2, budget_ms=BUDGET)
    search = make_search(warmup_sampling="strict_fair", **settings)
    search.run()
    paths = [step[0] for step in warmup_ops(search)]
    assert len(paths) == 8
    _check_cycles(paths, 4)
    fair = make_search(**settings)
    fair.run()
    with pytest.raises(AssertionError):  # uniform draws do not cover every op in every cycle
        _check_cycles([step[0] for step in warmup_ops(fair)], 4)


def test_strict_fair_sandwich_draws_its_random_paths_from_the_cycle():
    search = make_search(warmup_epochs=2, search_epochs=0, steps_per_epoch=2,
                         warmup_sampling="strict_fair", sandwich=2, budget_ms=BUDGET)
    search.run()
    randoms = [ops for step in warmup_ops(search) for ops in step[2:]]
    assert len(randoms) == 8  # two per step: a cycle spans two steps
    _check_cycles(randoms, 4)


def test_a_resumed_strict_fair_search_continues_its_cycle(tmp_path):
    settings = dict(warmup_epochs=3, search_epochs=0, steps_per_epoch=2,
                    warmup_sampling="strict_fair", budget_ms=BUDGET)
    full = make_search(tmp_path / "full", **settings)
    full.run()

    def stop(search, summary):
        if summary.epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        make_search(tmp_path / "cut", on_epoch_end=stop, **settings).run()
    resumed = make_search(tmp_path / "cut", net_seed=123, **settings)
    resumed.run(resume=True)
    assert warmup_ops(full) == warmup_ops(resumed)  # epoch 2 starts mid-cycle: state restored
    assert same(weights_of(full), weights_of(resumed))


# --------------------------------------------------------------------------- settings
def test_new_settings_round_trip_and_refuse_what_cannot_work():
    config = SearchConfig(warmup_sampling="strict_fair", sandwich=2, inplace_distill=True,
                          bn_recalibration=16, strategy="evolution", evaluations=7,
                          evolution=EvolutionConfig(population=8, generations=3, mutate_prob=0.2))
    assert SearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.to_dict()["evolution"]["population"] == 8
    assert (config.alpha_epochs, config.total_epochs) == (0, config.warmup_epochs)
    assert SearchConfig().total_epochs == SearchConfig().warmup_epochs + SearchConfig().search_epochs
    evolution = EvolutionConfig(population=8, generations=3)  # 2 parents, 6 children a generation
    assert evolution.max_evaluations == 8 + 2 * 6
    assert SearchConfig(evolution=evolution).strategy_evaluations == 20
    assert SearchConfig(evolution=evolution, evaluations=5).strategy_evaluations == 5
    for bad, match in ((dict(sandwich=0, inplace_distill=True), "needs the sandwich"),
                       (dict(sandwich=1, warmup_sampling="constrained"), "constrained"),
                       (dict(sandwich=1, distill_weight=0.5), "in place"),
                       (dict(strategy="darts"), "strategy"),
                       (dict(warmup_sampling="greedy"), "warmup_sampling"),
                       (dict(sandwich=-1), ">= 0"), (dict(evaluations=0), "evaluations"),
                       (dict(evolution={"population": 8}), "EvolutionConfig")):
        with pytest.raises(SearchConfigError, match=match):
            SearchConfig(**bad)


def test_the_default_warm_up_is_the_sandwich_where_it_can_run():
    """The rank study's best warm-up by default; the seed's single path where a sandwich cannot run
    (a constrained warm-up trains only what fits; an external teacher replaces in-place
    distillation), and in-place distillation follows the sandwich unless set."""
    default = SearchConfig()
    assert (default.sandwich, default.inplace_distill, default.bn_recalibration) == (2, True, 256)
    one_path = SearchConfig(sandwich=0)
    assert (one_path.sandwich, one_path.inplace_distill) == (0, False)
    for alone in (dict(warmup_sampling="constrained"), dict(distill_weight=0.5)):
        config = SearchConfig(**alone)
        assert (config.sandwich, config.inplace_distill) == (0, False), alone
    assert SearchConfig(sandwich=3, inplace_distill=False).inplace_distill is False
    assert SearchConfig.from_dict(default.to_dict()) == default  # resolved values are saved


# --------------------------------------------------------------------------- strategies
def test_the_score_uses_held_out_training_images_and_weight_split_calibration():
    search = make_search(warmup_epochs=0, search_epochs=0, bn_recalibration=8, budget_ms=BUDGET)
    score = SupernetScore.of_search(search)
    images, _ = score.held_out.tensors
    assert len(images) == search.arch_batches * search.config.batch_size
    for i in range(len(images)):  # the alpha split of the TRAIN data, in order
        assert torch.equal(images[i], search.arch_set[i][0])
    calibration = torch.cat(score.calibration)
    assert len(calibration) == 8
    weight_images = torch.stack([search.weight_set[i][0] for i in range(len(search.weight_set))])
    for image in calibration:  # from the weight split only
        assert (weight_images == image).flatten(1).all(1).any()
    genotype = TABLE.fastest()[0]
    assert 0.0 <= score(genotype) <= 1.0 and genotype.ops in score.cache
    assert SupernetScore.of_search(make_search(bn_recalibration=0, budget_ms=BUDGET)).calibration is None


def test_the_closed_loop_takes_the_next_fittest_subnet_when_the_best_measures_over_budget():
    ops = [("a",), ("b",), ("c",), ("d",)]
    pool = ScoredPool("s", fitness=dict(zip(ops, [0.9, 0.8, 0.7, 0.1])),
                      predicted_ms=dict(zip(ops, [9.5, 8.5, 6.0, 2.0])))
    assert pool.fittest_within(10.0).ops == ("a",) and pool.fittest_within(1.0).ops == ("d",)
    predicted = lambda g: pool.predicted_ms[g.ops]  # noqa: E731
    loop = closed_loop(pool.fittest_within, predicted, 10.0, fastest_ms=pool.fastest_ms,
                       measure=lambda g: 1.2 * predicted(g))  # the machine is 20% slower
    # a measures 11.4 ms: the target becomes 9.5 * 10 / 11.4 = 8.3 ms, below b (which would
    # measure 10.2 ms too), so the next try is c, the fittest predicted within it
    assert [a["ops"] for a in loop.attempts] == [["a"], ["c"]]
    assert loop.within_budget and loop.genotype.ops == ("c",)


def test_a_strategy_search_measures_its_choice_within_the_budget(tmp_path):
    slower = lambda g: 1.2 * TABLE.predict(g)  # noqa: E731
    search = make_search(tmp_path, warmup_epochs=1, search_epochs=2, steps_per_epoch=1,
                         strategy="random", evaluations=8, measure_child=True,
                         child_latency_fn=slower, budget_ms=BUDGET)
    result = search.run()
    assert result.history.alpha_steps == [] and len(result.history.epochs) == 1  # warm-up only
    assert result.within_budget and slower(result.genotype_budget) <= BUDGET
    scored = {tuple(ops): fit for ops, fit, _ in result.history.strategy["generations"][0]
              ["population"]}
    assert len(scored) == 8 and result.history.strategy["evaluations"] == 8
    target = result.latency["derive_attempts"][-1]["target_ms"]
    best = max(fit for ops, fit in scored.items()
               if TABLE.predict(Genotype("tiny", ops)) <= target)
    assert scored[result.genotype_budget.ops] == best
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategy"] == "random" and summary["evaluations"] == 8
    assert summary["supernet_miou"] == pytest.approx(scored[result.genotype_budget.ops])


def test_evolution_keeps_its_generations_and_writes_a_genotype_within_budget(tmp_path):
    search = make_search(tmp_path, warmup_epochs=1, steps_per_epoch=1, strategy="evolution",
                         evolution=EvolutionConfig(population=4, generations=2), budget_ms=BUDGET)
    result = search.run()
    genotype = Genotype.load(tmp_path / "genotype.json")
    assert genotype == result.genotype_budget and TABLE.predict(genotype) <= BUDGET
    record = History.load(tmp_path / "history.json").strategy
    assert [g["generation"] for g in record["generations"]] == [0, 1]
    assert record["generations"][0]["rejected"] >= 0 and record["rejections"] > 0
    assert all(len(g["population"]) == 4 for g in record["generations"])
    assert 4 <= record["evaluations"] <= search.config.evolution.max_evaluations == 6
    assert "evolution: " in result.to_text() and "fittest genotype" in result.to_text()


@pytest.fixture
def fake_latency(monkeypatch):
    monkeypatch.setattr(run_module, "latency_table", lambda space, config, **_: fake_table(space))


def _strategy_config(strategy):
    return SearchConfig.quick(image_size=SIZE, quiet=True, steps_per_epoch=1, batch_size=4,
                              warmup_epochs=1, target=Target(threads=1, image_size=SIZE),
                              budget_ms=BUDGET, measure_child=False, bn_recalibration=4,
                              strategy=strategy,
                              evolution=EvolutionConfig(population=4, generations=3))


def test_evolution_and_random_search_write_the_files_within_budget(tmp_path, fake_latency):
    found = {}
    for strategy in ("evolution", "random"):
        config = _strategy_config(strategy)
        out = tmp_path / strategy
        result = run_search("tiny", "synthetic", config, out_dir=out)
        genotype = Genotype.load(out / "genotype.json")
        assert genotype == result.genotype_budget and TABLE.predict(genotype) <= BUDGET
        history = History.load(out / "history.json")
        assert history.alpha_steps == [] and history.strategy["strategy"] == strategy
        for generation in history.strategy["generations"]:
            assert "rejected" in generation or generation is history.strategy["generations"][-1]
            assert all(ms <= BUDGET for _, _, ms in generation["population"])
        summary = json.loads((out / "summary.json").read_text())
        assert summary["strategy"] == strategy and 0.0 <= summary["supernet_miou"] <= 1.0
        assert SearchConfig.from_dict(history.config) == config
        found[strategy] = history.strategy
    assert len(found["evolution"]["generations"]) == 3
    assert found["evolution"]["generations"][0]["population"][0][1] == pytest.approx(
        found["evolution"]["generations"][0]["best"])
    # the same cost on both sides: random scores as many subnets as evolution can at most
    limit = _strategy_config("random").strategy_evaluations
    assert limit == 4 + 2 * (4 - 2)
    assert found["random"]["evaluations"] == limit >= found["evolution"]["evaluations"]
    again = run_search("tiny", "synthetic", _strategy_config("random"), out_dir=tmp_path / "random",
                       resume=True)
    assert again.genotype_budget == Genotype.load(tmp_path / "random" / "genotype.json")

"""The search loop: hard constraint, decoupled vs interleaved phases, alpha updates, History, resume.

Latencies come from a hand-made table (op i of a layer costs 1 + 2 i ms, fixed parts 10 ms) so the
tests never time anything; the tiny space runs at 48x48 px.
"""
import json
import math

import pytest
import torch

from segnas_lite.data import SyntheticPortraits, split_indices
from segnas_lite.deploy.target import Target
from segnas_lite.nas import Genotype, InfeasibleBudgetError, SegSuperNet, tiny_space
from segnas_lite.nas.config import SearchConfig, SearchConfigError
from segnas_lite.nas.constraint import default_budget, rejection_bias, sample_under_budget
from segnas_lite.nas.history import History
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.run import run_search
from segnas_lite.nas.search import ProxylessSearch, split_for_search
from segnas_lite.runio import RunDirectoryError

SIZE = 48


def fake_table(space):
    ms = [[1.0 + 2.0 * i for i in range(len(spec.ops))] for spec in space.layers]
    return LatencyTable(space.name, [list(s.ops) for s in space.layers], ms, 10.0, {"fake": True})


def make_search(tmp_path=None, *, net_seed=0, on_epoch_end=None, latency_fn=None,
                child_latency_fn=None, teacher=None, **overrides):
    # sandwich=0: the seed's single-path warm-up, unless a test asks for the sandwich
    settings = dict(image_size=SIZE, batch_size=4, warmup_epochs=1, search_epochs=1,
                    steps_per_epoch=3, budget_ms=100.0, measure_child=False, quiet=True,
                    target=Target(threads=1, image_size=SIZE), sandwich=0)
    settings.update(overrides)
    config = SearchConfig(**settings)
    torch.manual_seed(net_seed)
    space = tiny_space()
    net = SegSuperNet(space, num_classes=2, estimator=config.estimator)
    data = SyntheticPortraits(length=32, image_size=SIZE, seed=0)
    return ProxylessSearch(net, fake_table(space), data, config=config, num_classes=2,
                           out_dir=tmp_path, on_epoch_end=on_epoch_end, latency_fn=latency_fn,
                           child_latency_fn=child_latency_fn, teacher=teacher)


def weights_of(search):
    return [p.detach().clone() for p in search.net.weight_parameters()]


def alphas_of(search):
    return [a.detach().clone() for a in search.net.arch_parameters()]


def same(xs, ys):
    return all(torch.equal(x, y) for x, y in zip(xs, ys))


# --------------------------------------------------------------------------- hard constraint
def test_hard_constraint_rejects_over_budget_samples_and_records_every_try():
    table = fake_table(tiny_space())
    budget = 0.5 * (table.fastest()[1] + table.slowest()[1])  # 27 ms: about half the samples fail
    search = make_search(budget_ms=budget, warmup_sampling="constrained")
    search.run()
    tries = search.history.samples()
    assert {s.phase for s in tries} == {"warmup", "alpha"}
    rejected = [s for s in tries if not s.accepted]
    assert rejected, "a budget between fastest and slowest must reject some samples"
    assert all(s.latency_ms <= budget for s in tries if s.accepted)
    assert all(s.latency_ms > budget for s in rejected)
    for s in tries:  # the recorded latency is the table's prediction of the recorded ops
        assert s.latency_ms == pytest.approx(table.predict(Genotype("tiny", tuple(s.ops))))
    for record in [*search.history.weight_steps, *search.history.alpha_steps]:
        assert [s.accepted for s in record.samples] == [False] * (len(record.samples) - 1) + [True]
    rates = search.history.rejection_rates("alpha")
    assert len(rates) == 3 and all(0 <= r < 1 for r in rates)
    summary = search.history.epochs[0]
    assert summary.rejected == sum(not s.accepted for s in search.history.samples("warmup"))


def test_fair_warmup_trains_paths_over_budget_and_alpha_steps_still_reject():
    table = fake_table(tiny_space())
    budget = table.fastest()[1] + 0.2 * (table.slowest()[1] - table.fastest()[1])
    search = make_search(budget_ms=budget, warmup_sampling="fair", steps_per_epoch=8)
    search.run()
    warmup = search.history.samples("warmup")
    assert len(warmup) == len(search.history.weight_steps)  # one draw per step: nothing resampled
    assert all(s.accepted for s in warmup)
    assert any(s.latency_ms > budget for s in warmup)  # slow paths get trained too
    alpha = search.history.samples("alpha")
    assert any(not s.accepted for s in alpha) and all(s.latency_ms <= budget
                                                        for s in alpha if s.accepted)
    assert search.history.epochs[0].rejected == 0


def test_default_budget_is_a_quantile_that_rejects_its_share_of_uniform_samples():
    table = fake_table(tiny_space())
    search = make_search(budget_ms=None, budget_quantile=0.3)
    assert search.budget_ms == pytest.approx(default_budget(table, quantile=0.3))
    bias = rejection_bias([[1 / len(r)] * len(r) for r in table.ms], table, search.budget_ms,
                          num_samples=4000, seed=1)
    assert 0.2 <= bias.acceptance_rate <= 0.4  # about 30% fit, 70% are rejected
    assert default_budget(table, quantile=0.3) < default_budget(table, quantile=0.6)
    with pytest.raises(ValueError, match="quantile"):
        default_budget(table, quantile=1.0)


def test_alpha_entropy_and_argmax_stability_are_recorded_per_epoch():
    search = make_search(arch_lr=0.2, search_epochs=2, steps_per_epoch=4)
    search.run()
    warmup, first, second = search.history.epochs
    assert warmup.alpha_entropy == pytest.approx(1.0) and warmup.argmax_changes == 0
    assert first.alpha_entropy < 1.0 and 0 < first.max_prob <= 1
    assert second.argmax_changes is not None
    curve = search.history.entropy_curve()
    assert len(curve) == len(search.history.alpha_steps) + 1 and curve[0] == pytest.approx(1.0)
    agreement = search.history.argmax_agreement_curve()
    assert agreement[-1] == 1.0 and all(0.0 <= a <= 1.0 for a in agreement)
    again = History.from_json(search.history.to_json())
    assert again.epochs[1].alpha_entropy == first.alpha_entropy


def test_distillation_needs_a_teacher_and_changes_the_warmup_loss():
    with pytest.raises(Exception, match="needs a teacher"):
        make_search(distill_weight=0.5)
    torch.manual_seed(0)
    teacher = SegSuperNet(tiny_space(), num_classes=2)
    teacher.set_mode("fixed")
    plain = make_search(warmup_epochs=1, search_epochs=0)
    plain.run()
    taught = make_search(warmup_epochs=1, search_epochs=0, distill_weight=1.0, teacher=teacher)
    taught.run()
    losses = [w.loss for w in plain.history.weight_steps], [w.loss for w in taught.history.weight_steps]
    assert losses[0][0] < losses[1][0]  # the same first batch and path, plus a KL term >= 0


def test_infeasible_budget_is_refused_up_front_naming_the_fastest_latency():
    search = make_search(budget_ms=14.0)  # fastest: 10 + 5 * 1 ms = 15 ms
    with pytest.raises(InfeasibleBudgetError, match="15.000 ms"):
        search.run()


def test_resampling_gives_up_after_max_resample_tries():
    draws = iter(range(100))
    with pytest.raises(InfeasibleBudgetError, match="fastest architecture .* 3.000 ms"):
        sample_under_budget(lambda: next(draws), lambda g: 10.0 + g, 5.0, max_resample=4,
                            fastest_ms=3.0)
    assert next(draws) == 4  # exactly max_resample draws were made
    tries = sample_under_budget(lambda: next(draws), lambda g: 12.0 - g, 5.0, max_resample=10,
                                fastest_ms=3.0)
    assert [ok for _, _, ok in tries] == [False, False, True]  # 12-5, 12-6 > 5; 12-7 = 5 fits


# --------------------------------------------------------------------------- schedules
def test_decoupled_weights_frozen_in_alpha_phase_and_alphas_fixed_in_warmup():
    snap = {}

    def after_epoch(search, summary):
        snap[summary.epoch] = (weights_of(search), alphas_of(search))

    search = make_search(on_epoch_end=after_epoch, steps_per_epoch=4)
    start_w, start_a = weights_of(search), alphas_of(search)
    search.run()
    warm_w, warm_a = snap[1]
    end_w, end_a = snap[2]
    assert not same(start_w, warm_w), "warm-up must train the op weights"
    assert same(start_a, warm_a), "warm-up must not touch alpha"
    assert same(warm_w, end_w), "the decoupled alpha phase must not change any weight"
    assert not same(warm_a, end_a), "alpha steps must move alpha"
    assert all(w.phase == "warmup" for w in search.history.weight_steps)
    assert len(search.history.alpha_steps) == 4


def test_interleaved_schedule_updates_weights_and_alphas():
    snap = {}
    search = make_search(schedule="interleaved", arch_every=2, steps_per_epoch=4,
                         on_epoch_end=lambda s, e: snap.setdefault(e.epoch, (weights_of(s),
                                                                              alphas_of(s))))
    search.run()
    warm_w, warm_a = snap[1]
    end_w, end_a = snap[2]
    assert not same(warm_w, end_w) and not same(warm_a, end_a)
    phases = [w.phase for w in search.history.weight_steps]
    assert phases == ["warmup"] * 4 + ["weights"] * 4
    assert len(search.history.alpha_steps) == 2  # one alpha step every 2 weight steps


def test_strong_latency_term_moves_probability_to_the_fastest_op():
    search = make_search(warmup_epochs=0, search_epochs=2, steps_per_epoch=4,
                         latency_form="additive", latency_lam=50.0, arch_lr=0.05)
    search.run()
    first = search.history.alpha_matrix(None)
    last = search.history.alpha_matrix(-1)
    assert (last[:, 0] > first[:, 0]).all(), "op 0 is the fastest in every layer of the fake table"
    curve = search.history.expected_latency_curve()
    assert curve[-1] < curve[0]


def test_two_path_estimator_keeps_unsampled_probabilities_through_the_loop():
    search = make_search(warmup_epochs=0, search_epochs=1, steps_per_epoch=4, estimator="two",
                         arch_lr=0.05)
    search.run()
    h = search.history
    before = [torch.softmax(torch.tensor(a), 0) for a in h.alpha_init]
    moved = False
    for step in h.alpha_steps:
        after = [torch.tensor(p) for p in step.probs]
        for names, pair, p0, p1 in zip(h.op_names, step.pairs, before, after):
            others = [i for i, n in enumerate(names) if n not in pair]
            assert torch.allclose(p0[others], p1[others], atol=1e-6)
            moved |= not torch.allclose(p0, p1, atol=1e-7)
        before = after
    assert moved, "the sampled pairs must move"


# --------------------------------------------------------------------------- history, resume, outputs
def test_history_json_round_trip_and_helpers(tmp_path):
    search = make_search(estimator="two", budget_ms=27.0, warmup_sampling="constrained")
    search.run()
    h = search.history
    assert History.from_json(h.to_json()) == h
    h.save(tmp_path / "h.json")
    assert History.load(tmp_path / "h.json") == h
    assert h.alpha_matrix(0).shape == (5, 4)
    assert math.isnan(h.alpha_matrix(0)[0, 3])  # layer 0 has 3 ops
    assert len(h.expected_latency_curve()) == len(h.rejection_rates()) == 3
    assert len(h.rejection_rates("warmup")) == 3
    g = h.derived_genotype(-1)
    search.space.validate(g)
    accepted = h.sampled_latencies(accepted=True)
    assert len(accepted) == 6 and max(accepted) <= 27.0


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resumed_search_ends_like_an_uninterrupted_one(tmp_path, stop_after):
    settings = dict(warmup_epochs=2, search_epochs=2, steps_per_epoch=2, budget_ms=27.0)
    full = make_search(tmp_path / "full", **settings)
    full.run()

    def stop(search, summary):
        if summary.epoch == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        make_search(tmp_path / "cut", on_epoch_end=stop, **settings).run()
    resumed = make_search(tmp_path / "cut", net_seed=123, **settings)  # other init: all restored
    resumed.run(resume=True)
    assert same(alphas_of(full), alphas_of(resumed))
    assert same(weights_of(full), weights_of(resumed))
    strip = lambda h: [(s.ops, s.accepted) for s in h.samples()]  # noqa: E731
    assert strip(full.history) == strip(resumed.history)


def test_outputs_are_written_and_an_existing_search_is_not_overwritten(tmp_path):
    search = make_search(tmp_path, budget_ms=27.0, measure_child=True)
    result = search.run()
    for name in ("genotype.json", "genotype_argmax.json", "history.json", "latency_table.json",
                 "search_checkpoint.pt", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert Genotype.load(tmp_path / "genotype.json") == result.genotype_budget
    assert result.predicted_budget_ms <= 27.0 and result.measured_budget_ms > 0
    assert History.load(tmp_path / "history.json") == result.history
    with pytest.raises(RunDirectoryError, match="overwrite"):
        make_search(tmp_path, budget_ms=27.0).run()
    with pytest.raises(RunDirectoryError, match="already holds a search"):  # one error for all runs
        make_search(tmp_path, budget_ms=27.0).run()
    make_search(tmp_path, budget_ms=27.0).run(overwrite=True)


def test_default_budget_lets_about_half_of_uniform_samples_through():
    table = fake_table(tiny_space())
    budget = default_budget(table)
    assert table.fastest()[1] < budget < table.slowest()[1]
    search = make_search(budget_ms=None)
    assert search.budget_ms == budget and search.history.budget_ms == budget
    uniform = [[1.0 / len(row)] * len(row) for row in table.ms]
    assert 0.3 < rejection_bias(uniform, table, budget, num_samples=2000).acceptance_rate < 0.8


def test_held_out_split_is_disjoint_and_deterministic():
    w, a = split_for_search(37, arch_fraction=0.5, seed=3)
    assert not set(w) & set(a) and sorted(w + a) == list(range(37))
    assert (w, a) == split_for_search(37, arch_fraction=0.5, seed=3)
    assert (w, a) == split_indices(37, val_fraction=0.5, seed=3)  # one way to cut a data set
    search = make_search()
    assert not set(search.weight_idx) & set(search.arch_idx)
    assert len(search.weight_idx) + len(search.arch_idx) == 32


def test_rejection_bias_is_zero_without_rejections_and_positive_with_them():
    space = tiny_space()
    table = fake_table(space)
    uniform = [torch.full((len(s.ops),), 1.0 / len(s.ops)) for s in space.layers]
    loose = rejection_bias(uniform, table, 1000.0, num_samples=2000)
    assert loose.acceptance_rate == 1.0 and max(loose.tv_per_layer) < 0.05
    tight = rejection_bias(uniform, table, 22.0, num_samples=2000)
    assert 0 < tight.acceptance_rate < 1 and min(tight.tv_per_layer) > 0.05
    assert tight.mean_latency_accepted_ms < tight.mean_latency_all_ms
    # accepted samples favour fast ops: op 0 is over-represented in every layer
    assert all(f[0] > p[0] for f, p in zip(tight.accepted_freq, tight.probs))


def test_measured_constraint_uses_cached_end_to_end_latencies():
    search = make_search(constraint="measured", warmup_epochs=1, search_epochs=0,
                         steps_per_epoch=2, budget_ms=1e6, warmup_sampling="constrained")
    search.run()
    cache = search.latency_fn.cache
    tries = search.history.samples()
    assert tries and all(cache[tuple(s.ops)] == s.latency_ms for s in tries)


def test_run_search_end_to_end_on_the_tiny_space(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    # the default target (OpenVINO, calibrated); a budget far above any tiny net, so the closed
    # loop's measurement fits even on a loaded machine
    config = SearchConfig.quick(image_size=SIZE, quiet=True, steps_per_epoch=2, batch_size=4,
                                target=Target(threads=1, image_size=SIZE), budget_ms=1000.0)
    result = run_search("tiny", "synthetic", config, out_dir=tmp_path / "run")
    assert result.predicted_budget_ms <= result.budget_ms
    assert (tmp_path / "run" / "genotype.json").is_file()
    assert SearchConfig.from_dict(result.history.config) == config  # the target nested in it
    again = run_search("tiny", "synthetic", config, out_dir=tmp_path / "run", resume=True)
    assert again.genotype_budget == result.genotype_budget


def test_quick_settings_and_the_config_round_trip(tmp_path):
    quick = SearchConfig.quick()
    assert (quick.image_size, quick.target.image_size, quick.steps_per_epoch, quick.arch_lr,
            quick.num_fit) == (128, 128, 10, 0.1, 16)
    assert quick.train_length == 8 * 10 * 2 + 8  # each half of the data: steps_per_epoch batches
    assert SearchConfig.quick(batch_size=4).train_length == 4 * 10 * 2 + 8
    assert SearchConfig.quick(image_size=64).target.image_size == 64
    config = SearchConfig(target=Target(backend="torch", threads=1, image_size=96),
                          arch_betas=[0.0, 0.9])
    data = config.to_dict()
    assert data["target"] == {"backend": "torch", "precision": "f32", "threads": 1, "image_size": 96}
    assert SearchConfig.from_dict(json.loads(json.dumps(data))) == config
    with pytest.raises(SearchConfigError, match="Target"):
        SearchConfig(target="openvino")
    with pytest.raises(SearchConfigError, match="not both"):
        run_search("tiny", "synthetic", SearchConfig(budget_ms=5.0), out_dir=tmp_path,
                   budget_frac=0.5)


def test_derived_child_is_measured_within_budget_and_summarised(tmp_path):
    table = fake_table(tiny_space())
    budget = (table.fastest()[1] + table.slowest()[1]) / 2
    slower = lambda g: 1.2 * table.predict(g)  # noqa: E731  the "machine" is 20% slower than the table
    result = make_search(tmp_path, budget_ms=budget, measure_child=True,
                         child_latency_fn=slower).run()
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("budget_ms", "predicted_ms", "measured_ms", "backend", "precision",
                "latency_size", "rejection_rate"):
        assert key in summary, key
    assert summary["measured_ms"] <= summary["budget_ms"] == pytest.approx(budget)
    assert summary["within_budget"] and result.within_budget
    assert summary["backend"] == "openvino" and summary["latency_size"] == SIZE
    assert len(summary["derive_attempts"]) >= 1
    assert Genotype.load(tmp_path / "genotype.json") == result.genotype_budget


def test_a_budget_no_derived_child_meets_is_reported_not_hidden(tmp_path):
    table = fake_table(tiny_space())
    budget = (table.fastest()[1] + table.slowest()[1]) / 2
    with pytest.warns(UserWarning, match="no derived architecture measured within"):
        result = make_search(tmp_path, budget_ms=budget, measure_child=True,
                             child_latency_fn=lambda g: 10 * budget).run()
    assert result.within_budget is False
    assert not (tmp_path / "genotype.json").exists()
    assert (tmp_path / "genotype_over_budget.json").is_file()
    assert "genotype_over_budget.json" in result.to_text()
    assert json.loads((tmp_path / "summary.json").read_text())["within_budget"] is False

"""The answer keys of lessons 04-08 (``lessons/solutions/0[4-8]_*.py``): every exercise runs in
quick mode, and what its answer says holds.

Each solution file is loaded by its path (the names start with a digit). Timings are only checked
to be positive: their values and their order depend on the machine. ``conftest.py`` sets
``SEGNAS_QUICK=1`` and one temporary ``SEGNAS_CACHE`` for the session, so a search, table or
trained model is computed once and shared by the solutions that ask for the same settings.
"""
from __future__ import annotations

import importlib.util
import inspect
import itertools
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

from segnas_lite.nas import SEED_OPS, Genotype, get_space

ROOT = Path(__file__).resolve().parents[1]
STEMS = ("04_search_space", "05_latency", "06_search", "07_derive_compare", "08_openvino")


def load(stem: str):
    """Import ``lessons/solutions/<stem>.py`` as a module."""
    path = ROOT / "lessons" / "solutions" / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"solution_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def s04():
    return load("04_search_space")


@pytest.fixture(scope="module")
def s05():
    return load("05_latency")


@pytest.fixture(scope="module")
def s06():
    return load("06_search")


@pytest.fixture(scope="module")
def s07():
    return load("07_derive_compare")


@pytest.fixture(scope="module")
def s08():
    return load("08_openvino")


def _exercises(markdown: str) -> list[str]:
    """The numbered items under '## Exercises', counted as tests/test_notebooks.py::_exercises."""
    part = markdown.split("## Exercises", 1)[-1].split("\n## ", 1)[0]
    items = re.split(r"\n(?=\d+\. )", "\n" + part.strip())
    return [" ".join(item.split()) for item in items if re.match(r"\d+\. ", item.strip())]


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("stem", STEMS)
def test_every_exercise_of_the_lesson_has_its_function(stem, capsys):
    items = _exercises((ROOT / "lessons" / f"{stem}.md").read_text())
    assert items, f"lesson {stem} lists no exercises"
    module = load(stem)
    found = sorted(int(name.split("_")[1]) for name in vars(module)
                   if re.fullmatch(r"exercise_\d+", name))
    assert found == list(range(1, len(items) + 1)), (stem, found, len(items))
    assert [f.__name__ for f in module.EXERCISES] == [f"exercise_{n}" for n in found]
    for number in found:
        function = getattr(module, f"exercise_{number}")
        quick = inspect.signature(function).parameters["quick"]
        assert quick.kind is inspect.Parameter.KEYWORD_ONLY and quick.default is True
        assert "Answer" in (function.__doc__ or ""), f"{stem} exercise {number}: no answer"
    with pytest.raises(SystemExit):  # main takes --full (argparse prints the help and exits)
        module.main(["--help"])
    assert "--full" in capsys.readouterr().out


# --------------------------------------------------------------------------- lesson 04
def test_04_exercise_1_two_strided_layers(s04):
    result = s04.exercise_1(quick=True)
    shapes = {2: (1, 24, 16, 16), 8: (1, 80, 4, 4)}  # at 64 px
    for layer, shape in shapes.items():
        data = result[f"layer_{layer}"]
        assert data["stride"] == 2 and tuple(data["input_shape"]) == shape
        assert {row["op"] for row in data["rows"]} == set(SEED_OPS)
        assert all(row["latency_ms"] > 0 and row["mflops"] > 0 and row["params"] > 0
                   for row in data["rows"])
        assert data["cheapest_by_latency"] == data["order_by_latency"][0]
        assert sorted(data["order_by_flops"]) == sorted(SEED_OPS)
        assert -1.0 <= data["spearman_flops_vs_latency"] <= 1.0


def test_04_exercise_2_memory_ratio_is_not_seven(s04):
    result = s04.exercise_2(quick=True)
    for config in (result["small"], result["large"]):
        mib = config["mib"]
        assert mib["fixed"] < mib["single"] < mib["all"]  # single also keeps x for the re-runs
        assert abs(config["ratio_all"] - 7.0) > 1e-3
        per_op = config["fixed_mib_per_uniform_genotype"]
        assert per_op[config["lightest_op"]] < per_op[config["heaviest_op"]]
        assert config["ratio_all_vs_lightest_path"] > config["ratio_all_vs_heaviest_path"]
    # the lesson quotes the notebook's quick run (64 px, batch 2): byte counts are deterministic
    assert result["small"]["ratio_all"] == pytest.approx(7.46, abs=0.005)
    assert result["large"]["batch"] > result["small"]["batch"]
    # the weights do not grow with the batch and the image: their share, and the ratio, fall
    assert result["ratio_change"] < 0 and result["large"]["ratio_all"] < 7.0
    for config in (result["small"], result["large"]):
        assert config["weights_mib_sampled_path"] < config["weights_mib_all_candidates"]


def test_04_exercise_3_binary_gates_agree_with_eq4_not_with_darts(s04):
    result = s04.exercise_3(quick=True)
    assert result["binary_equals_by_hand"] is True
    assert result["binary_equals_darts"] is False
    for total in result["sums"].values():
        assert abs(total) < 1e-8 * result["scale"]
    # quadratic loss: the average over the sampled op is the DARTS gradient, not the gradient of
    # the expected loss (the bias of Eq. 4)
    assert result["average_over_sampled_op_equals_darts"] is True
    assert result["average_over_sampled_op_equals_expected_loss_gradient"] is False


def test_04_exercise_4_fixed_parts_dominate_with_cheap_ops(s04):
    result = s04.exercise_4(quick=True)
    for name, per_size in result.items():
        for data in per_size.values():
            assert sum(data["flops_by_part"].values()) == data["total_flops"]
            assert data["fixed_share"] + data["chain_share"] == pytest.approx(1.0)
        assert len({data["params"] for data in per_size.values()}) == 1  # params do not grow
    for size in result["shuffle"]:
        sep, shuffle = result["sep_5x5"][size], result["shuffle"][size]
        assert sep["dominant_part"] == "layers"
        assert shuffle["fixed_share"] > 0.5 > sep["fixed_share"]


def test_04_exercise_5_count_by_hand(s04):
    result = s04.exercise_5(quick=True)
    assert (result["strided_layers"], result["other_layers"]) == (4, 6)
    assert result["ops_in_strided_layers"] == [6] and result["ops_in_other_layers"] == [7]
    assert result["by_hand"] == result["library"] == 6 ** 4 * 7 ** 6 == 152_473_104
    assert result["seed_by_hand"] == result["seed_library"] == 7 ** 10


# --------------------------------------------------------------------------- lesson 05
def test_05_exercise_1_one_thread(s05):
    result = s05.exercise_1(quick=True)
    assert result["threads"] == (1, 2)
    assert set(result["mean_ratio_per_op"]) == set(SEED_OPS)
    assert all(ratio > 0 for ratio in result["mean_ratio_per_op"].values())
    assert len(result["mean_ratio_per_layer"]) == 10 and result["fixed_ratio"] > 0
    assert result["op_that_slows_down_most"] in SEED_OPS


def test_05_exercise_2_zero_op(s05):
    result = s05.exercise_2(quick=True)
    assert result["zero_layers"] == result["residual_layers"] == [1, 3, 4, 6, 7, 9]
    assert all(ms > 0 for ms in result["zero_ms"])
    fastest = Genotype("proxyless", tuple(result["fastest_genotype"]))
    get_space("proxyless").validate(fastest)
    assert result["zeros_in_fastest"] + result["layers_that_run_in_fastest"] == 10
    assert result["fastest_ms"] > result["fixed_ms"] > 0


def test_05_exercise_3_budget_just_above_the_fastest(s05):
    result = s05.exercise_3(quick=True)
    assert result["fastest_ms"] < result["budget_ms"] < result["slowest_ms"]
    assert result["architectures"] == 7 ** 10 and result["fitting_architectures"] >= 1
    exact = result["acceptance_rate_exact"]
    assert exact == result["fitting_architectures"] / 7 ** 10
    assert result["mean_draws_per_accepted_subnet"] == pytest.approx(1 / exact)
    assert result["chance_100_draws_all_rejected"] == pytest.approx((1 - exact) ** 100)
    if result["chance_100_draws_all_rejected"] > 0.999:
        assert result["sample_under_budget"]["raised"] is True
    n = result["num_samples"]
    assert result["acceptance_rate_monte_carlo"] <= exact + 5 * math.sqrt(exact / n) + 2 / n
    # at the looser budget the exact count and the Monte-Carlo rate agree within sampling noise
    assert 0 < result["loose_acceptance_exact"] < 1
    assert abs(result["loose_acceptance_monte_carlo"] - result["loose_acceptance_exact"]) \
        <= 4 * result["loose_standard_error"] + 1e-3


def test_05_exercise_3_exact_count_on_a_small_table(s05):
    from segnas_lite.nas.latency import LatencyTable
    table = LatencyTable("toy", [["a", "b"]] * 4, [[1.0, 2.0]] * 4, fixed_ms=0.5)
    # k slow layers take 4.5 + k ms: 6 ms allows k <= 1, i.e. 1 + 4 of the 16 architectures
    assert s05.count_fitting(table, 6.0) == 5
    assert s05.count_fitting(table, 100.0) == 16


def test_05_exercise_4_bf16_reports_what_ran(s05):
    result = s05.exercise_4(quick=True)
    assert result["ran_precision"]["f32"] == "f32"
    assert result["ran_precision"]["bf16"] in ("bf16", "f32")
    assert result["bf16_runs"] == (result["ran_precision"]["bf16"] == "bf16")
    assert [row["op"] for row in result["rows"]] == list(SEED_OPS)
    assert all(row["f32_ms"] > 0 and row["bf16_ms"] > 0 for row in result["rows"])


def test_05_exercise_5_fewer_fitting_subnets(s05):
    result = s05.exercise_5(quick=True)
    assert result["first_12_are_the_fit_prefix"] is True
    assert result["num_held_out"] == 8
    for key in ("in_place", "calibrated_20", "calibrated_12"):
        assert -1.0 <= result[key]["spearman"] <= 1.0 and result[key]["mape"] >= 0
    for key in ("calibrated_20", "calibrated_12"):
        assert result[key]["lam"] in result["lambdas_tried"] and result[key]["scale"] >= 0


def test_05_exercise_6_toy_example_at_9_ms(s05):
    result = s05.exercise_6(quick=True)
    expected = {"7 ms": (Fraction(1, 2), Fraction(1, 4)), "9 ms": (Fraction(7, 8), Fraction(3, 7))}
    for budget, (acceptance, slow) in expected.items():
        data = result[budget]
        assert data["acceptance_by_hand"] == data["acceptance_closed_form"] == acceptance
        assert data["slow_frequency_by_hand"] == data["slow_frequency_closed_form"] == slow
        assert data["tv_by_hand"] == abs(slow - Fraction(1, 2))
        assert abs(data["acceptance_library"] - acceptance) <= 4 * data["standard_error_acceptance"]
        for freq in data["slow_frequency_library"]:
            assert abs(freq - slow) <= 4 * data["standard_error_slow_frequency"]
    assert result["9 ms"]["tv_by_hand"] == Fraction(1, 14)


# --------------------------------------------------------------------------- lesson 06
def test_06_exercise_1_interleaved_keeps_training_weights(s06):
    result = s06.exercise_1(quick=True)
    decoupled, interleaved = result["decoupled"], result["interleaved"]
    assert decoupled["weight_steps_during_search"] == 0 and decoupled["alpha_steps"] == 20
    assert interleaved["weight_steps_during_search"] == 20
    assert interleaved["alpha_steps"] == 20 // 5  # one alpha step every arch_every weight steps
    for data in (decoupled, interleaved):
        lr = data["arch_lr"]
        # Adam with beta1 = 0: the first step moves every alpha by lr * |g| / (|g| + eps) <= lr
        assert data["first_step_max_abs_dalpha"] <= lr * (1 + 1e-4)
        assert data["first_step_mean_abs_dalpha"] > 0.9 * lr
        assert 0 <= data["final_entropy"] <= 1 and data["search_seconds"] > 0


def test_06_exercise_2_two_ops_per_layer_change(s06):
    result = s06.exercise_2(quick=True)
    assert result["alpha_steps"] == 20
    assert result["most_ops_changed_in_a_layer_step"] <= 2
    assert result["changed_ops_outside_the_pair"] == 0
    assert result["largest_change_of_pair_total"] < 1e-5  # the pair's total probability is kept
    assert result["layer_steps_with_two_changed"] > 0
    assert result["reruns_per_step"] == {"full_v2": 60, "two": 10}
    assert all(seconds > 0 for seconds in result["search_seconds"].values())


def test_06_exercise_3_tighter_budget(s06):
    result = s06.exercise_3(quick=True)
    half, base, tight = result["half_budget"], result["base"], result["quantile_0.2"]
    if half["budget_ms"] < result["fastest_ms"]:
        assert half["infeasible"] is True and "fastest" in half["message"]
    assert result["fastest_ms"] < tight["budget_ms"] < base["budget_ms"]
    # the quantile says which share of uniformly drawn subnets fits at the start of the search
    assert base["acceptance_uniform_p"] == pytest.approx(0.4, abs=0.05)
    assert tight["acceptance_uniform_p"] == pytest.approx(0.2, abs=0.05)
    first, last = tight["expected_latency_first_last"]
    assert first > tight["budget_ms"] and last < first  # the hinge is active and pulls E[LAT] down
    same_p = result["same_p_two_budgets"]
    assert same_p["quantile_0.2"]["acceptance"] < same_p["base"]["acceptance"]
    assert same_p["quantile_0.2"]["mean_tv"] > same_p["base"]["mean_tv"]  # truncates more
    for data in same_p.values():
        assert all(0.0 <= tv <= 1.0 for tv in data["tv_per_layer"])


def test_06_exercise_4_arch_lr_bounds_the_movement(s06):
    result = s06.exercise_4(quick=True)
    assert s06.adam_bound(1.0, 1, 0.999) == pytest.approx(1.0)  # the first step moves by lr
    small, large = result["lr 0.001"], result["lr 0.3"]
    for data in (small, large):
        assert data["max_abs_dalpha"] <= data["bound_max_abs_dalpha"] + 1e-6
    assert small["max_abs_dalpha"] < large["max_abs_dalpha"]
    assert small["max_p"] < 0.2 < large["max_p"]  # 1e-3 leaves p at about 1/7


def test_06_exercise_5_which_form_pulls_inside_the_budget(s06):
    result = s06.exercise_5(quick=True)
    pulls = {form: data["pulls"] for form, data in result["pull_inside_budget"].items()}
    assert pulls == {"mul_log": "down", "additive": "down", "hinge": "nowhere",
                     "target": "up", "none": "nowhere"}
    assert result["pull_inside_budget"]["hinge"]["grad_norm"] == 0.0
    for form in ("mul_log", "hinge"):
        assert 0 <= result[form]["layers_with_cheapest_op"] <= 10
        assert result[form]["argmax_predicted_ms"] > 0


def test_06_exercise_6_the_constraint_filters_but_does_not_pull(s06):
    result = s06.exercise_6(quick=True)
    runs = [data for key, data in result.items() if key.startswith("seed")]
    assert runs
    for data in runs:
        assert data["teacher_fits"] is False
        assert data["rejected_share_last_5"] > data["rejected_share_first_5"]
        assert data["expected_latency_ms"] > result["budget_ms"]  # nothing pulls E[LAT] down
        assert data["argmax_ms"] > result["budget_ms"]
        assert data["p_op1_per_layer"][0] > 0.5 and data["p_op1_per_layer"][2] > 0.5


# --------------------------------------------------------------------------- lesson 07
def test_07_exercise_1_knapsack_near_the_fastest(s07):
    result = s07.exercise_1(quick=True)
    low, mid = sorted((result["just above fastest"], result["notebook tight"]),
                      key=lambda data: data["budget_ms"])
    for data in (low, mid):
        assert result["fastest_ms"] - 1e-9 <= data["predicted_ms"] <= data["budget_ms"] + 1e-9
        assert 0 <= data["layers_changed_vs_argmax"] <= 10 and data["log_p_given_up"] >= -1e-9
    # a lower budget never buys a more probable architecture; argmax is the unconstrained best
    assert low["sum_log_p"] <= mid["sum_log_p"] + 1e-9
    assert mid["sum_log_p"] <= result["argmax"]["sum_log_p"] + 1e-9
    assert result["just above fastest"]["budget_ms"] == pytest.approx(1.01 * result["fastest_ms"])


def test_07_exercise_2_closed_loop_targets(s07):
    result = s07.exercise_2(quick=True)
    for steps in (result["search_lowered"], result["simulated_lowered"]):
        for step in steps:
            assert step["target_ms"] == pytest.approx(step["by_hand_ms"], abs=1e-9)
            assert step["lowered_by_pct"] >= 3 - 1e-6 or step["target_ms"] == pytest.approx(
                result["fastest_ms"])
    assert len(result["simulated_tries"]) >= 1
    assert "fastest" in result["below_fastest_error"]
    loop = result["below_fastest_loop"]
    assert loop["tries"] == 1 and loop["within_budget"] is False
    assert loop["target_ms"] == pytest.approx(result["fastest_ms"])


def test_07_exercise_3_latency_does_not_depend_on_training(s07):
    result = s07.exercise_3(quick=True)
    assert result["same_params_and_flops"] is True
    for key, data in result.items():
        if not key.endswith("epochs"):
            continue
        names = {row["name"] for row in data["rows"]}
        assert len(names) == 4 and set(data["order_by_miou"]) == names
        assert all(row["latency_ms"] > 0 and 0 <= row["miou"] <= 1 for row in data["rows"])
        # the fastest model is never beaten, nor is the fastest of the most accurate ones
        assert data["order_by_latency"][0] in data["pareto_front"]
        best = max(row["miou"] for row in data["rows"])
        best_fastest = min((r for r in data["rows"] if r["miou"] == best),
                           key=lambda r: r["latency_ms"])
        assert best_fastest["name"] in data["pareto_front"]


def test_07_exercise_4_lraspp_large_on_the_pareto_plot(s07):
    result = s07.exercise_4(quick=True)
    rows = {row["name"]: row for row in result["rows"]}
    assert len(rows) == 5 and result["large_vs_small_params"] > 1
    large = rows["lraspp large"]
    beaten = any(r["latency_ms"] <= large["latency_ms"] and r["miou"] >= large["miou"]
                 and (r["latency_ms"] < large["latency_ms"] or r["miou"] > large["miou"])
                 for name, r in rows.items() if name != "lraspp large")
    assert result["lraspp_large_on_front"] is (not beaten)


def test_07_exercise_5_greedy_swaps_miss_the_knapsack(s07):
    result = s07.exercise_5(quick=True)
    assert result["knapsack"] == (1, 0, 0) and result["greedy"] == (1, 0, 1)
    assert [step.get("swapped_layer") for step in result["greedy_steps"][1:]] == [2, 0]
    assert result["greedy_steps"][1]["ms"] > s07.TOY_BUDGET  # the first swap is not enough
    assert result["log_p_given_up_by_greedy"] == pytest.approx(0.0800, abs=1e-3)
    fits = [c for c in itertools.product(range(2), repeat=3)  # brute force agrees
            if s07.toy_latency(c) <= s07.TOY_BUDGET]
    assert max(fits, key=s07.toy_log_p) == result["knapsack"]


# --------------------------------------------------------------------------- lesson 08
def test_08_exercise_1_scaling_with_pixels(s08):
    result = s08.exercise_1(quick=True)
    assert result["pixel_ratio"] == 4.0
    for times in result["median_ms"].values():
        assert all(ms > 0 for ms in times.values())
    assert all(ratio > 0 for ratio in result["time_ratio"].values())


def test_08_exercise_2_one_thread(s08):
    result = s08.exercise_2(quick=True)
    assert result["loses_most"] in result["slowdown_1_vs_2_threads"]
    assert all(ratio > 0 for ratio in result["slowdown_1_vs_2_threads"].values())


def test_08_exercise_3_int8_calibration(s08):
    result = s08.exercise_3(quick=True)
    if importlib.util.find_spec("nncf") is None:
        assert result["int8_agreement"] is None and "nncf" in result["int8_skipped"].lower()
    else:
        assert result["int8_skipped"] is None
        assert all(0.0 <= a <= 1.0 for a in result["int8_agreement"].values())
    assert 0.0 < result["range_coverage_first_4_of_all"] <= 1.0
    assert 0.0 < result["range_coverage_all_with_a_bright_frame"] <= 1.0
    assert result["layers"] > 0


def test_08_exercise_4_the_ratio_at_two_sizes(s08):
    result = s08.exercise_4(quick=True)
    assert len(result["genotype"]) == 10
    assert all(result["parity_passed"].values()) and len(result["parity_passed"]) == 4
    sizes = result["sizes"]
    assert sizes[0] < sizes[1] and set(result["child_over_fast_scnn"]) == set(sizes)
    for size in sizes:
        assert all(ms > 0 for ms in result["median_ms"][size].values())
        assert all(g > 0 for g in result["gflops"][size].values())
        assert result["child_over_fast_scnn"][size] == pytest.approx(
            result["median_ms"][size]["nas_child"] / result["median_ms"][size]["fast_scnn"])
    assert result["params"]["nas_child"] < result["params"]["fast_scnn"]
    assert all(count > 0 for count in result["layers"].values())
    for name in ("nas_child", "fast_scnn"):  # arithmetic grows with the pixels: 4x for 4x
        ratio = result["gflops"][sizes[1]][name] / result["gflops"][sizes[0]][name]
        assert ratio == pytest.approx((sizes[1] / sizes[0]) ** 2, rel=0.05)

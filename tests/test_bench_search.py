"""benchmarks/search.py (issue 26's fair comparison): the report built from a fake state, the
bootstrap verdict on known numbers, latency quoting, the plan that skips finished pieces and
measures a busy one again on the next run, the refusal of a state made with other settings, one
strategy search started from the shared warm-up, the figure, and (slow) the ``--smoke`` run end to
end."""
from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from benchmark_runner import script_runner
from matplotlib.figure import Figure

from segnas_lite.nas import get_space
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.teaching.plots import study_figure, study_pareto

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STRATEGIES = ("gradient", "evolution", "random")


@pytest.fixture(scope="module")
def bench():
    """benchmarks/search.py as a module (its helpers are imported from benchmarks/, which is taken
    off sys.path again so that no other test sees benchmarks/data.py)."""
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_search", BENCHMARKS / "search.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_search"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    module.report = sys.modules["search_report"]
    module.pieces = sys.modules["search_pieces"]
    module.common = sys.modules["common"]
    module.rank_report = sys.modules["rank_report"]
    module.jobs = sys.modules["jobs"]
    sys.path[:] = saved
    return module


MIOU = {"gradient": (0.80, 0.82), "evolution": (0.74, 0.77), "random": (0.70, 0.71)}
"""Per strategy the per-net means of search seeds 0 and 1 (budget 0.3): gradient clearly above
the random subnets (0.74..0.76), evolution among them, random search below."""
RANDOM_MIOU = (0.74, 0.75, 0.76, 0.75, 0.745)


def fake_state(*, latency_busy=False, over_budget=(), missing_train=()) -> dict:
    """Two budgets; at 0.3 the numbers of ``MIOU``; at 0.6 every net 0.70 + 0.01 * seed. Training
    seeds add -0.01, 0, +0.01 to a net's mean (std 0.01)."""
    recipe = {"budget_fracs": [0.3, 0.6], "search_seeds": [0, 1], "strategies": list(STRATEGIES),
              "train_seeds": [0, 1, 2], "space": "seed", "warmup": "uniform",
              "window": [0.85, 1.0]}
    budgets = {"budgets_ms": {"0.3": 3.0, "0.6": 5.0}, "busy": False, "table": {}}
    search, train, means = {}, {}, {}
    for budget in ("0.3", "0.6"):
        for seed in (0, 1):
            for strategy in STRATEGIES:
                ops = [f"{strategy}{budget}s{seed}"]
                search[f"{budget}/s{seed}/{strategy}"] = {
                    "genotype": ops, "measured_ms": 2.9 if budget == "0.3" else 4.9,
                    "within_budget": (budget, strategy, seed) not in over_budget, "busy": False}
                means[f"seed:{ops[0]}"] = MIOU[strategy][seed] if budget == "0.3" else 0.70
    random_subnets = {}
    for budget, ms in (("0.3", 3.0), ("0.6", 5.0)):
        picks = [{"ops": [f"r{budget}_{i}"], "fit_ms": 0.9 * ms} for i in range(5)]
        random_subnets[f"random/{budget}"] = {"random": picks, "busy": False}
        for i, pick in enumerate(picks):
            means[f"seed:{pick['ops'][0]}"] = RANDOM_MIOU[i] if budget == "0.3" else 0.70
    widths = [{"width": w, "space": f"seed-w{w:g}" if w < 1 else "seed", "ops": ["mbv3_3x3"],
               "fit_ms": ms} for w, ms in ((1.0, 6.0), (0.75, 4.5), (0.5, 2.9))]
    for key in ("seed-w0.5:mbv3_3x3", "seed-w0.75:mbv3_3x3"):
        means[key] = 0.72
    for key, mean in means.items():
        for seed, delta in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
            if (key, seed) not in missing_train:
                train[f"{key}/s{seed}"] = {"miou": mean + delta, "seconds": 2.0}
    latency = {"keys": sorted(means), "busy": latency_busy, "run": 3, "cpu": "x", "date": "d",
               "nets": {key: {"latency_ms": 3.5 if "0.3" in key else 4.0, "params": 10,
                              "gflops": 0.1} for key in means}}
    pieces = {"budgets": {"budgets": budgets}, "search": search, "train": train,
              "select": {"widths": {"widths": widths, "busy": False}, **random_subnets},
              "latency": {"rows": latency}}
    return {"recipe": recipe, "pieces": pieces, "stages": {}, "load": [], "runs": 3}


def rows_by_label(report: dict, budget: str) -> dict:
    return {row["label"]: row for row in report["rows"] if row["budget"] == budget}


def comparison(report: dict, budget: str, strategy: str) -> dict:
    return next(r for r in report["comparisons"]
                if r["budget"] == budget and r["strategy"] == strategy)


def test_report_gives_each_net_its_mean_and_std_and_each_budget_a_verdict(bench):
    report = bench.report.build_report(fake_state(), bootstrap=2000)
    assert not report["partial"] and not report["busy"]
    rows = rows_by_label(report, "0.3")
    assert len(rows) == 6 + 5 + 1
    assert rows["gradient s1"]["miou"] == pytest.approx(0.82)
    assert rows["gradient s1"]["miou_std"] == pytest.approx(0.01)
    assert rows["gradient s1"]["n"] == 3 and rows["random 0"]["kind"] == "random"
    assert rows["mbv3 w0.5"]["width"] == 0.5  # the widest width measured within 3.0 ms
    assert "mbv3 w0.75" in rows_by_label(report, "0.6")
    gradient = comparison(report, "0.3", "gradient")
    assert gradient["difference"] == pytest.approx(0.81 - statistics.fmean(RANDOM_MIOU))
    assert gradient["low"] > 0 and gradient["verdict"] == "beats random" and gradient["aim_met"]
    assert gradient["minus_mbv3_scaled"] == pytest.approx(0.81 - 0.72)
    assert comparison(report, "0.3", "evolution")["verdict"] == "no separable difference"
    assert comparison(report, "0.3", "random")["verdict"] == "worse"
    assert report["verdict"]["0.3"]["answer"] == "beats random: gradient"
    assert report["verdict"]["0.6"]["answer"] == "no separable difference"
    assert report["bootstrap"]["unit"].startswith("the net")
    text = bench.report.print_report(report)
    assert "beats random" in text and "0.820 +- 0.010" in text


def test_bootstrap_verdict_on_known_numbers(bench):
    difference, low, high = bench.report.bootstrap_difference(
        [0.80, 0.81, 0.82], [0.70, 0.71, 0.72], resamples=2000)
    assert difference == pytest.approx(0.10)
    assert 0.08 <= low <= difference <= high <= 0.12
    assert bench.report.verdict(low, high) == "beats random"
    assert bench.report.verdict(-0.3, -0.1) == "worse"
    assert bench.report.verdict(-0.1, 0.2) == "no separable difference"
    assert bench.report.bootstrap_difference([0.8], [0.7, 0.71], resamples=100)[1:] == (None, None)
    assert bench.report.verdict(None, None) == "too few nets"
    same = bench.report.bootstrap_difference([0.7, 0.72], [0.7, 0.72], resamples=500)
    assert same[1] < 0 < same[2]


def test_latency_is_quoted_only_from_one_quiet_piece_covering_every_net(bench):
    quiet = bench.report.build_report(fake_state(), bootstrap=0)
    row = rows_by_label(quiet, "0.3")["gradient s0"]
    assert row["latency_ms"] == 3.5 and row["params"] == 10
    assert row["fits_by_benchmark_clock"] is False  # 3.5 ms against a 3.0 ms budget: said so
    busy = bench.report.build_report(fake_state(latency_busy=True), bootstrap=0)
    assert busy["busy"] and busy["latency"]["status"].startswith("busy")
    assert all(r["latency_ms"] is None and r["params"] is None for r in busy["rows"])
    stale = fake_state()
    stale["pieces"]["latency"]["rows"]["keys"].pop()
    assert bench.report.build_report(stale, bootstrap=0)["latency"]["status"].startswith("stale")


def test_over_budget_nets_are_left_out_and_partial_states_are_labelled(bench, tmp_path):
    data = fake_state(over_budget=[("0.3", "gradient", 1)],
                      missing_train=[("seed:gradient0.3s0", 2)])
    report = bench.report.build_report(data, bootstrap=200)
    gradient = comparison(report, "0.3", "gradient")
    assert gradient["nets"] == 1 and gradient["left_out_over_budget"] == ["gradient s1"]
    assert gradient["verdict"] == "too few nets"  # one net: no interval
    assert report["partial"] and report["done"]["train"][0] == report["done"]["train"][1] - 1
    assert rows_by_label(report, "0.3")["gradient s0"]["n"] == 2
    nothing = bench.report.build_report({"recipe": {}, "pieces": {}})
    assert nothing["partial"] and "rows" not in nothing
    bench.report.write_report({"recipe": {}, "pieces": {}}, json_path=tmp_path / "search.json")
    assert not list(tmp_path.iterdir())  # nothing to report: an earlier report stays as it is


def fake_budgets(space) -> dict:
    ms = [[1.0 + i for i in range(len(spec.ops))] for spec in space.layers]
    table = LatencyTable(space.name, [list(s.ops) for s in space.layers], ms, 10.0, {"fake": 1})
    return {"budgets_ms": {"0.9": 18.0}, "table": json.loads(table.to_json()), "busy": False}


def test_plan_skips_finished_pieces_and_adds_trainings_as_nets_appear(bench, tmp_path):
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    budgets = state.put("budgets", "budgets", fake_budgets(get_space(settings.space)))
    pieces = bench.plan(state, settings, budgets, tmp_path, None)
    assert [p.kind for p in pieces] == ["select"] * 2 + (["warmup"] + ["search"] * 3) * 2
    assert bench.unplanned_trainings(state, settings, None) == (6 + 2 + 1) * 2
    for seed in (0, 1):
        state.put("warmup", f"s{seed}", {"seconds": 1.0})
        for i, strategy in enumerate(STRATEGIES):
            state.put("search", f"0.9/s{seed}/{strategy}", {
                "genotype": list(get_space("tiny").random_genotype(i).ops), "measured_ms": 1.0,
                "within_budget": True, "busy": False, "seconds": 5.0})
    state.put("select", "widths", {"widths": [], "busy": True, "seconds": 1.0})
    state.put("select", "random/0.9", {"random": [{"ops": ["mbv3_3x3"] * 5, "fit_ms": 1.0}],
                                       "busy": False})
    pieces = bench.plan(state, settings, budgets, tmp_path, None)
    pending = [p for p in pieces if not p.done()]
    assert [p.kind for p in pending] == ["select", "latency"] + ["train"] * 4 * 2
    assert pending[0].name == "mbv3 widths"  # measured on a busy machine: measured again
    assert bench.unplanned_trainings(state, settings, None) == 0
    only_train = bench.plan(state, settings, budgets, tmp_path, "train")
    assert [p.kind for p in only_train] == ["train"] * 8
    assert bench.mean_seconds(state)["search"] == pytest.approx(5.0)


def test_budgets_are_rank_pys_and_timed_pieces_wait_for_their_cpu(bench, tmp_path, monkeypatch):
    """A wall-clock study shares rank.py's quiet budgets, a paced one never; on another CPU only
    warm-ups and trainings are planned (milliseconds of two machines are never compared)."""
    settings = replace(bench.Settings.smoke(), budget_fracs=(0.3, 0.6), clock="wall")
    table = fake_budgets(get_space(settings.space))["table"]
    selection = {"budgets_ms": {"0.3": 2.0, "0.6": 3.0}, "fastest_ms": 1.0, "slowest_ms": 4.0,
                 "table": table, "busy": False, "cpu": "Quiet CPU", "date": "2026-12-02"}
    recipe = json.loads(json.dumps({k: getattr(settings, k) for k in bench.pieces.BUDGET_KEYS},
                                   default=lambda o: o.__dict__))
    rank_state = tmp_path / "rank_state.json"
    rank_state.write_text(json.dumps({"recipe": recipe,
                                      "pieces": {"subnets": {"selection": selection}}}))
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    budgets = bench.fix_budgets(state, settings, rank_state=rank_state)
    assert budgets["budgets_ms"] == {"0.3": 2.0, "0.6": 3.0} and budgets["cpu"] == "Quiet CPU"
    assert bench.fix_budgets(state, settings) == budgets  # fixed by the first run
    other = {**recipe, "budget_fracs": [0.5]}
    rank_state.write_text(json.dumps({"recipe": other,
                                      "pieces": {"subnets": {"selection": selection}}}))
    assert bench.pieces.rank_budgets(settings, rank_state) is None  # other budgets: not shared
    rank_state.write_text(json.dumps({"recipe": recipe,
                                      "pieces": {"subnets": {"selection": selection}}}))
    assert bench.pieces.rank_budgets(settings, rank_state) is not None
    assert bench.pieces.rank_budgets(replace(settings, clock="paced"), rank_state) is None
    monkeypatch.setattr(bench.pieces.flags, "cpu_name", lambda: "Noisy CPU")
    assert not bench.on_budget_cpu(budgets)
    kinds = {p.kind for p in bench.plan(state, settings, budgets, tmp_path, None)}
    assert kinds == {"warmup"}  # no selection, search or latency piece here; no net to train yet
    monkeypatch.setattr(bench.pieces.flags, "cpu_name", lambda: "Quiet CPU")
    kinds = {p.kind for p in bench.plan(state, settings, budgets, tmp_path, None)}
    assert kinds == {"select", "warmup", "search"}


def test_a_state_with_warm_ups_only_reports_without_a_net(bench, tmp_path):
    """The first run on another CPU trains only the super-nets: its report has no row yet."""
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    state.put("budgets", "budgets", fake_budgets(get_space(settings.space)))
    state.put("warmup", "s0", {"seconds": 1.0})
    report = bench.report.write_report(state.data, json_path=tmp_path / "search.json",
                                       rank_json=None, bootstrap=0)
    assert report["partial"] and json.loads((tmp_path / "search.json").read_text())["partial"]


def test_a_busy_piece_runs_once_per_run_and_max_pieces_stops(bench, tmp_path):
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    ran = []

    def busy_select():
        ran.append("select")
        state.put("select", "widths", {"busy": True, "seconds": 1.0})

    def make_plan():
        return [bench.Piece("select", "w", lambda: bench._quiet(state.get("select", "widths")),
                            busy_select),
                *(bench.Piece("train", f"t{i}", lambda i=i: state.get("train", f"t{i}") is not None,
                              lambda i=i: ran.append(state.put("train", f"t{i}", {"miou": 0.5})))
                  for i in range(3))]

    assert bench.run_pieces(state, make_plan, 2) == (2, 3)
    assert bench.run_pieces(state, make_plan, None) == (3, 1)  # the busy one again, once
    assert ran.count("select") == 2 and len(ran) == 5
    assert set(state.data["stages"]) == {"select", "train"}


def test_a_state_made_with_other_settings_is_refused(bench, tmp_path):
    settings = bench.Settings.smoke()
    bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    again = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    assert again.data["runs"] == 2  # tuples and the target read back equal
    with pytest.raises(bench.common.StateMismatchError, match="warmup"):
        bench.ResumableState(tmp_path / "state.json",
                             recipe=replace(settings, warmup="sandwich2").recipe_dict())
    with pytest.raises(bench.SettingsError, match="sandwich2_distill"):
        bench.Settings(warmup="sandwhich")
    with pytest.raises(bench.SettingsError, match="window"):
        bench.Settings(window=(1.0, 0.85))


def test_every_strategy_config_shares_the_warmup_of_the_chosen_variant(bench):
    settings = bench.Settings()
    made = {g: bench.pieces.search_config(settings, seed=1, strategy=g, budget_ms=3.0)
            for g in STRATEGIES}
    assert made["gradient"].total_epochs == settings.warmup_epochs + settings.alpha_epochs
    assert made["evolution"].total_epochs == made["random"].total_epochs == 15
    assert made["random"].strategy_evaluations == made["evolution"].evolution.max_evaluations
    assert all(c.bn_recalibration == 256 and c.image_size == 160 and c.seed == 1
               for c in made.values())
    longer = bench.pieces.search_config(replace(settings, warmup="uniform_x2"), seed=0,
                                        strategy="evolution", budget_ms=3.0)
    assert longer.warmup_epochs == 30
    distill = bench.pieces.search_config(replace(settings, warmup="sandwich2_distill"), seed=0,
                                         strategy="gradient", budget_ms=3.0)
    assert distill.sandwich == 2 and distill.inplace_distill


def test_a_strategy_search_starts_from_the_shared_warmup(bench, tmp_path):
    settings = bench.Settings.smoke()
    space = get_space(settings.space)
    budgets = fake_budgets(space)
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    warmup = bench.Warmup(settings, 0, budgets, tmp_path)
    record = warmup.train()
    assert warmup.checkpoint.exists() and record["steps"] == 1
    found = bench.pieces.strategy_search(state, settings, frac=0.9, seed=0, strategy="evolution",
                                         budgets=budgets, warmup=warmup, out=tmp_path)
    folder = tmp_path / found["folder"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["strategy"] == "evolution" and summary["budget_ms"] == 18.0
    history = json.loads((folder / "history.json").read_text())
    assert len(history["weight_steps"]) == 1 and history["strategy"]["evaluations"] >= 1
    assert not (folder / "search_checkpoint.pt").exists() and warmup.checkpoint.exists()
    assert found["measured_ms"] > 0 and isinstance(found["busy"], bool)
    assert len(found["genotype"]) == len(space.layers)


def test_study_figure_puts_the_rank_scatter_beside_the_pareto(bench, tmp_path):
    report = bench.report.build_report(fake_state(), bootstrap=100)
    alone = study_figure(report["rows"], report["budgets_ms"])
    assert isinstance(alone, Figure) and len(alone.axes) == 1
    ax = study_pareto(report["rows"], report["budgets_ms"]).axes[0]
    assert len(ax.get_lines()) >= 2  # the budget lines
    rank_json = tmp_path / "rank.json"
    rank_json.write_text(json.dumps(bench.rank_report.build_report(fake_rank_state(),
                                                                   bootstrap=0)))
    panel = bench.report.rank_panel(rank_json, "uniform")
    assert panel["title"].startswith("uniform:")
    beside = study_figure(report["rows"], report["budgets_ms"], panel, title="t")
    assert [len(sub.axes) for sub in beside.subfigs] == [1, 1]
    assert bench.report.rank_panel(tmp_path / "missing.json", "uniform") is None
    bench.report.write_report(fake_state(latency_busy=True), json_path=tmp_path / "search.json",
                              rank_json=rank_json, bootstrap=100)
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["busy"] and saved["settings"]["warmup"] == "uniform" and "verdict" in saved
    assert (tmp_path / "search_pareto.png").stat().st_size > 10_000


def fake_rank_state() -> dict:
    """rank.py's state with one variant "uniform" over four subnets (for its scatter panel)."""
    subnets = {f"k{i}": {"ops": [f"op{i}"], "budgets": ["0.3"], "predicted_ms": 1.0 + i,
                         "params": 10 * (i + 1), "gflops": 0.1 * (i + 1)} for i in range(4)}
    pieces = {"subnets": {"selection": {"subnets": subnets, "budgets_ms": {"0.3": 3.0},
                                        "busy": False}},
              "standalone": {f"k{i}/s{s}": {"miou": 0.5 + 0.05 * i} for i in range(4)
                             for s in (0, 1)},
              "supernet": {"uniform": {}},
              "estimate": {f"uniform/k{i}": {"plain": 0.3 + 0.01 * i, "recal": 0.4 + 0.01 * i}
                           for i in range(4)}}
    return {"recipe": {"budget_fracs": [0.3], "train_seeds": [0, 1], "variants": {"uniform": {}}},
            "pieces": pieces}


@pytest.mark.slow
def test_smoke_run_end_to_end_resumes_and_reports(tmp_path):
    out = tmp_path / "search"
    run = script_runner("search.py", cache=tmp_path / "cache", timeout=1800,
                        fixed=("--smoke", "--out", str(out), "--bootstrap", "200"))

    first = run("--max-pieces", "4")
    assert "ran 4 pieces" in first and "PARTIAL" in first
    assert json.loads((out / "search.json").read_text())["partial"]
    run()
    report = json.loads((out / "search.json").read_text())
    assert report["done"]["search"] == [6, 6]
    assert report["done"]["train"][0] == report["done"]["train"][1] > 0
    assert all(row["n"] == 2 for row in report["rows"])
    assert [(c["strategy"], c["nets"] > 0) for c in report["comparisons"]] == [
        (g, True) for g in STRATEGIES]
    assert report["verdict"]["0.9"]["answer"]
    assert isinstance(report["busy"], bool) and (out / "search_pareto.png").exists()
    for seed in (0, 1):  # one super-net per search seed: every strategy starts from its warm-up
        warm = [json.loads((out / f"search_b0.9_s{seed}_{g}" / "history.json").read_text())[
            "weight_steps"] for g in STRATEGIES]
        assert warm[0] == warm[1] == warm[2] and len(warm[0]) == 1
    state = json.loads((out / "state.json").read_text())
    clock = state["pieces"]["budgets"]["clock"]  # the paced clock, its unit fixed by run 1
    assert clock["clock"] == "paced" and clock["reference_ms"] > 0
    assert state["pieces"]["budgets"]["budgets"]["clock"] == {
        k: v for k, v in clock.items() if k not in ("cpu", "cpu_id", "date")}
    assert {p["clock"] for p in state["pieces"]["search"].values()} == {"paced"}
    run()  # only pieces measured on a busy machine run again (and trainings of nets they add)
    later = json.loads((out / "state.json").read_text())
    assert later["pieces"]["search"] == state["pieces"]["search"] and later["runs"] == 3
    assert later["pieces"]["budgets"]["clock"] == clock
    assert all(later["pieces"]["train"][k] == v for k, v in state["pieces"]["train"].items())
    assert "latency rows:" in run("--report")


def test_budgets_move_to_this_cpu_only_quietly_and_before_any_timed_piece(bench, tmp_path):
    """--budgets-here: the budgets may move to another CPU while only CPU-free pieces (warm-ups,
    trainings) are recorded, and only when the new predictor was measured quietly; once a network
    was timed on the old CPU, the move is refused. The old budgets are never lost."""
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    old = {**fake_budgets(get_space(settings.space)), "cpu": "Other CPU"}
    state.put("budgets", "budgets", old)
    state.put("warmup", "s0", {"seconds": 1.0})
    busy = {**old, "cpu": "This CPU", "busy": True}
    with pytest.raises(bench.BudgetMoveError, match="disturbed"):
        bench.move_budgets_here(state, settings,
                                measure=lambda st, se: st.put("budgets", "budgets", busy))
    assert state.get("budgets", "budgets") == old  # a disturbed predictor: the old budgets stay
    quiet = {**old, "cpu": "This CPU", "budgets_ms": {"0.9": 9.0}}
    seen = []

    def measure(st, se):
        seen.append(st.get("budgets", "budgets"))  # fix_budgets must not find the old ones
        return st.put("budgets", "budgets", quiet)

    assert bench.move_budgets_here(state, settings, measure=measure) == quiet and seen == [None]
    assert state.get("budgets", "budgets") == quiet and state.get("warmup", "s0") is not None
    state.put("select", "widths", {"widths": [], "busy": False})
    with pytest.raises(bench.BudgetMoveError, match="select: widths"):
        bench.move_budgets_here(state, settings, measure=lambda st, se: pytest.fail("measured"))
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["pieces"]["budgets"]["budgets"]["cpu"] == "This CPU"


def test_two_cpus_of_one_model_name_with_other_instruction_sets_are_two_cpus(bench, monkeypatch):
    """A VM reports "AMD EPYC" for several generations: budgets recorded with a cpu_id compare
    model and instruction-set flags; older records (name only) compare the name."""
    monkeypatch.setattr(bench.pieces.flags, "cpu_id", lambda: "AMD EPYC [avx2 avx512f]")
    monkeypatch.setattr(bench.pieces.flags, "cpu_name", lambda: "AMD EPYC")
    assert bench.on_budget_cpu({"cpu": "AMD EPYC", "cpu_id": "AMD EPYC [avx2 avx512f]"})
    assert not bench.on_budget_cpu({"cpu": "AMD EPYC",
                                    "cpu_id": "AMD EPYC [avx2 avx512f avx512_bf16]"})
    assert bench.on_budget_cpu({"cpu": "AMD EPYC"}) and bench.on_budget_cpu({})


def test_jobs_run_trainings_side_by_side_and_the_main_process_records_them(bench, tmp_path,
                                                                           monkeypatch):
    """--jobs 2: the pieces with a job run in two spawned processes (operator.mul stands for a
    training), the main process records each result; a piece without a job runs alone, after the
    jobs before it have ended; max_pieces counts finished pieces."""
    import operator
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the workers import jobs.py from there
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    order = []

    def make_plan():
        trains = [bench.Piece("train", f"t{i}", lambda i=i: state.get("train", f"t{i}") is not None,
                              lambda: pytest.fail("a job piece ran in process"),
                              job=bench.Job(operator.mul, (i, 10), lambda r, i=i: order.append(
                                  state.put("train", f"t{i}", {"miou": r}))))
                  for i in range(5)]
        latency = bench.Piece("latency", "rows", lambda: state.get("latency", "rows") is not None,
                              lambda: order.append(state.put("latency", "rows", "alone")))
        return [*trains[:3], latency, *trains[3:]]

    assert bench.run_pieces(state, make_plan, 3, jobs=2) == (3, 3)
    assert bench.run_pieces(state, make_plan, None, jobs=2) == (3, 0)
    assert {k: v["miou"] for k, v in state.data["pieces"]["train"].items()} == {
        f"t{i}": 10 * i for i in range(5)}
    assert order.index("alone") == 3  # after the three trainings planned before it


def test_a_job_that_raises_stops_the_run_with_its_error(bench, tmp_path, monkeypatch):
    import operator
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    plan = [bench.Piece("train", "bad", lambda: False, lambda: None,
                        job=bench.Job(operator.truediv, (1, 0), lambda r: None))]
    with pytest.raises(ZeroDivisionError):
        bench.run_pieces(state, lambda: plan, None, jobs=2)


def test_jobs_below_one_are_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--jobs", "0"])


def test_a_worker_that_dies_is_a_named_error_not_a_hang(bench, tmp_path, monkeypatch):
    import os
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    plan = [bench.Piece("train", "killed", lambda: False, lambda: None,
                        job=bench.Job(os._exit, (3,), lambda r: None))]
    with pytest.raises(bench.jobs.WorkerDiedError, match="exit code 3"):
        bench.run_pieces(state, lambda: plan, None, jobs=2)


def test_workers_follow_the_main_process_warning_filters(bench, tmp_path, monkeypatch):
    """A filter set in the main process holds in the workers: here "error" turns the job's warning
    into the exception the run stops with (search.py silences the masks-differ-in-size warning)."""
    import warnings
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    settings = bench.Settings.smoke()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    plan = [bench.Piece("train", "warns", lambda: False, lambda: None,
                        job=bench.Job(warnings.warn, ("a filtered warning",), lambda r: None))]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="a filtered warning")
        with pytest.raises(UserWarning, match="a filtered warning"):
            bench.run_pieces(state, lambda: plan, None, jobs=2)


def test_latency_checks_show_a_slower_search_and_recompare_within_the_rows_budget(bench):
    """At 0.3 (budget 3.0 ms) the gradient nets read 3.2 ms by the latency rows (over: left out of
    the check), evolution's 2.9 and the random subnets 2.8 (in): the gap and the re-comparison say
    so; with busy rows neither is given."""
    data = fake_state()
    for key, row in data["pieces"]["latency"]["rows"]["nets"].items():
        row["latency_ms"] = (3.2 if "gradient0.3" in key else 2.9 if "evolution0.3" in key
                             else 2.8 if "r0.3" in key else row["latency_ms"])
    report = bench.report.build_report(data, bootstrap=2000)
    gradient, evolution = (comparison(report, "0.3", s) for s in ("gradient", "evolution"))
    assert gradient["verdict"] == "beats random"  # by the searches' own measurements
    assert gradient["latency_gap_ms"] == pytest.approx(0.4)
    assert gradient["benchmark_clock"]["nets"] == 0
    assert gradient["benchmark_clock"]["verdict"] == "too few nets"
    assert evolution["latency_gap_ms"] == pytest.approx(0.1)
    check = evolution["benchmark_clock"]
    assert (check["nets"], check["random_nets"]) == (2, 5)
    assert check["difference"] == pytest.approx(0.755 - statistics.fmean(RANDOM_MIOU))
    text = bench.report.print_report(report)
    assert "checked against the latency rows" in text and "0/2 vs 5/5" in text
    busy = bench.report.build_report(fake_state(latency_busy=True), bootstrap=0)
    assert all(r["latency_gap_ms"] is None and r["benchmark_clock"] is None
               for r in busy["comparisons"])


@pytest.mark.slow
def test_parallel_training_benchmark_measures_both_blocks(tmp_path):
    """benchmarks/parallel_training.py, tiny: one round of 1 x all threads and 2 side by side;
    every worker's step time is recorded and the JSON says whether each block was busy."""
    run = script_runner("parallel_training.py", cache=tmp_path / "cache", timeout=300)
    out = tmp_path / "parallel.json"
    text = run("--steps", "2", "--rounds", "1", "--image-size", "32", "--out", str(out))
    report = json.loads(out.read_text())
    (blocks,) = report["rounds"]
    assert [len(b["ms_per_step"]) for b in blocks.values()] == [1, 2]
    assert all(b["steps_per_s"] > 0 and isinstance(b["busy"], bool) for b in blocks.values())
    assert "speed-up of side by side" in text

"""benchmarks/rank.py (issue 26's ranking diagnostic): the report built from a fake state, the plan
that skips finished pieces, the refusal of a state made with other settings, a super-net that
resumes mid-way, the plot, and (slow) the ``--smoke`` run end to end in a subprocess."""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from benchmark_runner import script_runner
from matplotlib.figure import Figure

from segnas_lite.nas import get_space
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.rank import rank_agreement
from segnas_lite.teaching.plots import rank_figure

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """benchmarks/rank.py as a module (it puts benchmarks/ on sys.path for its helpers; the path is
    taken off again once they are imported, so that no other test sees benchmarks/data.py)."""
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_rank", BENCHMARKS / "rank.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_rank"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    module.report = sys.modules["rank_report"]
    module.pieces = sys.modules["rank_pieces"]
    module.common = sys.modules["common"]
    sys.path[:] = saved
    return module


def fake_state(*, variants=("good", "bad"), skip=()) -> dict:
    """Six subnets (three per budget); truth rises with i, seed 1 = seed 0 + 0.01 (same order);
    "good" estimates rise with i, "bad" ones fall; params and latency rise, FLOPs fall."""
    recipe = {"budget_fracs": [0.3, 0.6], "train_seeds": [0, 1],
              "variants": {name: {} for name in variants}}
    subnets = {f"k{i}": {"ops": [f"op{i}"], "budgets": ["0.3"] if i < 3 else ["0.6"],
                         "predicted_ms": 1.0 + i, "params": 100 * (i + 1), "gflops": 0.6 - 0.1 * i}
               for i in range(6)}
    pieces = {"subnets": {"selection": {"subnets": subnets, "budgets_ms": {"0.3": 3.0, "0.6": 6.0},
                                        "busy": False}},
              "standalone": {f"k{i}/s{s}": {"miou": 0.5 + 0.05 * i + 0.01 * s}
                             for i in range(6) for s in (0, 1)},
              "supernet": {name: {"seconds": 1.0} for name in variants},
              "estimate": {f"{name}/k{i}": {"plain": (0.3 + 0.01 * i) * sign,
                                            "recal": (0.4 + 0.02 * i) * sign}
                           for name, sign in zip(variants, (1, -1)) for i in range(6)}}
    for section, key in skip:
        del pieces[section][key]
    return {"recipe": recipe, "pieces": pieces, "stages": {}, "load": [], "runs": 1}


def by_score(report: dict, group: str) -> dict:
    return {row["score"]: row for row in report["agreements"] if row["group"] == group}


def test_report_ranks_every_score_per_budget_and_overall(bench):
    report = bench.report.build_report(fake_state(), bootstrap=200)
    assert report["groups"] == ["0.3", "0.6", "all"] and not report["partial"]
    every = by_score(report, "all")
    assert every["good"]["kendall"] == pytest.approx(1.0)
    assert every["good +BN"]["spearman"] == pytest.approx(1.0)
    assert every["bad"]["kendall"] == pytest.approx(-1.0) and every["bad"]["n"] == 6
    assert every["#params"]["kendall"] == pytest.approx(1.0)
    assert every["FLOPs"]["kendall"] == pytest.approx(-1.0)
    assert every["predicted latency"]["kendall"] == pytest.approx(1.0)
    assert every["seed 0 vs seed 1"]["kendall"] == pytest.approx(1.0)
    assert every["noise ceiling"]["kind"] == "ceiling"
    assert every["noise ceiling"]["kendall"] == pytest.approx(1.0)  # seeds that agree: no noise
    assert report["best"]["ceiling"] == pytest.approx(1.0)
    low, high = every["bad +BN"]["kendall_low"], every["bad +BN"]["kendall_high"]
    assert low <= -0.99 and high <= 0.0
    assert by_score(report, "0.3")["good"]["n"] == 3 and by_score(report, "0.6")["bad"]["n"] == 3
    assert report["best"]["score"].startswith("good") and report["best"]["aim_met"]
    assert report["best"]["beats_params"] is False  # a tie with #params is no win


def test_report_of_a_partial_state_is_labelled_and_uses_what_is_done(bench):
    data = fake_state(skip=[("standalone", "k0/s1"), ("estimate", "bad/k5"),
                            ("supernet", "bad")])
    report = bench.report.build_report(data, bootstrap=0)
    assert report["partial"]
    assert report["done"] == {"standalone": [11, 12], "supernet": [1, 2], "estimate": [11, 12]}
    every = by_score(report, "all")
    assert every["good"]["n"] == 6  # k0 keeps its seed-0 mIoU as the truth
    assert every["seed 0 vs seed 1"]["n"] == 5 and every["bad"]["n"] == 5
    assert every["bad"]["kendall_low"] is None  # no bootstrap asked for
    few = bench.report.build_report(fake_state(skip=[("standalone", f"k{i}/s{s}")
                                                     for i in range(4) for s in (0, 1)]))
    assert by_score(few, "0.3")["good"]["kendall"] is None  # fewer than 3 with a truth
    assert by_score(few, "0.3")["good"]["note"]
    nothing = bench.report.build_report({"recipe": {}, "pieces": {}})
    assert nothing["partial"] and "agreements" not in nothing


def test_report_is_written_with_its_figure(bench, tmp_path):
    bench.report.write_report(fake_state(skip=[("standalone", "k2/s0")]),
                              json_path=tmp_path / "rank.json", bootstrap=100)
    saved = json.loads((tmp_path / "rank.json").read_text())
    assert saved["partial"] and saved["settings"]["train_seeds"] == [0, 1]
    assert len(saved["agreements"]) == 3 * (2 * 2 + 3 + 2) and "tau" in saved["table"]
    assert (tmp_path / "rank.png").stat().st_size > 10_000


def test_rank_figure_draws_a_panel_per_supernet_and_per_budget(bench):
    report = bench.report.build_report(fake_state(), bootstrap=50)
    panels, groups = bench.report.figure_data(report)
    assert [p["title"].split(":")[0] for p in panels] == ["good", "bad"]
    assert [g["title"] for g in groups] == ["budget 0.3", "budget 0.6", "all subnets"]
    figure = rank_figure(panels, groups, title="t")
    assert isinstance(figure, Figure)
    assert sum(len(sub.axes) for sub in figure.subfigs) == 2 + 3


def test_rank_explorer_redraws_one_supernet_and_one_budget(bench):
    from segnas_lite.teaching import widgets
    report = bench.report.build_report(fake_state(), bootstrap=50)
    box = widgets.rank_explorer(report)
    supernet, budget = box.children[:2]
    assert list(supernet.options) == ["good", "bad"] and budget.value == "all subnets"
    assert box.redraws == 1 and len(box.figure.subfigs[0].axes) == 1  # one scatter panel
    supernet.value = "bad"
    budget.value = "budget 0.3"
    assert box.redraws == 3
    assert box.figure._suptitle.get_text().startswith("bad:")
    assert box.figure.subfigs[1].axes[0].get_title() == "budget 0.3"
    with pytest.raises(widgets.WidgetInputError, match="benchmarks/rank.py"):
        widgets.rank_explorer({"partial": True})


def test_spearman_gets_a_bootstrap_interval_too():
    found = rank_agreement(list(range(12)), [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10], bootstrap=300)
    assert 0.5 < found.spearman_low <= found.spearman <= found.spearman_high <= 1.0
    assert rank_agreement([1, 2, 3], [3, 2, 1]).spearman_low is None


def test_every_variant_is_a_valid_search_config(bench, tmp_path):
    settings = bench.Settings()
    made = {name: bench.SupernetVariant(settings, name, {"budgets_ms": {"0.3": 2.0, "0.6": 3.0}},
                                        tmp_path).config() for name in settings.variants()}
    assert list(made) == ["uniform", "strict_fair", "sandwich2", "sandwich2_distill", "uniform_x2"]
    assert all(c.total_epochs == c.warmup_epochs and c.budget_ms == 3.0 for c in made.values())
    assert made["uniform_x2"].warmup_epochs == 2 * made["uniform"].warmup_epochs
    assert made["sandwich2_distill"].inplace_distill and made["sandwich2"].sandwich == 2
    assert made["strict_fair"].warmup_sampling == "strict_fair"
    assert made["uniform"].warmup_sampling == "fair" and made["uniform"].image_size == 160


def fake_selection(space, keys: list[tuple[str, ...]]) -> dict:
    ms = [[1.0 + i for i in range(len(spec.ops))] for spec in space.layers]
    table = LatencyTable(space.name, [list(s.ops) for s in space.layers], ms, 10.0, {"fake": 1})
    return {"budgets_ms": {"0.3": 14.0, "0.6": 18.0}, "table": json.loads(table.to_json()),
            "subnets": {",".join(ops): {"ops": list(ops), "budgets": ["0.3"], "predicted_ms": 12.0,
                                        "params": 1, "gflops": 0.1} for ops in keys},
            "busy": False}


def test_a_rerun_skips_finished_pieces_and_stops_after_max_pieces(bench, tmp_path):
    settings = bench.Settings.smoke()
    space = get_space(settings.space)
    keys = [space.random_genotype(i).ops for i in range(2)]
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    selection = state.put("subnets", "selection", fake_selection(space, keys))
    pieces = bench.plan(state, settings, selection, tmp_path, None)
    assert [p.kind for p in pieces].count("standalone") == 2 * 2 and len(pieces) == 5 * 2 + 4
    state.put("standalone", f"{','.join(keys[0])}/s1", {"miou": 0.5, "seconds": 3.0})
    state.put("supernet", "uniform", {"seconds": 1.0})
    state.put("supernet", "sandwich2", {"seconds": 1.0})  # its weights are not here: train again
    (tmp_path / "supernet_uniform.pt").write_bytes(b"weights")
    for key in keys:
        state.put("estimate", f"strict_fair/{','.join(key)}", {"plain": 0.1, "recal": 0.2})
    pending = [p for p in pieces if not p.done()]
    assert len(pending) == len(pieces) - 3
    assert ("supernet", "uniform") not in [(p.kind, p.name) for p in pending]
    assert ("supernet", "sandwich2") in [(p.kind, p.name) for p in pending]
    ran = []
    stubs = [bench.Piece(p.kind, p.name, p.done, lambda p=p: ran.append(p.name)) for p in pending]
    assert bench.run_pieces(state, stubs, 2) == 2 and len(ran) == 2
    assert set(state.data["stages"]) <= {"supernet", "estimates", "standalone"}
    assert bench.eta_seconds(state, [stubs[-1]]) == pytest.approx(3.0)  # the recorded one


def test_a_state_made_with_other_settings_is_refused(bench, tmp_path):
    settings = bench.Settings.smoke()
    bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    again = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    assert again.data["runs"] == 2  # tuples and the target read back equal
    with pytest.raises(bench.common.StateMismatchError, match="epochs"):
        bench.ResumableState(tmp_path / "state.json",
                             recipe=replace(settings, epochs=2).recipe_dict())
    fresh = bench.ResumableState(tmp_path / "state.json", fresh=True,
                                 recipe=replace(settings, epochs=2).recipe_dict())
    assert fresh.data["runs"] == 1 and fresh.data["pieces"] == {}


def test_a_supernet_stopped_mid_way_resumes_and_estimates_every_subnet(bench, tmp_path):
    settings = replace(bench.Settings.smoke(), supernet_epochs=2, supernet_steps=1, bn_images=8)
    space = get_space(settings.space)
    selection = fake_selection(space, [space.random_genotype(i).ops for i in range(2)])
    variant = bench.SupernetVariant(settings, "strict_fair", selection, tmp_path)
    search = variant.search()
    run_epoch = search.run_epoch

    def stop_at_second(epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return run_epoch(epoch)

    search.run_epoch = stop_at_second
    with pytest.raises(KeyboardInterrupt):
        variant.train()
    assert not variant.weights.exists() and (variant.folder / "search_checkpoint.pt").exists()
    again = bench.SupernetVariant(settings, "strict_fair", selection, tmp_path)
    record = again.train()
    assert record["resumed_at_epoch"] == 1 and record["steps"] == 2 and record["epochs"] == 2
    assert variant.weights.exists() and not variant.folder.exists()
    state = bench.ResumableState(tmp_path / "state.json", recipe=settings.recipe_dict())
    again.estimate(state)
    for key in selection["subnets"]:
        done = state.get("estimate", f"strict_fair/{key}")
        assert 0.0 <= done["plain"] <= 1.0 and 0.0 <= done["recal"] <= 1.0 and done["held_out"] > 0


@pytest.mark.slow
def test_smoke_run_end_to_end_resumes_and_reports(tmp_path):
    out = tmp_path / "rank"
    run = script_runner("rank.py", cache=tmp_path / "cache", timeout=1200,
                        fixed=("--smoke", "--out", str(out), "--bootstrap", "100"))

    first = run("--max-pieces", "3")
    assert "stopped after 3 pieces" in first and "PARTIAL" in first
    assert json.loads((out / "rank.json").read_text())["partial"]
    run()
    report = json.loads((out / "rank.json").read_text())
    assert not report["partial"] and report["done"]["standalone"][0] == report["done"][
        "standalone"][1] > 0
    assert len(report["agreements"]) == 3 * (5 * 2 + 3 + 1)
    assert (out / "rank.png").exists() and len(list(out.glob("supernet_*.pt"))) == 5
    state = json.loads((out / "state.json").read_text())
    assert state["runs"] == 2 and len(state["pieces"]["supernet"]) == 5
    assert "0 pieces to do" in run()
    assert "complete" in run("--report")

import math

import pytest
import torch
from scipy.stats import spearmanr

from segnas_lite.deploy.target import Target, TargetError
from segnas_lite.nas import Genotype, expected_latency, tiny_space
from segnas_lite.nas import latency as L
from segnas_lite.nas import measure as M
from segnas_lite.nas import predictor as P
from segnas_lite.timing import TimingError

TORCH_48 = Target(backend="torch", threads=1, image_size=48)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path))


@pytest.fixture
def table():
    return L.build_table(tiny_space(), target=TORCH_48, warmup=1, runs=3, quiet=True)


def test_table_has_one_entry_per_layer_and_op(table):
    space = tiny_space()
    assert table.ops == [list(spec.ops) for spec in space.layers]
    assert all(len(row) == len(spec.ops) for row, spec in zip(table.ms, space.layers))
    assert all(v > 0 for row in table.ms for v in row) and table.fixed_ms > 0
    assert table.meta["backend"] == "torch" and table.meta["threads"] == 1


def test_prediction_is_fixed_plus_sum_and_matches_expected_latency(table):
    space = tiny_space()
    g = space.random_genotype(3)
    direct = table.fixed_ms + sum(row[names.index(op)]
                                  for row, names, op in zip(table.ms, table.ops, g.ops))
    assert table.predict(g) == pytest.approx(direct)
    one_hot = [torch.nn.functional.one_hot(torch.tensor(spec.ops.index(op)), len(spec.ops)).double()
               for op, spec in zip(g.ops, space.layers)]
    assert float(expected_latency(one_hot, table.tensor(), table.fixed_ms)) == pytest.approx(direct)
    fastest, fastest_ms = table.fastest()
    _, slowest_ms = table.slowest()
    assert fastest_ms <= table.predict(g) <= slowest_ms


def test_table_is_cached_on_disk_and_reloaded_without_measuring(table, monkeypatch, tmp_path):
    files = list((tmp_path / "latency").glob("*.json"))
    assert len(files) == 1 and "tiny" in files[0].name and "torch-f32_t1_48x48" in files[0].name

    def no_measuring(*args, **kwargs):
        raise AssertionError("a cached table must not be re-measured")

    monkeypatch.setattr(L, "prepare", no_measuring)
    monkeypatch.setattr(L, "time_runner", no_measuring)
    again = L.build_table(tiny_space(), target=TORCH_48, warmup=1, runs=3, quiet=True)
    assert again.ms == table.ms and again.fixed_ms == table.fixed_ms
    # a different image size is a different key
    with pytest.raises(AssertionError, match="re-measured"):
        L.build_table(tiny_space(), target=Target("torch", threads=1, image_size=64), quiet=True)


def test_json_round_trip(table, tmp_path):
    table.save(tmp_path / "t.json")
    assert L.LatencyTable.load(tmp_path / "t.json") == table


def test_spearman_matches_scipy():
    a = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0]
    b = [30.0, 12.0, 20.0, 25.0, 41.0, 50.0]
    assert P.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)


def test_validate_reports_rank_correlation_and_error(table):
    report = P.validate(table, tiny_space(), num_genotypes=6, runs=3, quiet=True)
    assert report.meta["backend"] == "torch" and report.meta["image_size"] == [48, 48]  # the table's
    assert len(report.measured_ms) == 6 and all(m > 0 for m in report.measured_ms)
    assert -1 <= report.spearman <= 1 and report.mape >= 0
    assert "Spearman" in report.to_text()


def test_measured_latency_caches_per_genotype(monkeypatch):
    calls = []
    monkeypatch.setattr(M, "measure_genotype", lambda g, **kw: calls.append(g) or 1.5)
    measured = M.MeasuredLatency(tiny_space(), target=Target("torch", image_size=32))
    g = tiny_space().random_genotype(0)
    assert measured(g) == measured(g) == 1.5 and len(calls) == 1


def test_remeasure_bypasses_the_cache_and_keeps_the_faster_reading(monkeypatch):
    readings = iter([2.0, 1.6, 2.4])
    monkeypatch.setattr(M, "measure_genotype", lambda g, **kw: next(readings))
    measured = M.MeasuredLatency(tiny_space(), target=Target("torch", image_size=32))
    g = tiny_space().random_genotype(0)
    assert measured(g) == 2.0
    assert measured.remeasure(g) == 1.6 and measured(g) == 1.6
    assert measured.remeasure(g) == 2.4 and measured(g) == 1.6


def test_unknown_backend_and_mismatched_genotype(table):
    with pytest.raises(TimingError, match="backend"):
        M.measure(torch.nn.Identity(), (1, 3, 8, 8), backend="tensorrt")
    with pytest.raises(L.LatencyError, match="does not fit"):
        table.predict(Genotype("seed", ("mbv3_3x3",) * 10))


@pytest.mark.slow
def test_openvino_backend_times_a_block():
    ms = M.measure(torch.nn.Conv2d(8, 8, 3, padding=1), (1, 8, 32, 32), backend="openvino",
                   threads=1, warmup=1, runs=3)
    assert ms > 0 and math.isfinite(ms)


def test_refresh_remeasures_and_replaces_the_cached_table(table, monkeypatch):
    calls = []
    real = L.time_runner
    monkeypatch.setattr(L, "time_runner", lambda *a, **k: calls.append(1) or real(*a, **k))
    L.build_table(tiny_space(), target=TORCH_48, warmup=1, runs=3, quiet=True, refresh=True)
    rounds = table.meta["rounds"]
    assert len(calls) == rounds * (sum(len(row) for row in table.ms) + 1)  # every op + fixed part


def test_cache_key_follows_the_macro_widths():
    from segnas_lite.nas import MacroConfig
    key = lambda macro: L.table_key(tiny_space(), TORCH_48, macro_config=macro)  # noqa: E731
    assert key(None) == key(MacroConfig()) == key({"aspp_channels": 64, "decoder_channels": 48})
    assert key(MacroConfig(aspp_channels=32)) != key(None)
    assert key(MacroConfig(decoder_channels=32)) != key(None)
    assert key(MacroConfig(aspp_rates=(2, 4, 6))) != key(None)


def test_fastest_and_slowest_pick_the_extreme_op_of_every_layer():
    space = tiny_space()
    ms = [[3.0, 1.0, 2.0] + [5.0] * (len(spec.ops) - 3) for spec in space.layers]
    table = L.LatencyTable(space.name, [list(s.ops) for s in space.layers], ms, 10.0)
    fastest, fastest_ms = table.fastest()
    slowest, slowest_ms = table.slowest()
    assert all(op == spec.ops[1] for op, spec in zip(fastest.ops, space.layers))
    assert fastest_ms == 10.0 + len(space)
    assert slowest_ms == 10.0 + sum(max(row) for row in ms)
    assert table.tensor().shape == (len(space), max(len(s.ops) for s in space.layers))


# --------------------------------------------------------------------------- precision and calibration
def test_cache_key_follows_backend_and_precision():
    key = lambda **kw: L.table_key(tiny_space(), Target(threads=1, image_size=48, **kw))  # noqa: E731
    keys = {key(backend="torch"), key(backend="openvino", precision="f32"),
            key(backend="openvino", precision="bf16"), key(backend="openvino", precision="default")}
    assert len(keys) == 4
    assert "torch-f32_t1_48x48" in key(backend="torch")  # the key's format did not change
    with pytest.raises(TargetError, match="torch backend runs f32"):
        Target(backend="torch", precision="bf16")


def test_predictor_is_calibrated_cached_and_validated_on_other_subnets(monkeypatch):
    space = tiny_space()
    target = Target(backend="torch", threads=1, image_size=32)
    settings = dict(target=target, num_fit=10, runs=3, quiet=True)
    predictor = P.build_predictor(space, **settings)
    cal = predictor.meta["calibration"]
    assert predictor.meta["calibrated"] and cal["num_fit"] == 10 and len(cal["genotypes"]) == 10
    assert predictor.meta["in_place"]["fixed_ms"] > 0 and predictor.ops == L.build_table(
        space, target=target, quiet=True).ops
    assert predictor.target == target
    assert all(v >= 0 for row in predictor.ms for v in row)
    # a second call reads the cache: nothing is measured
    with monkeypatch.context() as patched:
        patched.setattr(P, "measure_genotypes", lambda *a, **k: pytest.fail("measured again"))
        assert P.build_predictor(space, **settings).ms == predictor.ms
    report = P.validate(predictor, space, num_genotypes=6, runs=3, quiet=True)
    fitted = {tuple(ops) for ops in cal["genotypes"]}
    assert report.meta["calibrated"] and len(report.genotypes) == 6
    assert not fitted & {tuple(ops) for ops in report.genotypes}  # held out
    assert report.noise_pct >= 0 and -1 <= report.spearman <= 1 and report.mape >= 0
    # the passes' own disagreement reaches the busy guard (a drift the probes before and after miss)
    assert report.meta["load"]["repeat_noise_pct"] == round(report.noise_pct, 2)
    assert cal["load"]["repeat_noise_pct"] == round(cal["noise_pct"], 2)


def test_latency_command_writes_its_report_and_refuses_to_overwrite(tmp_path):
    from segnas_lite.cli import main
    out = tmp_path / "lat"
    args = ["latency", "--space", "tiny", "--backend", "torch", "--image-size", "32",
            "--num-fit", "10", "--validate", "6", "--threads", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    report = __import__("json").loads((out / "latency_report.json").read_text())
    for key in ("spearman", "mape", "n", "backend", "precision", "image_size", "noise_pct"):
        assert key in report, key
    assert report["n"] == 6 and report["backend"] == "torch" and report["image_size"] == 32
    assert (out / "predicted_vs_measured.png").stat().st_size > 1000
    assert main(args) == 2  # an existing report is not replaced without --overwrite
    assert main(args + ["--overwrite"]) == 0

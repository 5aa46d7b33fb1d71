"""The one timer: statistics, backends, recorded precision and the busy-machine guard."""
import subprocess
import sys
import time
import warnings

import pytest
import torch
from torch import nn

from segnas_lite import timing as T


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()


def test_median_and_p90_use_nearest_rank():
    median, p90 = T.summarize_times([5.0, 1.0, 2.0, 4.0, 3.0, 10.0, 6.0, 7.0, 8.0, 9.0, 100.0])
    assert median == 6.0
    assert p90 == 10.0  # rank round(0.9 * 10) = 9 of 0..10


def test_noise_is_the_median_relative_difference():
    assert T.noise_pct([10.0, 20.0, 30.0], [10.0, 22.0, 30.0]) == pytest.approx(0.0)
    assert T.noise_pct([10.0, 20.0, 30.0], [11.0, 22.0, 33.0]) == pytest.approx(100 * 2 / 21)


def test_torch_timing_is_sane_and_restores_threads():
    before = torch.get_num_threads()
    result = T.time_module(tiny(), (1, 3, 32, 32), backend="torch", threads=1, warmup=1, runs=5)
    assert torch.get_num_threads() == before
    assert 0 < result.median_ms <= result.p90_ms
    assert result.runs == 5 and len(result.times_ms) == 5
    assert result.backend == "torch" and result.precision == "f32" and result.threads == 1


def test_runtime_layers_show_the_reorders_an_op_pays_alone():
    conv = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()).eval()
    alone = T.prepare(conv, (1, 16, 16, 16), backend="openvino", threads=1)
    layers = T.runtime_layers(alone)
    assert layers.get("Convolution") == 1  # batch norm and ReLU were fused into it
    assert "BatchNormalization" not in layers and "Const" not in layers
    assert layers.get("Reorder", 0) >= 1  # plain NCHW in and out, blocked layout inside
    with pytest.raises(T.TimingError, match="backend='openvino'"):
        T.runtime_layers(T.prepare(conv, (1, 16, 16, 16), backend="torch", threads=1))


def test_call_overhead_times_an_almost_empty_network():
    result = T.call_overhead(backend="torch", threads=1, runs=20)
    assert result.backend == "torch" and result.runs == 20
    assert 0 < result.median_ms <= result.p90_ms


def test_openvino_timing_records_the_precision_that_ran():
    result = T.time_module(tiny(), (1, 3, 32, 32), backend="openvino", precision="f32", threads=1,
                           warmup=1, runs=5)
    assert result.backend == "openvino" and result.precision == "f32"
    assert 0 < result.median_ms <= result.p90_ms
    # bf16 runs as bf16 only where the CPU supports it; either way the record says which
    other = T.time_module(tiny(), (1, 3, 32, 32), backend="openvino", precision="bf16", threads=1,
                          warmup=0, runs=2)
    supports = "BF16" in T.ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert other.precision == ("bf16" if supports else "f32")


def test_bad_requests_raise_timing_error():
    with pytest.raises(T.TimingError, match="backend"):
        T.time_module(tiny(), (1, 3, 8, 8), backend="tensorrt")
    with pytest.raises(T.TimingError, match="f32 only"):
        T.time_module(tiny(), (1, 3, 8, 8), backend="torch", precision="bf16")
    with pytest.raises(T.TimingError, match="runs"):
        T.time_torch(tiny(), (1, 3, 8, 8), runs=0)
    with pytest.raises(T.TimingError, match="precision"):
        T.compile_openvino("missing.xml", precision="fp8")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_load_monitor_sees_another_process_and_warns():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        with pytest.warns(T.BusyMachineWarning, match="busy"):
            with T.LoadMonitor(what="the test") as monitor:
                time.sleep(1.0)
    finally:
        hog.kill()
        hog.wait()
    report = monitor.report
    assert report.other_cores >= 0.5  # the spinning process takes about one core
    assert report.busy and report.to_dict()["busy"] is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_load_monitor_does_not_count_our_own_work():
    busy_before, started = T._cpu_seconds()[0], time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", T.BusyMachineWarning)  # other tests may run beside us
        with T.LoadMonitor() as monitor:
            deadline = time.perf_counter() + 0.5
            while time.perf_counter() < deadline:  # about one core of our own work
                pass
    machine_cores = (T._cpu_seconds()[0] - busy_before) / (time.perf_counter() - started)
    assert monitor.report.other_cores is not None
    assert monitor.report.other_cores <= machine_cores - 0.7  # our own share was subtracted


@pytest.mark.slow
def test_our_timer_agrees_with_benchmark_app(tmp_path):
    """The independent check: OpenVINO's own tool, same IR and settings, within 10% (quiet machine)."""
    from segnas_lite.deploy.export import save_ir, to_openvino
    from segnas_lite.nas import Genotype, build_child, seed_space
    space = seed_space()
    child = build_child(Genotype.uniform(space, "mbv3_3x3"), num_classes=2).eval()
    xml = save_ir(to_openvino(child, input_size=(256, 256)), tmp_path / "model.xml",
                  compress_to_fp16=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", T.BusyMachineWarning)
        with T.LoadMonitor() as monitor:
            result = T.crosscheck(xml, (1, 3, 256, 256), threads=2, rounds=3, seconds=3)
    if monitor.report.busy:
        pytest.skip(f"machine busy while timing ({monitor.report.to_dict()}): not comparable")
    assert result["ratio"] == pytest.approx(1.0, abs=0.10)


def test_a_change_of_machine_speed_marks_the_run_busy():
    steady = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.21)
    slowed = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.28)
    assert steady.speed_change_pct == 5.0 and not steady.busy
    assert slowed.speed_change_pct == 40.0 and slowed.busy
    assert T.speed_probe_ms() > 0


def test_the_openvino_probe_catches_a_drift_the_matrix_product_misses():
    drifted = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.20,
                           ov_probe_before_ms=0.30, ov_probe_after_ms=0.45)
    assert drifted.speed_change_pct == 0.0 and drifted.ov_speed_change_pct == 50.0
    assert drifted.busy and drifted.to_dict()["ov_speed_change_pct"] == 50.0
    with T.LoadMonitor(warn=False, ov_threads=1) as monitor:
        pass
    report = monitor.report
    assert report.ov_probe_before_ms > 0 and report.ov_probe_after_ms > 0
    assert T.LoadMonitor(warn=False).__enter__()._ov is None  # only when asked
    assert T.openvino_probe_ms(threads=1) > 0

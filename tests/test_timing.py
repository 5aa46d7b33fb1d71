"""The one timer: statistics, the torch loop, the busy-machine guard (OpenVINO: test_deploy_bench)."""
import subprocess
import sys
import time
import warnings

import pytest
import torch
from torch import nn

from segnas_lite import timing as T
from segnas_lite.timing.load import _cpu_seconds


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
    result = T.time_torch(tiny(), (1, 3, 32, 32), threads=1, warmup=1, runs=5)
    assert torch.get_num_threads() == before
    assert 0 < result.median_ms <= result.p90_ms
    assert result.runs == 5 and len(result.times_ms) == 5
    assert result.backend == "torch" and result.precision == "f32" and result.threads == 1


def test_time_each_warms_up_on_the_first_input_then_times_each_once():
    calls = []
    outputs, timing = T.time_each(lambda x: calls.append(x) or 2 * x, [1, 2, 3], backend="test-each",
                                  precision="f32", threads=1, warmup=2)
    assert outputs == [2, 4, 6]
    assert calls[-3:] == [1, 2, 3] and set(calls[:-3]) == {1}  # spin and warm-up: the first input
    assert len(calls) >= 3 + 2
    assert timing.runs == 3 and len(timing.times_ms) == 3 and timing.median_ms <= timing.p90_ms
    assert (timing.backend, timing.precision, timing.threads) == ("test-each", "f32", 1)
    with pytest.raises(T.TimingError, match="input"):
        T.time_each(lambda x: x, [], backend="test-each", precision="f32", threads=1)


def test_bad_requests_raise_timing_error():
    with pytest.raises(T.TimingError, match="runs"):
        T.time_torch(tiny(), (1, 3, 8, 8), threads=1, runs=0)


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
    busy_before, started = _cpu_seconds()[0], time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", T.BusyMachineWarning)  # other tests may run beside us
        with T.LoadMonitor() as monitor:
            deadline = time.perf_counter() + 0.5
            while time.perf_counter() < deadline:  # about one core of our own work
                pass
    machine_cores = (_cpu_seconds()[0] - busy_before) / (time.perf_counter() - started)
    assert monitor.report.other_cores is not None
    assert monitor.report.other_cores <= machine_cores - 0.7  # our own share was subtracted


def test_a_change_of_machine_speed_marks_the_run_busy():
    steady = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.21)
    slowed = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.28)
    assert steady.speed_change_pct == 5.0 and not steady.busy
    assert slowed.speed_change_pct == 40.0 and slowed.busy
    assert T.speed_probe_ms() > 0


def test_passes_that_disagree_mark_the_run_busy_though_both_probes_agree():
    """A drift between the probes (they run only before and after) shows in the block's own passes."""
    def report(noise, paced=False):
        return T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.20,
                            paced=paced, repeat_noise_pct=noise)
    assert not report(None).busy and not report(T.REPEAT_NOISE_PCT - 1).busy
    assert report(11.3).busy and report(11.3, paced=True).busy  # a paced clock does not excuse it
    assert report(11.3).to_dict()["repeat_noise_pct"] == 11.3
    with pytest.warns(T.BusyMachineWarning, match=r"repeat noise 11.3%"):
        with T.LoadMonitor(what="validation") as monitor:
            monitor.repeat_noise_pct = 11.3  # what nas.predictor.validate sets from its passes
    assert monitor.report.busy and monitor.report.repeat_noise_pct == 11.3


def test_the_openvino_probe_catches_a_drift_the_matrix_product_misses():
    drifted = T.LoadReport(0.5, 0.5, 0.0, 10.0, 0.0, probe_before_ms=0.20, probe_after_ms=0.20,
                           ov_probe_before_ms=0.30, ov_probe_after_ms=0.45)
    assert drifted.speed_change_pct == 0.0 and drifted.ov_speed_change_pct == 50.0
    assert drifted.busy and drifted.to_dict()["ov_speed_change_pct"] == 50.0
    assert T.LoadMonitor(warn=False).__enter__()._ov is None  # only when asked
    with T.LoadMonitor(warn=False, ov_probe=lambda: 0.5) as monitor:  # deploy passes OpenVINO's
        pass
    assert monitor.report.ov_probe_before_ms == monitor.report.ov_probe_after_ms == 0.5

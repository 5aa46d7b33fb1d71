"""Timing a module on a backend (deploy.bench) and OpenVINO's side of the timer (deploy.openvino):
conversion and compilation for timing, the precision that really ran, the OpenVINO probe, and the
cross-check against OpenVINO's own benchmark_app."""
import warnings

import pytest
import torch
from torch import nn

from segnas_lite import timing as T
from segnas_lite.deploy import bench as B
from segnas_lite.deploy import openvino as OV


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()


def test_torch_backend_is_the_timers_torch_loop():
    before = torch.get_num_threads()
    result = B.time_module(tiny(), (1, 3, 32, 32), backend="torch", threads=1, warmup=1, runs=5)
    assert torch.get_num_threads() == before
    assert 0 < result.median_ms <= result.p90_ms
    assert result.runs == 5 and len(result.times_ms) == 5
    assert result.backend == "torch" and result.precision == "f32" and result.threads == 1


def test_runtime_layers_show_the_reorders_an_op_pays_alone():
    conv = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()).eval()
    alone = B.prepare(conv, (1, 16, 16, 16), backend="openvino", threads=1)
    layers = OV.runtime_layers(alone)
    assert layers.get("Convolution") == 1  # batch norm and ReLU were fused into it
    assert "BatchNormalization" not in layers and "Const" not in layers
    assert layers.get("Reorder", 0) >= 1  # plain NCHW in and out, blocked layout inside
    with pytest.raises(T.TimingError, match="backend='openvino'"):
        OV.runtime_layers(B.prepare(conv, (1, 16, 16, 16), backend="torch", threads=1))


def test_call_overhead_times_an_almost_empty_network():
    result = B.call_overhead(backend="torch", threads=1, runs=20)
    assert result.backend == "torch" and result.runs == 20
    assert 0 < result.median_ms <= result.p90_ms


def test_openvino_timing_records_the_precision_that_ran():
    result = B.time_module(tiny(), (1, 3, 32, 32), backend="openvino", precision="f32", threads=1,
                           warmup=1, runs=5)
    assert result.backend == "openvino" and result.precision == "f32"
    assert 0 < result.median_ms <= result.p90_ms
    # bf16 runs as bf16 only where the CPU supports it; either way the record says which
    other = B.time_module(tiny(), (1, 3, 32, 32), backend="openvino", precision="bf16", threads=1,
                          warmup=0, runs=2)
    supports = "BF16" in OV.ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert other.precision == ("bf16" if supports else "f32")


def test_bad_requests_raise_timing_error():
    with pytest.raises(T.TimingError, match="backend"):
        B.time_module(tiny(), (1, 3, 8, 8), backend="tensorrt")
    with pytest.raises(T.TimingError, match="f32 only"):
        B.time_module(tiny(), (1, 3, 8, 8), backend="torch", precision="bf16")
    with pytest.raises(T.TimingError, match="precision"):
        OV.compile_openvino("missing.xml", precision="fp8")


def test_the_load_monitor_runs_the_openvino_probe_it_is_given():
    with T.LoadMonitor(warn=False, ov_probe=OV.openvino_probe(threads=1)) as monitor:
        pass
    report = monitor.report
    assert report.ov_probe_before_ms > 0 and report.ov_probe_after_ms > 0
    assert OV.openvino_probe_ms(threads=1) > 0


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
            result = B.crosscheck(xml, (1, 3, 256, 256), threads=2, rounds=3, seconds=3)
    if monitor.report.busy:
        pytest.skip(f"machine busy while timing ({monitor.report.to_dict()}): not comparable")
    assert result["ratio"] == pytest.approx(1.0, abs=0.10)


def test_a_model_the_cpu_plugin_cannot_compile_is_a_named_error(monkeypatch):
    class RefusingCore:  # the CPU plugin's answer for an int8 layer without a kernel on this CPU
        def compile_model(self, model, device, config):
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\n"
                               "Exception from src/inference/src/dev/plugin.cpp:54:\n"
                               "could not create a primitive descriptor for a convolution")

    from segnas_lite.deploy.export import to_openvino
    model = to_openvino(nn.Conv2d(3, 2, 1), input_size=(8, 8))
    monkeypatch.setattr(OV, "ov_core", lambda: RefusingCore())
    with pytest.raises(OV.CompileError, match="could not create a primitive.*precision 'f32'"):
        OV.compile_openvino(model, precision="default")

"""The one timer (``timer``), the busy-machine guard (``load``) and the cross-check against
OpenVINO's ``benchmark_app`` (``benchmark_tool``), and the reference-paced clock (``pace``).

This layer times prepared calls; it compiles nothing. Converting and compiling for OpenVINO, and
"time this module on this backend", live above it in ``segnas_lite.deploy`` (``openvino``,
``bench``).
"""
from segnas_lite.timing.benchmark_tool import BenchmarkAppError, benchmark_app, find_benchmark_app
from segnas_lite.timing.load import (BUSY_CORES, REPEAT_NOISE_PCT, SPEED_CHANGE_PCT, STEAL_CORES,
                                     BusyMachineWarning, LoadMonitor, LoadReport, load_average,
                                     speed_probe_ms)
from segnas_lite.timing.timer import (Runner, Timing, TimingError, noise_pct, summarize_times,
                                      time_each, time_runner, time_torch)
from segnas_lite.timing.pace import Pacer, clock_settings, pacing

__all__ = [
    "BUSY_CORES", "REPEAT_NOISE_PCT", "SPEED_CHANGE_PCT", "STEAL_CORES", "BenchmarkAppError", "BusyMachineWarning",
    "LoadMonitor", "LoadReport", "Pacer", "Runner", "Timing", "TimingError",
    "benchmark_app", "clock_settings", "find_benchmark_app", "load_average", "noise_pct", "pacing", "speed_probe_ms",
    "summarize_times", "time_each", "time_runner", "time_torch",
]

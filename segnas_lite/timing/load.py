"""How loaded the machine was while something was timed: the busy-machine guard.

A latency taken while another process used the CPU, while a virtual machine's host took time away,
or while the machine itself changed speed is not comparable with one taken on a quiet machine.
:class:`LoadMonitor` measures all three around a ``with`` block and warns
(:class:`BusyMachineWarning`) when any passes its threshold, so a disturbed number is marked and
not quoted.

A *paced* timing (inside ``timing.pace.pacing``) reads every call against a reference called in the
same moments, which cancels the host's steal time and a change of machine speed: there only other
processes make it busy (they compete with one call and not the next). Steal and speed are still
recorded.
"""
from __future__ import annotations

import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from segnas_lite.timing.timer import TorchThreads, active_pacer, wall_clock

BUSY_CORES = 0.25  # other processes using more than a quarter of a core make a run "busy"
STEAL_CORES = 0.1  # so does a VM host taking a tenth of a core from us
SPEED_CHANGE_PCT = 15.0  # so does the machine itself running a fixed probe that much slower/faster
REPEAT_NOISE_PCT = 5.0  # so do the timed block's own repeated passes disagreeing by that much


class BusyMachineWarning(UserWarning):
    """Timings were taken while other processes used the CPU."""


# --------------------------------------------------------------------------- probes
def load_average() -> float:
    """The 1-minute load average (0.0 where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return 0.0


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, stolen) CPU seconds since boot from ``/proc/stat``, or None off Linux.

    Busy = user + nice + system + irq + softirq of every process. Stolen: time a virtual machine's
    host gave our virtual CPUs to someone else (the noisy neighbour no process list shows)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields] + [0] * 8
    hz = os.sysconf("SC_CLK_TCK")
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / hz, ticks[7] / hz


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def speed_probe_ms() -> float:
    """Median time (ms) of a fixed single-threaded workload (a 192 x 192 matrix product).

    Taken before and after a measurement, it shows when the machine itself got slower or faster
    (a virtual CPU's host throttling, frequency scaling) even though no process and no steal time
    says so: seen here as 40% between two minutes). The best of three short batches 20 ms apart
    counts, so a single hiccup of a few milliseconds (seen once as a 13x slower batch) is not taken
    for a change of speed."""
    a = torch.randn(192, 192, generator=torch.Generator().manual_seed(0))
    medians = []
    with TorchThreads(1):
        for batch in range(3):
            if batch:
                time.sleep(0.02)
            times = []
            for _ in range(40):
                start = time.perf_counter()
                torch.mm(a, a)
                times.append((time.perf_counter() - start) * 1e3)
            medians.append(statistics.median(times))
    return round(min(medians), 4)


# --------------------------------------------------------------------------- the report
@dataclass
class LoadReport:
    """How loaded the machine was while something was timed."""

    load_before: float
    load_after: float
    other_cores: float | None  # mean cores used by OTHER processes (None where unknown)
    seconds: float
    steal_cores: float | None = None  # mean cores the VM host took away (None where unknown)
    probe_before_ms: float | None = None  # ``speed_probe_ms`` before and after
    probe_after_ms: float | None = None
    ov_probe_before_ms: float | None = None  # ``LoadMonitor(ov_probe=)`` before and after (if given)
    ov_probe_after_ms: float | None = None
    paced: bool = False  # timed on a reference-paced clock: steal and speed changes cancel out
    repeat_noise_pct: float | None = None  # the block's own repeat noise, where the caller gave it

    @staticmethod
    def _change(before: float | None, after: float | None) -> float | None:
        if not before or after is None:
            return None
        return round(100.0 * (after / before - 1.0), 1)

    @property
    def speed_change_pct(self) -> float | None:
        return self._change(self.probe_before_ms, self.probe_after_ms)

    @property
    def ov_speed_change_pct(self) -> float | None:
        return self._change(self.ov_probe_before_ms, self.ov_probe_after_ms)

    @property
    def busy(self) -> bool:
        changes = [c for c in (self.speed_change_pct, self.ov_speed_change_pct) if c is not None]
        if self.other_cores is not None and self.other_cores > BUSY_CORES:
            return True
        if self.repeat_noise_pct is not None and self.repeat_noise_pct > REPEAT_NOISE_PCT:
            return True  # the probes before and after can both miss a drift in between
        if self.paced:
            return False
        return ((self.steal_cores is not None and self.steal_cores > STEAL_CORES)
                or any(abs(c) > SPEED_CHANGE_PCT for c in changes))

    def to_dict(self) -> dict:
        return {**asdict(self), "speed_change_pct": self.speed_change_pct,
                "ov_speed_change_pct": self.ov_speed_change_pct, "busy": self.busy}


# --------------------------------------------------------------------------- the monitor
class LoadMonitor:
    """Context manager: measures the CPU used by other processes during the ``with`` block.

    The load average alone cannot tell: our own benchmark threads raise it. Here the machine's busy
    CPU time (``/proc/stat``) minus this process's own CPU time, divided by the wall time, is the
    number of cores something else took; on a virtual machine the host's "steal" time is counted
    too. ``report`` is set on exit; ``warn=True`` warns when busy.

    ``repeat_noise_pct``: a block that times the same networks in several passes sets it before
    the block ends (``nas.measure.repeat_noise``). The probes run only before and after the block;
    passes that disagree by more than ``REPEAT_NOISE_PCT`` show a drift in between, so the block is
    busy too.

    ``ov_probe``: a second speed probe (a no-argument call returning ms) taken before and after,
    for a drift the matrix product misses. The deployment layer passes OpenVINO's:
    ``LoadMonitor(ov_probe=segnas_lite.deploy.openvino.openvino_probe(threads))``.
    """

    def __init__(self, *, warn: bool = True, what: str = "timing",
                 ov_probe: Callable[[], float] | None = None) -> None:
        self.warn, self.what, self.ov_probe = warn, what, ov_probe
        self.report: LoadReport | None = None
        self.repeat_noise_pct: float | None = None

    def _ov_probe(self) -> float | None:
        with wall_clock():
            return None if self.ov_probe is None else self.ov_probe()

    def __enter__(self) -> "LoadMonitor":
        self._paced = active_pacer() is not None
        self._ov = self._ov_probe()
        self._load, self._probe = load_average(), speed_probe_ms()
        self._cpu, self._own, self._wall = _cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        cpu = _cpu_seconds()
        other = steal = None
        if cpu is not None and self._cpu is not None and wall > 0:
            other = max(0.0, (cpu[0] - self._cpu[0]) - (_own_cpu_seconds() - self._own)) / wall
            other, steal = round(other, 3), round((cpu[1] - self._cpu[1]) / wall, 3)
        self.report = LoadReport(self._load, load_average(), other, round(wall, 3), steal,
                                 self._probe, speed_probe_ms(), self._ov, self._ov_probe(),
                                 self._paced, self.repeat_noise_pct)
        if self.warn and self.report.busy:
            warnings.warn(f"the machine was busy during {self.what}: other processes used "
                          f"{other} cores, the VM host took {steal}, a fixed probe changed speed "
                          f"by {self.report.speed_change_pct}% (OpenVINO probe: "
                          f"{self.report.ov_speed_change_pct}%; load average "
                          f"{self.report.load_after}; repeat noise {self.repeat_noise_pct}%); "
                          "these latencies are disturbed: do not "
                          "quote them, re-run on a quiet machine", BusyMachineWarning, stacklevel=2)

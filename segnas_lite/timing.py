"""The one timer: every latency figure in segnas_lite is measured here.

A latency number is only worth comparing when it was taken the same way each time, so there is one
recipe, for PyTorch and OpenVINO alike:

1. **pinned threads**: PyTorch's intra-op pool is set to ``threads`` for the measurement and restored
   after; OpenVINO gets ``INFERENCE_NUM_THREADS``. Fewer threads than cores leaves room for noise,
   more than cores adds it;
2. **warm-up**: ``warmup`` untimed runs, plus once per process a short spin (the first calls pay for
   thread-pool start-up and allocator growth: 158 ms were seen for a 0.3 ms op);
3. **a pre-allocated request**: OpenVINO runs a synchronous infer request whose input tensor is set
   once, so the loop times inference, not Python-side copies;
4. **median and p90** of ``runs`` timed calls, best median over ``rounds`` (a round disturbed by
   another process is dropped instead of averaged in);
5. **what was measured**: the compiled model's actual ``INFERENCE_PRECISION_HINT`` (bf16 on CPUs with
   AVX-512 BF16 unless f32 is asked for), the thread count, and how much CPU *other* processes used
   meanwhile (:class:`LoadMonitor`), so a busy machine is seen, marked and not quoted.

``compile_openvino`` is the package's only way to compile for the CPU plugin, with one
``openvino.Core`` per process (creating a Core loads the plugins, which is slow).
"""
from __future__ import annotations

import functools
import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from segnas_lite.errors import SegnasError

BACKENDS = ("torch", "openvino")
PRECISIONS = ("f32", "bf16", "default")  # OpenVINO's INFERENCE_PRECISION_HINT; "default" = plugin's
HINTS = ("LATENCY", "THROUGHPUT")
BUSY_CORES = 0.25  # other processes using more than a quarter of a core make a run "busy"
STEAL_CORES = 0.1  # so does a VM host taking a tenth of a core from us
SPEED_CHANGE_PCT = 15.0  # so does the machine itself running a fixed probe that much slower/faster


class TimingError(SegnasError, ValueError):
    """A timing request that cannot work (unknown backend or precision, no runs)."""


# --------------------------------------------------------------------------- the machine's load
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


def speed_probe_ms() -> float:
    """Median time (ms) of a fixed single-threaded workload (a 192 x 192 matrix product).

    Taken before and after a measurement, it shows when the machine itself got slower or faster
    (a virtual CPU's host throttling, frequency scaling) even though no process and no steal time
    says so: seen here as 40% between two minutes). The best of three short batches 20 ms apart
    counts, so a single hiccup of a few milliseconds (seen once as a 13x slower batch) is not taken
    for a change of speed."""
    a = torch.randn(192, 192, generator=torch.Generator().manual_seed(0))
    medians = []
    with _TorchThreads(1):
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


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


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
    ov_probe_before_ms: float | None = None  # ``openvino_probe_ms`` before and after (if asked)
    ov_probe_after_ms: float | None = None

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
        return ((self.other_cores is not None and self.other_cores > BUSY_CORES)
                or (self.steal_cores is not None and self.steal_cores > STEAL_CORES)
                or any(abs(c) > SPEED_CHANGE_PCT for c in changes))

    def to_dict(self) -> dict:
        return {**asdict(self), "speed_change_pct": self.speed_change_pct,
                "ov_speed_change_pct": self.ov_speed_change_pct, "busy": self.busy}


class LoadMonitor:
    """Context manager: measures the CPU used by other processes during the ``with`` block.

    The load average alone cannot tell: our own benchmark threads raise it. Here the machine's busy
    CPU time (``/proc/stat``) minus this process's own CPU time, divided by the wall time, is the
    number of cores something else took; on a virtual machine the host's "steal" time is counted
    too. ``report`` is set on exit; ``warn=True`` warns when busy.
    """

    def __init__(self, *, warn: bool = True, what: str = "timing",
                 ov_threads: int | None = None) -> None:
        self.warn, self.what, self.ov_threads = warn, what, ov_threads
        self.report: LoadReport | None = None

    def _ov_probe(self) -> float | None:
        return None if self.ov_threads is None else openvino_probe_ms(threads=self.ov_threads)

    def __enter__(self) -> "LoadMonitor":
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
                                 self._probe, speed_probe_ms(), self._ov, self._ov_probe())
        if self.warn and self.report.busy:
            warnings.warn(f"the machine was busy during {self.what}: other processes used "
                          f"{other} cores, the VM host took {steal}, a fixed probe changed speed "
                          f"by {self.report.speed_change_pct}% (OpenVINO probe: "
                          f"{self.report.ov_speed_change_pct}%; load average "
                          f"{self.report.load_after}); these latencies are disturbed: do not "
                          "quote them, re-run on a quiet machine", BusyMachineWarning, stacklevel=2)


class BusyMachineWarning(UserWarning):
    """Timings were taken while other processes used the CPU."""


# --------------------------------------------------------------------------- results
@dataclass
class Timing:
    """Latency of one input, in milliseconds."""

    median_ms: float
    p90_ms: float
    runs: int
    threads: int | None
    backend: str
    precision: str  # the precision that actually ran: "f32", "bf16", ... ("f32" for PyTorch)
    times_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms

    def to_text(self) -> str:
        return (f"median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, {self.fps:.1f} FPS "
                f"({self.backend} {self.precision}, {self.runs} runs, {self.threads} threads)")


def summarize_times(times_ms: Sequence[float]) -> tuple[float, float]:
    """(median, 90th percentile) of a list of times (nearest-rank percentile)."""
    ordered = sorted(times_ms)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(ordered), p90


def noise_pct(first_ms: Sequence[float], second_ms: Sequence[float]) -> float:
    """Repeat noise: median over networks of |a - b| / mean(a, b), in percent, for the same
    networks timed twice (interleaved, so a slow minute hits both passes alike)."""
    diffs = [abs(a - b) / ((a + b) / 2) for a, b in zip(first_ms, second_ms) if a + b > 0]
    return 100.0 * statistics.median(diffs) if diffs else float("nan")


# --------------------------------------------------------------------------- the timing loop
_WARM: set[str] = set()


def _time_calls(run: Callable[[], object], *, key: str, warmup: int, runs: int,
                rounds: int) -> list[float]:
    """Warm up, then ``rounds`` x ``runs`` timed calls -> the times (ms) of the round with the
    lowest median."""
    if runs < 1 or rounds < 1 or warmup < 0:
        raise TimingError(f"need runs >= 1, rounds >= 1, warmup >= 0; got {runs}, {rounds}, {warmup}")
    if key not in _WARM:  # once per process and backend: thread pools, allocator, caches
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:
            run()
        _WARM.add(key)
    for _ in range(warmup):
        run()
    best: list[float] | None = None
    for _ in range(rounds):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        if best is None or statistics.median(times) < statistics.median(best):
            best = times
    return best


class _TorchThreads:
    """Run PyTorch with ``n`` intra-op threads inside the block, then restore the old setting."""

    def __init__(self, n: int | None) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.old)


def time_torch(module: nn.Module | Callable, input_shape: Sequence[int], *, threads: int | None = 2,
               warmup: int = 5, runs: int = 30, rounds: int = 1) -> Timing:
    """Time PyTorch eager inference of ``module`` on one random input of ``input_shape``."""
    return time_runner(Runner.torch(module, input_shape, threads=threads), warmup=warmup,
                       runs=runs, rounds=rounds)


@dataclass
class Runner:
    """One network made ready to time: a no-argument ``call`` plus what it runs on.

    Preparing (building, converting, compiling) is kept apart from timing, so that several networks
    can be prepared once and then timed in interleaved passes (the same slow minute then hits all of
    them alike, and repeat noise can be measured)."""

    call: Callable[[], object]
    backend: str
    precision: str
    threads: int | None
    compiled: object = None  # OpenVINO: the compiled model, to look inside (``runtime_layers``)

    @classmethod
    def torch(cls, module: nn.Module | Callable, input_shape: Sequence[int], *,
              threads: int | None = 2) -> "Runner":
        x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
        if isinstance(module, nn.Module):
            module.eval()
        return cls(lambda: module(x), "torch", "f32", threads)

    @classmethod
    def openvino(cls, compiled, input_shape: Sequence[int], *, threads: int | None = None) -> "Runner":
        """A synchronous infer request whose input tensor is set once, here."""
        import openvino as ov
        x = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        return cls(request.infer, "openvino", compiled_precision(compiled), threads, compiled)


def time_runner(runner: Runner, *, warmup: int = 5, runs: int = 30, rounds: int = 1) -> Timing:
    """Time a prepared :class:`Runner` (see the module docstring for the recipe)."""
    if runner.backend == "torch":  # threads and inference mode once for the loop, not per call
        with _TorchThreads(runner.threads), torch.inference_mode():
            times = _time_calls(runner.call, key="torch", warmup=warmup, runs=runs, rounds=rounds)
    else:
        times = _time_calls(runner.call, key=runner.backend, warmup=warmup, runs=runs,
                            rounds=rounds)
    median, p90 = summarize_times(times)
    return Timing(median, p90, runs, runner.threads, runner.backend, runner.precision, times)


# --------------------------------------------------------------------------- OpenVINO
# --------------------------------------------------------------------------- frames per second
@dataclass
class Throughput:
    """Frames per second of a stream of OpenVINO inferences."""

    fps: float
    frames: int
    seconds: float
    mode: str  # "sync": one request at a time; "async": ``requests`` in flight
    requests: int
    threads: int | None
    precision: str  # what really ran
    load: dict | None = None  # ``LoadReport.to_dict()`` of the timed stretch

    @property
    def busy(self) -> bool:
        return bool(self.load and self.load.get("busy"))

    def to_text(self) -> str:
        mark = "  [busy: do not quote]" if self.busy else ""
        return (f"{self.mode:<5} {self.fps:7.1f} FPS ({self.frames} frames in {self.seconds:.2f} s, "
                f"{self.requests} request(s), {self.threads} threads, {self.precision}){mark}")


def time_throughput(model, input_shape: Sequence[int], *, mode: str = "sync", frames: int = 200,
                    warmup: int = 10, precision: str = "f32", threads: int | None = 2,
                    requests: int | None = None) -> Throughput:
    """Frames per second of OpenVINO on a stream of ``frames`` inputs of ``input_shape``.

    ``sync``: one infer request compiled with the LATENCY hint, frames back to back: FPS = 1 /
    latency. ``async``: an ``AsyncInferQueue`` of ``requests`` requests (default: the plugin's
    ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``) compiled with the THROUGHPUT hint, which splits the cores
    into streams that each run a frame: more frames per second, each frame a little later. The input
    is prepared once, so the figure is the network's, not the video decoder's. Other processes'
    CPU use is recorded (``load``) as for latencies."""
    import openvino as ov
    if mode not in ("sync", "async"):
        raise TimingError(f"mode must be 'sync' or 'async', got {mode!r}")
    if frames < 1 or warmup < 0:
        raise TimingError(f"need frames >= 1 and warmup >= 0, got {frames}, {warmup}")
    compiled = compile_openvino(model, precision=precision, threads=threads,
                                hint="LATENCY" if mode == "sync" else "THROUGHPUT")
    x = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
    if mode == "sync":
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        count = 1

        def run(n: int) -> None:
            for _ in range(n):
                request.infer()
    else:
        count = int(requests or compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, count)

        def run(n: int) -> None:
            for _ in range(n):
                queue.start_async({0: x})  # blocks until a request is idle
            queue.wait_all()
    run(warmup)
    with LoadMonitor(warn=True, what=f"the {mode} throughput run") as monitor:
        start = time.perf_counter()
        run(frames)
        seconds = time.perf_counter() - start
    return Throughput(frames / seconds, frames, seconds, mode, count, threads,
                      compiled_precision(compiled), monitor.report.to_dict())


@functools.lru_cache(maxsize=1)
def ov_core():
    """The process's one ``openvino.Core``."""
    import openvino as ov
    return ov.Core()


def compile_openvino(model, *, precision: str = "f32", threads: int | None = 2,
                     hint: str | None = "LATENCY"):
    """Compile an ``openvino.Model`` (or a path to an IR ``.xml``) for the CPU plugin.

    - ``precision``: ``"f32"`` (numerically faithful), ``"bf16"`` (forced bfloat16; needs AVX-512 BF16
      or AMX), or ``"default"`` (the plugin chooses: bf16 where supported, else f32).
    - ``threads``: ``INFERENCE_NUM_THREADS``; ``None`` lets OpenVINO use every core.
    - ``hint``: ``PERFORMANCE_HINT``: ``"LATENCY"`` (one image at a time, what a video needs),
      ``"THROUGHPUT"`` (many parallel requests) or ``None`` (set nothing).
    """
    if precision not in PRECISIONS:
        raise TimingError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if hint is not None and hint not in HINTS:
        raise TimingError(f"hint must be one of {HINTS} or None, got {hint!r}")
    config: dict = {}
    if precision != "default":
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if hint is not None:
        config["PERFORMANCE_HINT"] = hint
    if isinstance(model, (str, os.PathLike)):
        model = ov_core().read_model(Path(model))
    elif isinstance(model, nn.Module):
        raise TimingError("compile_openvino takes an openvino.Model or an IR path; convert a "
                          "PyTorch module with segnas_lite.deploy.export.to_openvino first")
    return ov_core().compile_model(model, "CPU", config)


def compiled_precision(compiled) -> str:
    """The inference precision the compiled model really runs ("f32", "bf16", "f16", ...).

    Asking for bf16 on a CPU without AVX-512 BF16 or AMX quietly gives f32: this tells which."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:  # an older runtime where the property is not readable
        return "unknown"
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def time_openvino(compiled, input_shape: Sequence[int], *, warmup: int = 5, runs: int = 30,
                  rounds: int = 1, threads: int | None = None) -> Timing:
    """Time a synchronous infer request of a compiled model on one random input of ``input_shape``
    (``threads`` is only recorded: it was fixed when compiling)."""
    return time_runner(Runner.openvino(compiled, input_shape, threads=threads), warmup=warmup,
                       runs=runs, rounds=rounds)


def prepare(module: nn.Module, input_shape: Sequence[int], *, backend: str = "torch",
            precision: str = "f32", threads: int | None = 2) -> Runner:
    """Make a PyTorch module ready to time on ``backend``: as it is, or converted to OpenVINO and
    compiled with ``precision`` (conversion and compilation are not timed)."""
    if backend not in BACKENDS:
        raise TimingError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "torch":
        if precision not in ("f32", "default"):
            raise TimingError(f"the torch backend runs f32 only, got precision={precision!r}")
        return Runner.torch(module, input_shape, threads=threads)
    import openvino as ov
    module.eval()
    example = torch.zeros(*input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings: the graph is checked by the parity tests
        ov_model = ov.convert_model(module, example_input=example)
    compiled = compile_openvino(ov_model, precision=precision, threads=threads)
    return Runner.openvino(compiled, input_shape, threads=threads)


def time_module(module: nn.Module, input_shape: Sequence[int], *, backend: str = "torch",
                precision: str = "f32", threads: int | None = 2, warmup: int = 5, runs: int = 30,
                rounds: int = 1) -> Timing:
    """Prepare and time a PyTorch module on ``backend`` in one call."""
    runner = prepare(module, input_shape, backend=backend, precision=precision, threads=threads)
    return time_runner(runner, warmup=warmup, runs=runs, rounds=rounds)


@functools.lru_cache(maxsize=4)
def _openvino_probe_runner(threads: int) -> Runner:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 32, 1), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 16, 1))
    return prepare(net, (1, 16, 64, 64), backend="openvino", threads=threads)


def openvino_probe_ms(*, threads: int = 2) -> float:
    """Best median of three short batches of a small fixed OpenVINO model on ``threads`` threads.

    The matrix-product probe (``speed_probe_ms``) misses one kind of drift: on a virtual machine,
    OpenVINO's multi-threaded inference (many short layers, a thread barrier after each) was seen
    switching between latency regimes a minute apart, 2.0 vs 3.0 ms for one network, while the
    matrix product stayed flat. This probe runs the same kind of work; ``LoadMonitor(ov_threads=)``
    takes it before and after. Compiled once per process and thread count."""
    runner = _openvino_probe_runner(int(threads))
    return round(min(time_runner(runner, warmup=5, runs=30).median_ms for _ in range(3)), 4)


def runtime_layers(runner: Runner) -> dict[str, int]:
    """How many layers of each type OpenVINO's compiled graph runs (``{"Convolution": 5, ...}``).

    Reading it shows what the compiler did: convolutions that absorbed their batch norm and
    activation, and ``Reorder`` layers that convert between the plain NCHW layout and the blocked
    layout the CPU kernels use. An op compiled on its own pays those reorders at its input and
    output; in a whole network they happen once.
    """
    if runner.compiled is None:
        raise TimingError("runtime_layers reads an OpenVINO compiled model: prepare the module "
                          "with backend='openvino'")
    counts: dict[str, int] = {}
    for op in runner.compiled.get_runtime_model().get_ops():
        kind = op.get_rt_info()["layerType"].astype(str)
        if kind not in ("Const", "Input", "Output"):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def call_overhead(*, backend: str = "torch", precision: str = "f32", threads: int | None = 2,
                  runs: int = 200) -> Timing:
    """The time of one call of an almost empty network (a 1x1 convolution on 8 x 8 x 8 values).

    What remains is the fixed cost of a call: Python and framework dispatch, and for OpenVINO the
    infer request's own bookkeeping. A latency table that times ten layers separately pays it ten
    times; the network pays it once.
    """
    torch.manual_seed(0)
    tiny = nn.Conv2d(8, 8, 1)
    return time_module(tiny, (1, 8, 8, 8), backend=backend, precision=precision, threads=threads,
                       warmup=20, runs=runs, rounds=3)


# --------------------------------------------------------------------------- cross-check
class BenchmarkAppError(SegnasError, RuntimeError):
    """OpenVINO's ``benchmark_app`` is missing, failed, or printed no latency we can read."""


def find_benchmark_app() -> str | None:
    """``benchmark_app`` (installed with openvino) on PATH or beside this Python, or None."""
    import shutil
    import sys
    beside = Path(sys.executable).parent / "benchmark_app"
    return shutil.which("benchmark_app") or (str(beside) if beside.exists() else None)


def benchmark_app(xml_path: str | os.PathLike, *, threads: int = 2, precision: str = "f32",
                  seconds: int = 10) -> dict:
    """Time an IR with OpenVINO's own ``benchmark_app`` under this module's settings (CPU, sync
    requests, LATENCY hint, ``threads`` threads, ``precision``) -> median/average/min/max ms.

    The independent check of this timer: both should agree within a few percent on a quiet machine.
    benchmark_app takes ``-nthreads`` only with ``-hint none``, so the settings go in a config file.
    """
    import json
    import re
    import subprocess
    import tempfile
    tool = find_benchmark_app()
    if tool is None:
        raise BenchmarkAppError("benchmark_app not found (it comes with the openvino package)")
    settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads)}
    if precision != "default":
        settings["INFERENCE_PRECISION_HINT"] = precision
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        config.write_text(json.dumps({"CPU": settings}))
        command = [tool, "-m", str(xml_path), "-d", "CPU", "-hint", "latency", "-api", "sync",
                   "-load_config", str(config), "-t", str(seconds)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    figures = {key.lower(): float(value) for key, value in
               re.findall(r"(Median|Average|Min|Max):\s+([\d.]+) ms", done.stdout)}
    if done.returncode != 0 or "median" not in figures:
        raise BenchmarkAppError(f"benchmark_app failed (exit {done.returncode}): "
                                f"{(done.stdout + done.stderr)[-800:]}")
    count = re.search(r"Count:\s+(\d+)", done.stdout)
    return {**{f"{k}_ms": v for k, v in figures.items()},
            "iterations": int(count.group(1)) if count else None}


def crosscheck(xml_path: str | os.PathLike, input_shape: Sequence[int], *, threads: int = 2,
               precision: str = "f32", rounds: int = 3, seconds: int = 3) -> dict:
    """This timer against ``benchmark_app`` on one IR, alternating ``rounds`` times (ours, theirs,
    ours, ...), so that a slow minute of the machine hits both; compares the best median of each.

    On a shared virtual machine the speed of the same inference drifts by tens of percent within a
    minute; one reading of each side is not a comparison, alternating rounds are."""
    compiled = compile_openvino(xml_path, precision=precision, threads=threads)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(time_openvino(compiled, input_shape, warmup=20, runs=300,
                                  threads=threads).median_ms)
        theirs.append(benchmark_app(xml_path, threads=threads, precision=precision,
                                    seconds=seconds)["median_ms"])
    ours.append(time_openvino(compiled, input_shape, warmup=20, runs=300,
                              threads=threads).median_ms)
    return {"ours_ms": ours, "benchmark_app_ms": theirs, "ours_best_ms": min(ours),
            "benchmark_app_best_ms": min(theirs), "ratio": min(ours) / min(theirs)}

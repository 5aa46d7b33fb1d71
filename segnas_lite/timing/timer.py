"""The one timer: every latency figure in segnas_lite is measured here.

A latency number is only worth comparing when it was taken the same way each time, so there is one
recipe, for PyTorch and OpenVINO alike (OpenVINO's side is prepared in ``segnas_lite.deploy``):

1. **pinned threads**: PyTorch's intra-op pool is set to ``threads`` for the measurement and restored
   after; OpenVINO gets ``INFERENCE_NUM_THREADS`` when it is compiled. Fewer threads than cores
   leaves room for noise, more than cores adds it;
2. **warm-up**: ``warmup`` untimed runs, plus once per process a short spin (the first calls pay for
   thread-pool start-up and allocator growth: 158 ms were seen for a 0.3 ms op);
3. **a prepared call**: a :class:`Runner` holds a no-argument call whose input was made once (for
   OpenVINO a synchronous infer request whose input tensor is set once), so the loop times
   inference, not Python-side copies;
4. **median and p90** of ``runs`` timed calls, best median over ``rounds`` (a round disturbed by
   another process is dropped instead of averaged in);
   (a stream of frames, each seen once: :func:`time_each` times every call once, after the same
   warm-up);
5. **what was measured**: the precision that really ran, the thread count, and how much CPU *other*
   processes used meanwhile (``timing.load.LoadMonitor``), so a busy machine is seen, marked and
   not quoted.

Inside ``with timing.pace.pacing(pacer):`` step 4 times each call between two calls of a reference
network and reports *paced* ms, a clock a drifting machine speed does not move (``timing.pace``).
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from segnas_lite.errors import SegnasError


class TimingError(SegnasError, ValueError):
    """A timing request that cannot work (unknown backend or precision, no runs)."""


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
    clock: str = "wall"  # "paced": ms of a reference-paced clock (``timing.pace``)

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
_PACER = None  # the active ``timing.pace.Pacer``, set only by ``timing.pace.pacing``


def active_pacer():
    """The ``timing.pace.Pacer`` of the enclosing ``pacing`` block, or None (wall-clock ms)."""
    return _PACER


@contextmanager
def wall_clock() -> Iterator[None]:
    """Wall-clock ms inside the block, even within a pacing block (the speed probes: they measure
    the very drift pacing cancels)."""
    global _PACER
    saved, _PACER = _PACER, None
    try:
        yield
    finally:
        _PACER = saved


def clock_ms(call: Callable[[], object]) -> float:
    """The wall time of one call, in ms."""
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def _warm_up(run: Callable[[], object], *, key: str, warmup: int) -> None:
    """Recipe step 2: once per process and ``key`` a short spin (thread pools, allocator, caches),
    then ``warmup`` untimed calls."""
    if key not in _WARM:
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:
            run()
        _WARM.add(key)
    for _ in range(warmup):
        run()


def _time_calls(run: Callable[[], object], *, key: str, warmup: int, runs: int,
                rounds: int) -> list[float]:
    """Warm up, then ``rounds`` x ``runs`` timed calls -> the times (ms) of the round with the
    lowest median."""
    if runs < 1 or rounds < 1 or warmup < 0:
        raise TimingError(f"need runs >= 1, rounds >= 1, warmup >= 0; got {runs}, {rounds}, {warmup}")
    _warm_up(run, key=key, warmup=warmup)
    pacer = active_pacer()
    if pacer is not None:
        _warm_up(pacer.reference.call, key=f"{key} reference", warmup=warmup)
    best: list[float] | None = None
    for _ in range(rounds):
        times = (pacer.paced_times(run, runs) if pacer is not None
                 else [clock_ms(run) for _ in range(runs)])
        if best is None or statistics.median(times) < statistics.median(best):
            best = times
    return best


class TorchThreads:
    """Run PyTorch with ``n`` intra-op threads inside the block, then restore the old setting."""

    def __init__(self, n: int | None) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.old)


@dataclass
class Runner:
    """One network made ready to time: a no-argument ``call`` plus what it runs on.

    Preparing (building, converting, compiling) is kept apart from timing, so that several networks
    can be prepared once and then timed in interleaved passes (the same slow minute then hits all of
    them alike, and repeat noise can be measured). ``Runner.torch`` prepares a PyTorch module;
    ``segnas_lite.deploy.openvino.openvino_runner`` a compiled OpenVINO model."""

    call: Callable[[], object]
    backend: str
    precision: str
    threads: int | None
    compiled: object = None  # OpenVINO: the compiled model, to look inside (``runtime_layers``)

    @classmethod
    def torch(cls, module: nn.Module | Callable, input_shape: Sequence[int], *,
              threads: int | None) -> "Runner":
        """PyTorch eager on one seeded random input; ``threads`` None keeps PyTorch's setting."""
        x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
        if isinstance(module, nn.Module):
            module.eval()
        return cls(lambda: module(x), "torch", "f32", threads)


def time_runner(runner: Runner, *, warmup: int = 5, runs: int = 30, rounds: int = 1) -> Timing:
    """Time a prepared :class:`Runner` (see the module docstring for the recipe)."""
    pacer = active_pacer()
    if pacer is not None and not pacer.cross_backend and (
            pacer.reference.backend, pacer.reference.threads) != (runner.backend, runner.threads):
        raise TimingError(f"the pacing reference runs {pacer.reference.backend} with "
                          f"{pacer.reference.threads} threads, this network {runner.backend} with "
                          f"{runner.threads}: pace with a reference prepared like the network "
                          "(or Pacer(cross_backend=True), knowing what it means)")
    if runner.backend == "torch":  # threads and inference mode once for the loop, not per call
        with TorchThreads(runner.threads), torch.inference_mode():
            times = _time_calls(runner.call, key="torch", warmup=warmup, runs=runs, rounds=rounds)
    else:
        times = _time_calls(runner.call, key=runner.backend, warmup=warmup, runs=runs,
                            rounds=rounds)
    median, p90 = summarize_times(times)
    return Timing(median, p90, runs, runner.threads, runner.backend, runner.precision, times,
                  clock="wall" if pacer is None else "paced")


def time_each(call: Callable[[object], object], inputs: Sequence, *, backend: str,
              precision: str, threads: int | None, warmup: int = 5) -> tuple[list, Timing]:
    """Time ``call(x)`` once for every ``x`` of ``inputs``: a stream of frames, each seen once.

    The same recipe as :func:`time_runner` (the spin once per process, ``warmup`` untimed calls,
    here on the first input; median and p90), so a stream's figure can be set beside a benchmark's:
    what remains between them is the work ``call`` does around inference (copying, resizing,
    argmax). Returns the outputs in order and the ``Timing`` over the inputs (``runs`` = their
    number; ``threads`` and ``precision`` are only recorded)."""
    inputs = list(inputs)
    if not inputs or warmup < 0:
        raise TimingError(f"need at least one input and warmup >= 0; got {len(inputs)}, {warmup}")
    _warm_up(lambda: call(inputs[0]), key=backend, warmup=warmup)
    outputs, times = [], []
    for x in inputs:
        start = time.perf_counter()
        outputs.append(call(x))
        times.append((time.perf_counter() - start) * 1e3)
    median, p90 = summarize_times(times)
    return outputs, Timing(median, p90, len(times), threads, backend, precision, times)


def time_torch(module: nn.Module | Callable, input_shape: Sequence[int], *, threads: int | None,
               warmup: int = 5, runs: int = 30, rounds: int = 1) -> Timing:
    """Time PyTorch eager inference of ``module`` on one random input of ``input_shape`` with
    ``threads`` intra-op threads (the caller chooses: ``deploy.target.DEFAULT_THREADS``)."""
    return time_runner(Runner.torch(module, input_shape, threads=threads), warmup=warmup,
                       runs=runs, rounds=rounds)

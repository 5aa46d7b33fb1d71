"""Reference pacing: latency as a multiple of a reference network timed in the same moments.

On a shared virtual machine the whole CPU changes speed by tens of percent within seconds (the
host's other tenants, frequency changes), and no process list shows it. Measured on a 2-core
AMD EPYC VM: four subnets called in turn, 100 calls each, in 12 blocks a second apart. The
median time of each net moved 17% (coefficient of variation) from block to block, while the
ratio of two nets' times moved 0.6-1.1%. A drift that slows everything slows both nets alike.

**Pacing** turns that into a clock. Every timed call of the network is bracketed by two calls of a
fixed *reference* network, and its time is read in *paced ms*::

    paced_i = t_i / ((ref_before_i + ref_after_i) / 2) * reference_ms      (one call i)

``reference_ms`` is one number fixed for a whole study (:meth:`Pacer.calibrate` measures it once;
a study records it and passes it back), so paced milliseconds of two sessions, or of two hours,
compare. The timer takes median and p90 of the paced times exactly as it takes them of wall
times (``timing.timer``), so everything that times through the one timer is paced inside a
``with pacing(pacer):`` block, the search's closed loop and the latency table included.

What pacing does not cancel:

* another process on our cores: it competes with one call and not the next, and changes how
  the thread pool runs. ``LoadMonitor`` still counts it, and it still makes a paced run busy;
* a different CPU model: the ratio of two networks differs between CPUs (depthwise against dense
  convolutions, AVX-512 or not). Compare paced figures of one CPU only;
* the cost: each timed call also costs one reference call (about twice the timing time).
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from segnas_lite.timing import timer
from segnas_lite.timing.timer import Runner, TimingError, clock_ms


@dataclass
class Pacer:
    """A prepared reference network and the time (ms) that defines the paced clock's unit.

    By default it paces only networks prepared like it (same backend, same threads): their calls
    meet the machine as the reference's do. ``cross_backend=True`` lets it pace any runner, for a
    comparison across runtimes in one process (``benchmarks/peers.py``: MediaPipe's own runtime
    against our OpenVINO networks): the drift it cancels is the machine's, whatever runs, but a
    runtime with other threads may feel a stolen core differently."""

    reference: Runner
    reference_ms: float
    name: str = "reference"
    cross_backend: bool = False  # may pace networks of another backend or thread count (below)

    def __post_init__(self) -> None:
        if not self.reference_ms > 0:
            raise TimingError(f"reference_ms must be > 0, got {self.reference_ms}")

    @classmethod
    def calibrate(cls, reference: Runner, *, name: str = "reference", blocks: int = 20,
                  runs: int = 20, cross_backend: bool = False) -> "Pacer":
        """Measure ``reference_ms`` once: the fastest median of ``blocks`` blocks of ``runs``
        calls, 0.2 s apart (the machine's undisturbed speed, as near as a few seconds can tell).
        Any value would do as the unit; this one keeps paced ms near a quiet machine's ms."""
        torch_reference = reference.backend == "torch"  # as ``time_runner`` runs it
        with timer.TorchThreads(reference.threads if torch_reference else None), \
                torch.inference_mode(torch_reference):
            for _ in range(10):
                reference.call()
            medians = []
            for block in range(blocks):
                if block:
                    time.sleep(0.2)
                medians.append(statistics.median(clock_ms(reference.call) for _ in range(runs)))
        return cls(reference, round(min(medians), 4), name, cross_backend)

    def describe(self) -> dict:
        """What a record needs to say which clock its milliseconds are on."""
        return {"clock": "paced", "reference": self.name, "reference_ms": self.reference_ms,
                "backend": self.reference.backend, "precision": self.reference.precision,
                "threads": self.reference.threads, "cross_backend": self.cross_backend}

    def paced_times(self, run: Callable[[], object], runs: int) -> list[float]:
        """``runs`` calls of ``run``, each between two reference calls -> paced ms (the module
        docstring's formula)."""
        before = clock_ms(self.reference.call)
        times = []
        for _ in range(runs):
            took = clock_ms(run)
            after = clock_ms(self.reference.call)
            times.append(took / ((before + after) / 2) * self.reference_ms)
            before = after
        return times


def clock_settings() -> dict:
    """The clock of the enclosing timings, for cache keys and records: ``{}`` for wall-clock ms,
    the pacer's ``describe()`` inside a pacing block (paced and wall tables must never mix)."""
    pacer = timer.active_pacer()
    return {} if pacer is None else pacer.describe()


@contextmanager
def pacing(pacer: Pacer) -> Iterator[Pacer]:
    """Inside the block, every timing of the one timer (``time_runner`` and all that calls it) is
    paced by ``pacer`` and reports paced ms (``Timing.clock == "paced"``). Blocks do not nest."""
    if timer.active_pacer() is not None:
        raise TimingError("pacing blocks do not nest: one clock at a time")
    timer._PACER = pacer
    try:
        yield pacer
    finally:
        timer._PACER = None

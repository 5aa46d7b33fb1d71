"""Measuring latency on this CPU: a module, a subnet, many subnets, and the search's cached meter.

Everything is timed by ``segnas_lite.timing`` on a ``deploy.target.Target`` (backend, precision,
threads, image side). Many subnets are timed in interleaved passes (``measure_genotypes``): a
burst of load from another program then slows one pass, not one net, and ``best_of`` the passes is
the undisturbed time; ``repeat_noise`` says how reproducible that is. ``MeasuredLatency`` is the
hard constraint's ``measured`` mode and the closed-loop derivation's meter (``derive.py``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from segnas_lite.deploy.target import DEFAULT_THREADS, Target
from segnas_lite.runio import progress
from segnas_lite.deploy.bench import prepare, time_module
from segnas_lite.deploy.openvino import openvino_probe
from segnas_lite.timing import LoadMonitor, noise_pct, time_runner
from segnas_lite.nas.space import Genotype, MacroConfig, SearchSpace
from segnas_lite.nas.supernet import ChildNet


def measure(module: nn.Module | Callable, input_shape: Sequence[int], *, backend: str = "torch",
            precision: str = "f32", threads: int = DEFAULT_THREADS, warmup: int = 3,
            runs: int = 10, rounds: int = 1) -> float:
    """Median latency (ms) of any ``module`` on one input of ``input_shape`` (e.g. a block inside a
    network at ``(1, 24, 32, 32)``), timed by ``segnas_lite.timing`` (best median of ``rounds``)."""
    return time_module(module, input_shape, backend=backend, precision=precision, threads=threads,
                       warmup=warmup, runs=runs, rounds=rounds).median_ms


def load_monitor(what: str, target: Target) -> LoadMonitor:
    """The load monitor for timings on ``target``: OpenVINO timings also get the OpenVINO probe."""
    return LoadMonitor(what=what, ov_probe=openvino_probe(target.threads)
                       if target.backend == "openvino" else None)


def timed_child(genotype: Genotype, space: SearchSpace, *, num_classes: int = 2,
                macro_config: MacroConfig | dict | None = None) -> ChildNet:
    """The child network of ``genotype`` as latency measurements build it (seeded weights)."""
    torch.manual_seed(0)  # weights do not change the time, but keep runs identical anyway
    return ChildNet(genotype, space=space, num_classes=num_classes,
                    macro_config=MacroConfig.coerce(macro_config))


def measure_genotype(genotype: Genotype, *, space: SearchSpace, target: Target, warmup: int = 3,
                     runs: int = 10, rounds: int = 1, num_classes: int = 2,
                     macro_config: MacroConfig | dict | None = None) -> float:
    """End-to-end latency (ms) of the child network of ``genotype`` on ``target``."""
    child = timed_child(genotype, space, num_classes=num_classes, macro_config=macro_config)
    return measure(child, target.input_shape(), backend=target.backend,
                   precision=target.precision, threads=target.threads, warmup=warmup, runs=runs,
                   rounds=rounds)


def measure_genotypes(genotypes: Sequence[Genotype], *, space: SearchSpace, target: Target,
                      warmup: int = 3, runs: int = 10, repeats: int = 5, num_classes: int = 2,
                      macro_config: MacroConfig | dict | None = None, quiet: bool = False,
                      desc: str = "measure subnets") -> list[list[float]]:
    """End-to-end latency of many subnets, in ``repeats`` interleaved passes -> ``[pass][net]`` ms.

    Every net is prepared (built, converted, compiled) once; then each pass times all of them in
    turn, so a slow second on the machine hits one pass, not one net. ``best_of`` and
    ``repeat_noise`` turn the passes into estimates and their noise."""
    runners = [prepare(timed_child(g, space, num_classes=num_classes, macro_config=macro_config),
                       target.input_shape(), backend=target.backend, precision=target.precision,
                       threads=target.threads)
               for g in progress(genotypes, quiet=quiet, desc=f"{desc}: prepare")]
    jobs = [(r, i) for r in range(repeats) for i in range(len(runners))]
    passes = [[0.0] * len(runners) for _ in range(repeats)]
    for r, i in progress(jobs, quiet=quiet, desc=f"{desc}: time"):
        passes[r][i] = time_runner(runners[i], warmup=warmup, runs=runs).median_ms
    return passes


def best_of(passes: Sequence[Sequence[float]]) -> list[float]:
    """Per net, the fastest of its passes: the time undisturbed by bursts of load elsewhere."""
    return [min(values) for values in zip(*passes)]


def repeat_noise(passes: Sequence[Sequence[float]]) -> float:
    """How reproducible ``best_of`` is: ``timing.noise_pct`` between the best of the even passes and
    the best of the odd ones (two independent estimates of the same nets). NaN with one pass."""
    if len(passes) < 2:
        return float("nan")
    return noise_pct(best_of(passes[0::2]), best_of(passes[1::2]))


class MeasuredLatency:
    """End-to-end measurement on ``target`` with a per-genotype cache (the hard constraint's
    ``measured`` mode)."""

    def __init__(self, space: SearchSpace, *, target: Target, runs: int = 5, rounds: int = 1,
                 macro_config: MacroConfig | dict | None = None, num_classes: int = 2) -> None:
        self.space, self.target, self.runs, self.rounds = space, target, runs, rounds
        self.macro_config, self.num_classes = MacroConfig.coerce(macro_config), num_classes
        self.cache: dict[tuple[str, ...], float] = {}

    def __call__(self, genotype: Genotype) -> float:
        if genotype.ops not in self.cache:
            self.cache[genotype.ops] = self._measure(genotype)
        return self.cache[genotype.ops]

    def remeasure(self, genotype: Genotype) -> float:
        """Measure again, whatever the cache holds; the cache keeps the faster reading."""
        ms = self._measure(genotype)
        self.cache[genotype.ops] = min(ms, self.cache.get(genotype.ops, ms))
        return ms

    def _measure(self, genotype: Genotype) -> float:
        return measure_genotype(genotype, space=self.space, target=self.target, warmup=2,
                                runs=self.runs, rounds=self.rounds, num_classes=self.num_classes,
                                macro_config=self.macro_config)

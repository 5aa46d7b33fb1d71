"""Time a network on a backend: "this module, on torch or on OpenVINO, with these settings".

Everything here prepares (converts, compiles) and then hands the call to the one timer
(``segnas_lite.timing``), so PyTorch and OpenVINO are measured by the same loop:

- :func:`prepare` / :func:`time_module`: a PyTorch module on ``backend`` ("torch" as it is,
  "openvino" converted and compiled with ``precision``);
- :func:`time_openvino`: an already compiled model;
- :func:`benchmark_torch` / :func:`benchmark_openvino`: a segmentation model on one
  (1, 3, H, W) image, the deployment steps' benchmark (an IR's own size by default);
- :func:`call_overhead`: the fixed cost of one call;
- :func:`crosscheck`: this timer against OpenVINO's own ``benchmark_app`` on one IR.
"""
from __future__ import annotations

import os
from typing import Sequence

import openvino as ov
import torch
from torch import nn

from segnas_lite.deploy.export import ExportError, compile_ir, resolve_input_size
from segnas_lite.deploy.openvino import compile_module, compile_openvino, openvino_runner
from segnas_lite.deploy.target import BACKENDS, DEFAULT_THREADS
from segnas_lite.timing import Runner, Timing, TimingError, benchmark_app, time_runner, time_torch


def prepare(module: nn.Module, input_shape: Sequence[int], *, backend: str = "torch",
            precision: str = "f32", threads: int | None = DEFAULT_THREADS) -> Runner:
    """Make a PyTorch module ready to time on ``backend``: as it is, or converted to OpenVINO and
    compiled with ``precision`` (conversion and compilation are not timed)."""
    if backend not in BACKENDS:
        raise TimingError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "torch":
        if precision not in ("f32", "default"):
            raise TimingError(f"the torch backend runs f32 only, got precision={precision!r}")
        return Runner.torch(module, input_shape, threads=threads)
    compiled = compile_module(module, input_shape, precision=precision, threads=threads)
    return openvino_runner(compiled, input_shape, threads=threads)


def time_module(module: nn.Module, input_shape: Sequence[int], *, backend: str = "torch",
                precision: str = "f32", threads: int | None = DEFAULT_THREADS, warmup: int = 5,
                runs: int = 30, rounds: int = 1) -> Timing:
    """Prepare and time a PyTorch module on ``backend`` in one call."""
    runner = prepare(module, input_shape, backend=backend, precision=precision, threads=threads)
    return time_runner(runner, warmup=warmup, runs=runs, rounds=rounds)


def time_openvino(compiled, input_shape: Sequence[int], *, warmup: int = 5, runs: int = 30,
                  rounds: int = 1, threads: int | None = None) -> Timing:
    """Time a synchronous infer request of a compiled model on one random input of ``input_shape``
    (``threads`` is only recorded: it was fixed when compiling)."""
    return time_runner(openvino_runner(compiled, input_shape, threads=threads), warmup=warmup,
                       runs=runs, rounds=rounds)


def call_overhead(*, backend: str = "torch", precision: str = "f32",
                  threads: int | None = DEFAULT_THREADS, runs: int = 200) -> Timing:
    """The time of one call of an almost empty network (a 1x1 convolution on 8 x 8 x 8 values).

    What remains is the fixed cost of a call: Python and framework dispatch, and for OpenVINO the
    infer request's own bookkeeping. A latency table that times ten layers separately pays it ten
    times; the network pays it once.
    """
    torch.manual_seed(0)
    tiny = nn.Conv2d(8, 8, 1)
    return time_module(tiny, (1, 8, 8, 8), backend=backend, precision=precision, threads=threads,
                       warmup=20, runs=runs, rounds=3)


# --------------------------------------------------------------------------- a segmentation model
def benchmark_torch(
    model: nn.Module,
    *,
    input_size: tuple[int, int] = (256, 256),
    threads: int = DEFAULT_THREADS,
    warmup: int = 5,
    runs: int = 30,
) -> Timing:
    """Time ``model`` in PyTorch eager mode on one (1, 3, H, W) image with ``threads`` threads."""
    if runs < 1:
        raise ExportError(f"runs must be >= 1, got {runs}")
    return time_torch(model, (1, 3, *input_size), threads=threads, warmup=warmup, runs=runs)


def benchmark_openvino(
    ov_model_or_path: ov.Model | str | os.PathLike,
    *,
    input_size: tuple[int, int] | None = None,
    precision: str = "f32",
    threads: int | None = DEFAULT_THREADS,
    warmup: int = 5,
    runs: int = 30,
) -> Timing:
    """Time a synchronous infer request on one (1, 3, H, W) image (``input_size`` None = IR's).
    ``Timing.precision`` says which precision really ran (bf16 needs CPU support)."""
    if runs < 1:
        raise ExportError(f"runs must be >= 1, got {runs}")
    compiled = compile_ir(ov_model_or_path, precision=precision, threads=threads)
    input_size = resolve_input_size(compiled, input_size)
    return time_openvino(compiled, (1, 3, *input_size), warmup=warmup, runs=runs, threads=threads)


# --------------------------------------------------------------------------- cross-check
def crosscheck(xml_path: str | os.PathLike, input_shape: Sequence[int], *,
               threads: int = DEFAULT_THREADS, precision: str = "f32", rounds: int = 3,
               seconds: int = 3) -> dict:
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

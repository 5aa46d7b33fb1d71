"""OpenVINO on the CPU: the process's one Core, compiling with a precision, thread count and hint.

``compile_openvino`` is the package's only way to compile for the CPU plugin, with one
``openvino.Core`` per process (creating a Core loads the plugins, which is slow). What comes out is
made ready for the one timer (``segnas_lite.timing``) by :func:`openvino_runner`: a synchronous
infer request whose input tensor is set once.

Precision on a modern Intel CPU: asking for ``"default"`` lets the plugin run bfloat16 on CPUs with
AVX-512 BF16 or AMX; asking for ``"bf16"`` on a CPU without them quietly gives f32.
:func:`compiled_precision` reads back what really runs, and every timing records it;
:func:`ran_precision` adds how many convolutions of a quantised (int8) IR run in int8.

Telemetry: OpenVINO's model converter sends usage statistics unless the consent file says no
(``opt_in_out --opt_out``) or ``CI=true`` is set. :func:`no_telemetry` sets the latter for the length
of one conversion; every conversion in the package goes through it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import openvino as ov
import torch
from torch import nn

from segnas_lite.deploy.target import DEFAULT_THREADS, PRECISIONS
from segnas_lite.errors import SegnasError
from segnas_lite.timing import Runner, TimingError, time_runner

HINTS = ("LATENCY", "THROUGHPUT")


@contextlib.contextmanager
def no_telemetry() -> Iterator[None]:
    """Inside the block OpenVINO's converter sends no telemetry: ``CI=true`` (which
    ``openvino_telemetry`` reads as "decline") is set for the block only, then restored.

    Without it, on a machine with no consent file the converter counts every conversion and may
    start a process to send it, which also disturbs timings taken meanwhile."""
    old = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = old


def convert(module: nn.Module, example: torch.Tensor, **kwargs) -> ov.Model:
    """``ov.convert_model(module, example_input=example, **kwargs)`` without telemetry and without
    the tracer's warnings (the graph is checked by the parity tests): the package's one conversion
    from PyTorch."""
    with no_telemetry(), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return ov.convert_model(module, example_input=example, **kwargs)


class CompileError(SegnasError, RuntimeError):
    """OpenVINO's CPU plugin could not compile a model with the settings asked for on this CPU
    (for example an int8 layer without a kernel for this instruction set)."""


@functools.lru_cache(maxsize=1)
def ov_core() -> ov.Core:
    """The process's one ``openvino.Core``."""
    return ov.Core()


def compile_openvino(model, *, precision: str = "f32", threads: int | None = DEFAULT_THREADS,
                     hint: str | None = "LATENCY") -> ov.CompiledModel:
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
    try:
        return ov_core().compile_model(model, "CPU", config)
    except RuntimeError as error:
        first = next((line for line in str(error).splitlines() if line.strip()
                      and not line.startswith("Exception from src/")), str(error).strip())
        raise CompileError(
            f"OpenVINO's CPU plugin could not compile {model.get_friendly_name()!r} at precision "
            f"{precision!r} on this CPU ({first.strip()[:300]}); try precision 'f32', or a model "
            "without int8 quantisation") from error


def compiled_precision(compiled) -> str:
    """The inference precision the compiled model really runs ("f32", "bf16", "f16", ...).

    Asking for bf16 on a CPU without AVX-512 BF16 or AMX quietly gives f32: this tells which."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:  # an older runtime where the property is not readable
        return "unknown"
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


# convolution-like layers of the CPU plugin's compiled graph (``runtime_layers`` lists them all)
WEIGHTED_LAYERS = ("Convolution", "Deconvolution", "FullyConnected", "MatMul")
INT8 = ("i8", "u8")


def weighted_layer_precisions(compiled) -> dict[str, int]:
    """How many convolution-like layers of the compiled graph run in each precision, as the CPU
    plugin reports it (``runtimePrecision``: "f32", "bf16", "u8", "i8", ...). An int8 IR (NNCF)
    runs its quantised convolutions in u8/i8 whatever the precision hint says."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in WEIGHTED_LAYERS and "runtimePrecision" in info:
            name = info["runtimePrecision"].astype(str).lower()
            counts[name] = counts.get(name, 0) + 1
    return counts


def ran_precision(compiled) -> str:
    """What a compiled model really runs, in words for a report line: the precision of its
    floating-point layers (``compiled_precision``), and for a quantised IR how many of its
    convolutions run in int8, e.g. ``"int8 in 30 of 34 convolutions, the rest f32"``."""
    hint = compiled_precision(compiled)
    counts = weighted_layer_precisions(compiled)
    int8 = sum(n for name, n in counts.items() if name in INT8)
    if not int8:
        return hint
    return f"int8 in {int8} of {sum(counts.values())} convolutions, the rest {hint}"


def compile_module(module: nn.Module, input_shape: Sequence[int], *, precision: str = "f32",
                   threads: int | None = DEFAULT_THREADS) -> ov.CompiledModel:
    """Convert a PyTorch module traced on zeros of ``input_shape`` and compile it for timing
    (no IR written: ``export.to_openvino`` is the way to a file)."""
    module.eval()
    ov_model = convert(module, torch.zeros(*input_shape))
    return compile_openvino(ov_model, precision=precision, threads=threads)


def openvino_runner(compiled, input_shape: Sequence[int], *, threads: int | None = None) -> Runner:
    """A :class:`~segnas_lite.timing.Runner` for a compiled model: a synchronous infer request whose
    input tensor (seeded random, ``input_shape``) is set once, here. ``threads`` is only recorded:
    it was fixed when compiling."""
    x = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x))
    return Runner(request.infer, "openvino", compiled_precision(compiled), threads, compiled)


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


# --------------------------------------------------------------------------- the OpenVINO probe
@functools.lru_cache(maxsize=4)
def _probe_runner(threads: int) -> Runner:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 32, 1), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 16, 1))
    shape = (1, 16, 64, 64)
    return openvino_runner(compile_module(net, shape, threads=threads), shape, threads=threads)


def openvino_probe_ms(*, threads: int = DEFAULT_THREADS) -> float:
    """Best median of three short batches of a small fixed OpenVINO model on ``threads`` threads.

    The matrix-product probe (``timing.speed_probe_ms``) misses one kind of drift: on a virtual
    machine, OpenVINO's multi-threaded inference (many short layers, a thread barrier after each)
    was seen switching between latency regimes a minute apart, 2.0 vs 3.0 ms for one network, while
    the matrix product stayed flat. This probe runs the same kind of work; ``LoadMonitor(ov_probe=
    openvino_probe(threads))`` takes it before and after. Compiled once per process and thread
    count."""
    runner = _probe_runner(int(threads))
    return round(min(time_runner(runner, warmup=5, runs=30).median_ms for _ in range(3)), 4)


def openvino_probe(threads: int = DEFAULT_THREADS) -> Callable[[], float]:
    """The OpenVINO probe on ``threads`` threads as a no-argument call, for ``LoadMonitor(ov_probe=)``."""
    return functools.partial(openvino_probe_ms, threads=threads)

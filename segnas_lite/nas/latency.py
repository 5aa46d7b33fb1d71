"""Latency tables: every (layer, op) of a search space timed in place on this CPU.

ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.3) makes latency differentiable by predicting it from a
table: ``LAT(net) = fixed + sum_l LAT(l, op_l)``. Here each entry is measured *in place*: the op is
built with its layer's real channels and stride and run on an input of the layer's real shape for
the chosen image size. The fixed parts (stem, ASPP, decoder, classifier, final upsampling) are one
more entry. How good the additive model is, is an empirical question: ``validate`` compares it with
end-to-end measurements of random architectures (Spearman rank correlation and mean absolute
percentage error).

Backends: ``"torch"`` (eager, ``torch.set_num_threads(threads)``) and ``"openvino"`` (the module is
converted with ``openvino.convert_model`` and compiled for the CPU with f32 precision, LATENCY hint).
Tables are cached on disk, keyed by CPU model, backend, threads, image size, space and macro widths.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .. import flags
from ..runio import atomic_write_text, progress
from .ops import build_op
from .space import Genotype, MacroConfig, SearchSpace, pad_rows
from .supernet import ChainLayer, ChildNet, SegMacro

BACKENDS = ("torch", "openvino")


class LatencyError(RuntimeError):
    """A latency measurement or table that cannot be used."""


# --------------------------------------------------------------------------- measuring
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _Threads:
    """Context manager: run torch with ``n`` intra-op threads, then restore the old setting."""

    def __init__(self, n: int) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.old)


_PROCESS_WARM: set[str] = set()


def _timed_median(run: Callable[[], object], *, warmup: int, runs: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(module: nn.Module | Callable, input_shape: Sequence[int], *, backend: str = "torch",
            threads: int = 2, warmup: int = 3, runs: int = 10) -> float:
    """Median latency (ms) of ``module`` on one input of ``input_shape`` (e.g. ``(1, 24, 32, 32)``).

    ``module`` is put in eval mode; timing uses ``torch.inference_mode`` for torch and a synchronous
    infer request for OpenVINO.
    """
    if backend not in BACKENDS:
        raise LatencyError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    if isinstance(module, nn.Module):
        module.eval()
    if backend == "torch":
        with _Threads(threads), torch.inference_mode():
            if "torch" not in _PROCESS_WARM:
                # The first timings in a process pay for thread-pool start-up and allocator growth
                # (seen: 158 ms for a 0.3 ms op), so spend a moment warming up once.
                deadline = time.perf_counter() + 0.3
                while time.perf_counter() < deadline:
                    module(x)
                _PROCESS_WARM.add("torch")
            return _timed_median(lambda: module(x), warmup=warmup, runs=runs)
    import openvino as ov
    ov_model = ov.convert_model(module, example_input=x)
    compiled = ov.Core().compile_model(ov_model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    data = x.numpy()
    return _timed_median(lambda: request.infer({0: data}), warmup=warmup, runs=runs)


class _FixedParts(nn.Module):
    """Stem + ASPP + decoder + classifier + upsampling of a macro, on stand-in features.

    ``forward`` runs the real stem on the image, and the real head on zero features of each tap's
    shape, so it costs what the fixed parts of any architecture cost.
    """

    def __init__(self, macro: SegMacro, feature_shapes: dict[int, tuple[int, ...]]) -> None:
        super().__init__()
        self.stem, self.aspp = macro.stem, macro.aspp
        self.decoder, self.classifier = macro.decoder, macro.classifier
        self.head = macro.forward_head
        self.shapes = feature_shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        features = {s: stem.new_zeros(shape) for s, shape in self.shapes.items()}
        return self.head(features, x.shape[-2:]) + stem.mean()


# --------------------------------------------------------------------------- the table
@dataclass
class LatencyTable:
    """``ms[l][i]``: latency of op ``space.layers[l].ops[i]`` in layer l; ``fixed_ms``: the rest."""

    space: str
    ops: list[list[str]]
    ms: list[list[float]]
    fixed_ms: float
    meta: dict = field(default_factory=dict)

    def tensor(self) -> torch.Tensor:
        """``(L, K_max)`` float64 tensor, NaN beyond each layer's ops (for ``expected_latency``)."""
        return torch.from_numpy(pad_rows(self.ms))

    def predict(self, genotype: Genotype) -> float:
        """Predicted end-to-end latency (ms) of ``genotype``."""
        if genotype.space != self.space or len(genotype.ops) != len(self.ops):
            raise LatencyError(f"genotype for space {genotype.space!r} with {len(genotype.ops)} "
                               f"layers does not fit this table ({self.space!r}, {len(self.ops)})")
        return self.fixed_ms + sum(row[names.index(op)] for row, names, op
                                   in zip(self.ms, self.ops, genotype.ops))

    def fastest(self) -> tuple[Genotype, float]:
        """The fastest architecture the table allows and its predicted latency."""
        return self._extreme(min)

    def slowest(self) -> tuple[Genotype, float]:
        """The slowest architecture the table allows and its predicted latency."""
        return self._extreme(max)

    def _extreme(self, pick: Callable) -> tuple[Genotype, float]:
        """Per layer the op whose latency ``pick`` (``min`` or ``max``) chooses; the sum is then
        that extreme of the additive model too."""
        ops = tuple(names[pick(range(len(row)), key=row.__getitem__)]
                    for row, names in zip(self.ms, self.ops))
        genotype = Genotype(self.space, ops)
        return genotype, self.predict(genotype)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "LatencyTable":
        data = json.loads(text)
        return cls(data["space"], data["ops"], data["ms"], float(data["fixed_ms"]),
                   data.get("meta", {}))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LatencyTable":
        return cls.from_json(Path(path).read_text())


def cache_dir() -> Path:
    """``$SEGNAS_CACHE/latency`` (default ``~/.cache/segnas_lite/latency``)."""
    return flags.cache_dir() / "latency"


def table_key(space: SearchSpace, *, backend: str, threads: int, image_size: Sequence[int],
              macro_config: MacroConfig | dict | None = None, settings: dict | None = None) -> str:
    """A readable cache key; the space's layers, the macro widths and ``settings`` (the number of
    classes and the timing settings) are folded into a hash, so changing any of them re-measures."""
    macro = asdict(MacroConfig.coerce(macro_config))
    folded = sorted({**macro, **(settings or {})}.items())
    fingerprint = hashlib.sha1(repr((space.layers, space.stem_channels,
                                     folded)).encode()).hexdigest()[:10]
    cpu = "".join(c if c.isalnum() else "-" for c in cpu_model())[:40]
    h, w = image_size
    return f"{space.name}_{fingerprint}_{backend}_t{threads}_{h}x{w}_{cpu}"


def _table_blocks(space: SearchSpace, image_size: Sequence[int], *, num_classes: int,
                  macro_config: MacroConfig) -> dict:
    """What a table times: ``{(layer, op name): ChainLayer}`` for every op in place, and
    ``"fixed"``: the stem and head of the macro on stand-in features of the real shapes."""
    h, w = image_size
    blocks: dict = {(l, name): ChainLayer(build_op(name, spec.in_ch, spec.out_ch, spec.stride),
                                          spec.residual)
                    for l, spec in enumerate(space.layers) for name in spec.ops}
    macro = ChildNet(Genotype(space.name, tuple(spec.ops[0] for spec in space.layers)),
                     space=space, num_classes=num_classes, macro_config=macro_config).eval()
    with torch.no_grad():
        features = macro.forward_backbone(torch.zeros(1, 3, h, w))
    blocks["fixed"] = _FixedParts(macro, {s: tuple(f.shape) for s, f in features.items()})
    return blocks


def build_table(space: SearchSpace, *, image_size: Sequence[int] = (128, 128),
                backend: str = "torch", threads: int = 2, warmup: int = 3, runs: int = 10,
                rounds: int = 2, num_classes: int = 2,
                macro_config: MacroConfig | dict | None = None, use_cache: bool = True,
                refresh: bool = False, quiet: bool = False) -> LatencyTable:
    """Time every (layer, op) of ``space`` in place and the fixed parts; cache the result on disk.

    ``use_cache=False`` neither reads nor writes the cache; ``refresh=True`` re-measures and
    replaces the cached table (do this when the machine was busy while the cached one was taken:
    timings taken under load can be many times too slow).

    ``macro_config`` (a ``MacroConfig``, or a dict of its fields) gives the macro's widths, so the
    fixed part is timed with the widths the super-net will use.
    """
    macro_config = MacroConfig.coerce(macro_config)
    h, w = image_size
    key = table_key(space, backend=backend, threads=threads, image_size=(h, w),
                    macro_config=macro_config,
                    settings={"num_classes": num_classes, "warmup": warmup, "runs": runs,
                              "rounds": rounds})
    path = cache_dir() / f"{key}.json"
    if use_cache and not refresh and path.exists():
        return LatencyTable.load(path)

    torch.manual_seed(0)
    shapes = space.layer_input_shapes(h, w)
    blocks = _table_blocks(space, (h, w), num_classes=num_classes, macro_config=macro_config)
    # Each entry is the best of ``rounds`` medians taken in separate passes over the whole table,
    # so a burst of load from another program inflates one pass, not the entry.
    best: dict = {}
    jobs = [(r, entry) for r in range(rounds) for entry in blocks]
    for _, entry in progress(jobs, quiet=quiet, desc=f"latency table ({backend})"):
        shape = (1, 3, h, w) if entry == "fixed" else (1, *shapes[entry[0]])
        ms = measure(blocks[entry], shape, backend=backend, threads=threads, warmup=warmup,
                     runs=runs)
        best[entry] = min(ms, best.get(entry, math.inf))
    ms = [[best[(l, name)] for name in spec.ops] for l, spec in enumerate(space.layers)]
    fixed_ms = best["fixed"]
    table = LatencyTable(space.name, [list(spec.ops) for spec in space.layers], ms, fixed_ms, meta={
        "backend": backend, "threads": threads, "image_size": [h, w], "cpu": cpu_model(),
        "warmup": warmup, "runs": runs, "rounds": rounds,
        "statistic": f"min over {rounds} rounds of the median of {runs} runs", "key": key,
        "torch": torch.__version__, "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    if use_cache:
        table.save(path)
    return table


def measure_genotype(genotype: Genotype, *, space: SearchSpace, image_size: Sequence[int],
                     backend: str = "torch", threads: int = 2, warmup: int = 3, runs: int = 10,
                     num_classes: int = 2, macro_config: MacroConfig | dict | None = None) -> float:
    """End-to-end latency (ms) of the child network of ``genotype``, measured on this CPU."""
    torch.manual_seed(0)
    child = ChildNet(genotype, space=space, num_classes=num_classes,
                     macro_config=MacroConfig.coerce(macro_config))
    return measure(child, (1, 3, *image_size), backend=backend, threads=threads, warmup=warmup,
                   runs=runs)


class MeasuredLatency:
    """End-to-end measurement with a per-genotype cache (the hard constraint's ``measured`` mode)."""

    def __init__(self, space: SearchSpace, *, image_size: Sequence[int], backend: str = "torch",
                 threads: int = 2, runs: int = 5, macro_config: MacroConfig | dict | None = None,
                 num_classes: int = 2) -> None:
        self.space, self.image_size, self.backend = space, tuple(image_size), backend
        self.threads, self.runs = threads, runs
        self.macro_config, self.num_classes = MacroConfig.coerce(macro_config), num_classes
        self.cache: dict[tuple[str, ...], float] = {}

    def __call__(self, genotype: Genotype) -> float:
        if genotype.ops not in self.cache:
            self.cache[genotype.ops] = measure_genotype(
                genotype, space=self.space, image_size=self.image_size, backend=self.backend,
                threads=self.threads, warmup=2, runs=self.runs, num_classes=self.num_classes,
                macro_config=self.macro_config)
        return self.cache[genotype.ops]


# --------------------------------------------------------------------------- validation
def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result
    ra, rb = ranks(list(a)), ranks(list(b))
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    norm = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / norm if norm else float("nan")


@dataclass
class PredictorReport:
    """Predicted vs measured latency of random architectures."""

    predicted_ms: list[float]
    measured_ms: list[float]
    genotypes: list[list[str]]
    spearman: float
    mape: float  # mean absolute percentage error, in percent
    meta: dict = field(default_factory=dict)

    def to_text(self) -> str:
        return (f"{len(self.predicted_ms)} random architectures: Spearman rho = {self.spearman:.3f}, "
                f"MAPE = {self.mape:.1f}% (predicted mean {statistics.fmean(self.predicted_ms):.2f} ms"
                f", measured mean {statistics.fmean(self.measured_ms):.2f} ms)")


def validate(table: LatencyTable, space: SearchSpace, *, num_genotypes: int = 30, seed: int = 0,
             image_size: Sequence[int] | None = None, backend: str | None = None,
             threads: int | None = None, runs: int = 10,
             macro_config: MacroConfig | dict | None = None,
             quiet: bool = False) -> PredictorReport:
    """Compare ``table.predict`` with end-to-end measurements on ``num_genotypes`` random genotypes."""
    import random
    macro_config = MacroConfig.coerce(macro_config)
    meta = table.meta
    image_size = tuple(image_size or meta.get("image_size", (128, 128)))
    backend = backend or meta.get("backend", "torch")
    threads = threads or meta.get("threads", 2)
    rng = random.Random(seed)
    genotypes = [space.random_genotype(rng) for _ in range(num_genotypes)]
    predicted, measured = [], []
    for g in progress(genotypes, quiet=quiet, desc="validate predictor"):
        predicted.append(table.predict(g))
        measured.append(measure_genotype(g, space=space, image_size=image_size, backend=backend,
                                         threads=threads, runs=runs, macro_config=macro_config))
    mape = 100 * statistics.fmean(abs(p - m) / m for p, m in zip(predicted, measured))
    return PredictorReport(predicted, measured, [list(g.ops) for g in genotypes],
                           spearman(predicted, measured), mape,
                           meta={"backend": backend, "threads": threads,
                                 "image_size": list(image_size)})

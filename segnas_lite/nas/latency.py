"""Latency tables: every (layer, op) of a search space timed in place, then calibrated.

ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.3) makes latency differentiable by predicting it from a
table: ``LAT(net) = fixed + sum_l LAT(l, op_l)``. ``build_table`` measures each entry *in place*: the
op is built with its layer's real channels and stride and run on an input of the layer's real shape
for the chosen image size; the fixed parts (stem, ASPP, decoder, classifier, upsampling) are one
more entry. ``build_predictor`` then calibrates that table on end-to-end measurements of random
subnets (``calibrate.py``), which the deployment backend needs: on OpenVINO the plain sum cannot
even rank networks. ``validate`` checks a table on subnets it was not fitted on (Spearman rank
correlation, mean absolute percentage error, and the repeat noise of the measurements themselves).

Backends: ``"torch"`` (eager) and ``"openvino"`` (converted, compiled for the CPU with a precision:
``"f32"``, ``"bf16"`` or ``"default"``). All timing goes through ``segnas_lite.timing``. Tables are
cached on disk, keyed by CPU model, backend, precision, threads, image size, space and macro widths.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from segnas_lite.errors import SegnasError
from segnas_lite import flags
from segnas_lite.runio import atomic_write_text, progress, stream_seed
from segnas_lite.timing import PRECISIONS, LoadMonitor, noise_pct, prepare, time_module, time_runner
from segnas_lite.nas.calibrate import Calibration, calibrate, mape
from segnas_lite.nas.ops import build_op
from segnas_lite.nas.space import Genotype, MacroConfig, SearchSpace, pad_rows
from segnas_lite.nas.supernet import ChainLayer, ChildNet, SegMacro

BACKENDS = ("torch", "openvino")


class LatencyError(SegnasError, RuntimeError):
    """A latency measurement or table that cannot be used."""


# --------------------------------------------------------------------------- measuring
def cpu_model() -> str:
    """The CPU's model name (kept here for old imports; see ``flags.cpu_name``)."""
    return flags.cpu_name()


def _check(backend: str, precision: str) -> None:
    if backend not in BACKENDS:
        raise LatencyError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if precision not in PRECISIONS or (backend == "torch" and precision not in ("f32", "default")):
        raise LatencyError(f"precision {precision!r} does not fit backend {backend!r}: torch runs "
                           f"f32; openvino takes one of {PRECISIONS}")


def measure(module: nn.Module | Callable, input_shape: Sequence[int], *, backend: str = "torch",
            precision: str = "f32", threads: int = 2, warmup: int = 3, runs: int = 10,
            rounds: int = 1) -> float:
    """Median latency (ms) of ``module`` on one input of ``input_shape`` (e.g. ``(1, 24, 32, 32)``),
    timed by ``segnas_lite.timing`` (best median of ``rounds``)."""
    _check(backend, precision)
    return time_module(module, input_shape, backend=backend, precision=precision, threads=threads,
                       warmup=warmup, runs=runs, rounds=rounds).median_ms


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


def _monitor(what: str, *, backend: str, threads: int) -> LoadMonitor:
    """The load monitor for timings on ``backend``: OpenVINO timings also get the OpenVINO probe."""
    return LoadMonitor(what=what, ov_threads=threads if backend == "openvino" else None)


def table_key(space: SearchSpace, *, backend: str, threads: int, image_size: Sequence[int],
              precision: str = "f32", macro_config: MacroConfig | dict | None = None,
              settings: dict | None = None) -> str:
    """A readable cache key; the space's layers, the macro widths and ``settings`` (the number of
    classes and the timing settings) are folded into a hash, so changing any of them re-measures."""
    macro = asdict(MacroConfig.coerce(macro_config))
    folded = sorted({**macro, **(settings or {})}.items())
    fingerprint = hashlib.sha1(repr((space.layers, space.stem_channels,
                                     folded)).encode()).hexdigest()[:10]
    cpu = "".join(c if c.isalnum() else "-" for c in cpu_model())[:40]
    h, w = image_size
    return f"{space.name}_{fingerprint}_{backend}-{precision}_t{threads}_{h}x{w}_{cpu}"


def table_blocks(space: SearchSpace, image_size: Sequence[int], *, num_classes: int,
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
                backend: str = "torch", precision: str = "f32", threads: int = 2, warmup: int = 3,
                runs: int = 10, rounds: int = 2, num_classes: int = 2,
                macro_config: MacroConfig | dict | None = None, use_cache: bool = True,
                refresh: bool = False, quiet: bool = False) -> LatencyTable:
    """Time every (layer, op) of ``space`` in place and the fixed parts; cache the result on disk.

    ``use_cache=False`` neither reads nor writes the cache; ``refresh=True`` re-measures and
    replaces the cached table (do this when the machine was busy while the cached one was taken:
    timings taken under load can be many times too slow; ``meta["load"]`` says how busy it was).

    ``macro_config`` (a ``MacroConfig``, or a dict of its fields) gives the macro's widths, so the
    fixed part is timed with the widths the super-net will use.
    """
    _check(backend, precision)
    macro_config = MacroConfig.coerce(macro_config)
    h, w = image_size
    key = table_key(space, backend=backend, precision=precision, threads=threads,
                    image_size=(h, w), macro_config=macro_config,
                    settings={"num_classes": num_classes, "warmup": warmup, "runs": runs,
                              "rounds": rounds})
    path = cache_dir() / f"{key}.json"
    if use_cache and not refresh and path.exists():
        return LatencyTable.load(path)

    torch.manual_seed(0)
    shapes = space.layer_input_shapes(h, w)
    blocks = table_blocks(space, (h, w), num_classes=num_classes, macro_config=macro_config)
    runners = {entry: prepare(block, (1, 3, h, w) if entry == "fixed" else (1, *shapes[entry[0]]),
                              backend=backend, precision=precision, threads=threads)
               for entry, block in progress(blocks.items(), quiet=quiet, total=len(blocks),
                                            desc=f"prepare ({backend} {precision})")}
    # Each entry is the best of ``rounds`` medians taken in separate passes over the whole table,
    # so a burst of load from another program inflates one pass, not the entry.
    best: dict = {}
    jobs = [(r, entry) for r in range(rounds) for entry in runners]
    with _monitor("the latency table", backend=backend, threads=threads) as monitor:
        for _, entry in progress(jobs, quiet=quiet, desc=f"latency table ({backend} {precision})"):
            ms = time_runner(runners[entry], warmup=warmup, runs=runs).median_ms
            best[entry] = min(ms, best.get(entry, math.inf))
    ms = [[best[(l, name)] for name in spec.ops] for l, spec in enumerate(space.layers)]
    ran = next(iter(runners.values())).precision
    table = LatencyTable(space.name, [list(spec.ops) for spec in space.layers], ms, best["fixed"],
                         meta={"backend": backend, "precision": precision, "ran_precision": ran,
                               "threads": threads, "image_size": [h, w], "cpu": cpu_model(),
                               "warmup": warmup, "runs": runs, "rounds": rounds,
                               "statistic": f"min over {rounds} rounds of the median of {runs} runs",
                               "key": key, "calibrated": False, "load": monitor.report.to_dict(),
                               "torch": torch.__version__,
                               "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    if use_cache:
        table.save(path)
    return table


def _child(genotype: Genotype, space: SearchSpace, num_classes: int,
           macro_config: MacroConfig | dict | None) -> ChildNet:
    torch.manual_seed(0)  # weights do not change the time, but keep runs identical anyway
    return ChildNet(genotype, space=space, num_classes=num_classes,
                    macro_config=MacroConfig.coerce(macro_config))


def measure_genotype(genotype: Genotype, *, space: SearchSpace, image_size: Sequence[int],
                     backend: str = "torch", precision: str = "f32", threads: int = 2,
                     warmup: int = 3, runs: int = 10, rounds: int = 1, num_classes: int = 2,
                     macro_config: MacroConfig | dict | None = None) -> float:
    """End-to-end latency (ms) of the child network of ``genotype``, measured on this CPU."""
    child = _child(genotype, space, num_classes, macro_config)
    return measure(child, (1, 3, *image_size), backend=backend, precision=precision,
                   threads=threads, warmup=warmup, runs=runs, rounds=rounds)


def measure_genotypes(genotypes: Sequence[Genotype], *, space: SearchSpace,
                      image_size: Sequence[int], backend: str = "torch", precision: str = "f32",
                      threads: int = 2, warmup: int = 3, runs: int = 10, repeats: int = 5,
                      num_classes: int = 2, macro_config: MacroConfig | dict | None = None,
                      quiet: bool = False, desc: str = "measure subnets") -> list[list[float]]:
    """End-to-end latency of many subnets, in ``repeats`` interleaved passes -> ``[pass][net]`` ms.

    Every net is prepared (built, converted, compiled) once; then each pass times all of them in
    turn, so a slow second on the machine hits one pass, not one net. ``best_of`` and
    ``repeat_noise`` turn the passes into estimates and their noise."""
    _check(backend, precision)
    runners = [prepare(_child(g, space, num_classes, macro_config), (1, 3, *image_size),
                       backend=backend, precision=precision, threads=threads)
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
    """End-to-end measurement with a per-genotype cache (the hard constraint's ``measured`` mode)."""

    def __init__(self, space: SearchSpace, *, image_size: Sequence[int], backend: str = "torch",
                 precision: str = "f32", threads: int = 2, runs: int = 5, rounds: int = 1,
                 macro_config: MacroConfig | dict | None = None, num_classes: int = 2) -> None:
        _check(backend, precision)
        self.space, self.image_size, self.backend = space, tuple(image_size), backend
        self.precision, self.threads, self.runs, self.rounds = precision, threads, runs, rounds
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
        return measure_genotype(
            genotype, space=self.space, image_size=self.image_size, backend=self.backend,
            precision=self.precision, threads=self.threads, warmup=2, runs=self.runs,
            rounds=self.rounds, num_classes=self.num_classes, macro_config=self.macro_config)


# --------------------------------------------------------------------------- the calibrated predictor
FIT_STREAM, VALIDATE_STREAM = 1, 2  # random subnets for fitting and for validation never coincide


def random_genotypes(space: SearchSpace, count: int, *, seed: int, stream: int,
                     exclude: Sequence[Genotype] = ()) -> list[Genotype]:
    """``count`` distinct random genotypes drawn from the (seed, stream) generator, none of them in
    ``exclude``."""
    rng = random.Random(stream_seed(seed, 0, stream))
    seen = {g.ops for g in exclude}
    out: list[Genotype] = []
    for _ in range(100 * count):
        if len(out) == count:
            break
        g = space.random_genotype(rng)
        if g.ops not in seen:
            seen.add(g.ops)
            out.append(g)
    return out


def build_predictor(space: SearchSpace, *, image_size: Sequence[int] = (256, 256),
                    backend: str = "openvino", precision: str = "f32", threads: int = 2,
                    num_fit: int = 60, seed: int = 0, runs: int = 10, num_classes: int = 2,
                    macro_config: MacroConfig | dict | None = None, use_cache: bool = True,
                    refresh: bool = False, quiet: bool = False) -> LatencyTable:
    """The in-place table calibrated on ``num_fit`` random subnets measured end to end.

    Returns a ``LatencyTable`` of the same shape (so ``E[LAT]`` stays a differentiable sum), with
    ``meta["calibrated"] = True``, the in-place numbers under ``meta["in_place"]`` and the fit's
    details under ``meta["calibration"]``. Cached like tables, with the fit settings in the key.
    """
    macro_config = MacroConfig.coerce(macro_config)
    table = build_table(space, image_size=image_size, backend=backend, precision=precision,
                        threads=threads, num_classes=num_classes, macro_config=macro_config,
                        use_cache=use_cache, refresh=refresh, quiet=quiet)
    key = table.meta["key"] + f"_cal{num_fit}s{seed}r{runs}"
    path = cache_dir() / f"{key}.json"
    if use_cache and not refresh and path.exists():
        return LatencyTable.load(path)
    fit = random_genotypes(space, num_fit, seed=seed, stream=FIT_STREAM)
    with _monitor("calibration", backend=backend, threads=threads) as monitor:
        passes = measure_genotypes(fit, space=space, image_size=image_size, backend=backend,
                                   precision=precision, threads=threads, runs=runs,
                                   num_classes=num_classes, macro_config=macro_config,
                                   quiet=quiet, desc="calibrate")
    measured = best_of(passes)
    result: Calibration = calibrate(table.ops, table.ms, table.fixed_ms, fit, measured, seed=seed)
    calibrated = LatencyTable(table.space, table.ops, result.ms, result.fixed_ms, meta={
        **table.meta, "key": key, "calibrated": True,
        "in_place": {"ms": table.ms, "fixed_ms": table.fixed_ms},
        "calibration": {**result.as_dict(), "seed": seed, "runs": runs,
                        "noise_pct": repeat_noise(passes), "load": monitor.report.to_dict(),
                        "genotypes": [list(g.ops) for g in fit], "measured_ms": measured}})
    if use_cache:
        calibrated.save(path)
    return calibrated


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
    """Predicted vs measured latency of random architectures not used for fitting."""

    predicted_ms: list[float]
    measured_ms: list[float]
    genotypes: list[list[str]]
    spearman: float
    mape: float  # mean absolute percentage error, in percent
    noise_pct: float = float("nan")  # the measurements' own repeat noise, in percent
    meta: dict = field(default_factory=dict)

    def to_text(self) -> str:
        return (f"{len(self.predicted_ms)} held-out random architectures: Spearman rho = "
                f"{self.spearman:.3f}, MAPE = {self.mape:.1f}%, repeat noise {self.noise_pct:.1f}% "
                f"(predicted mean {statistics.fmean(self.predicted_ms):.2f} ms, measured mean "
                f"{statistics.fmean(self.measured_ms):.2f} ms)")

    def as_dict(self) -> dict:
        return {"spearman": self.spearman, "mape": self.mape, "n": len(self.measured_ms),
                "noise_pct": self.noise_pct, **self.meta, "predicted_ms": self.predicted_ms,
                "measured_ms": self.measured_ms, "genotypes": self.genotypes}


def validate(table: LatencyTable, space: SearchSpace, *, num_genotypes: int = 30, seed: int = 0,
             image_size: Sequence[int] | None = None, backend: str | None = None,
             precision: str | None = None, threads: int | None = None, runs: int = 10,
             repeats: int = 5, macro_config: MacroConfig | dict | None = None,
             quiet: bool = False) -> PredictorReport:
    """Compare ``table.predict`` with end-to-end measurements of ``num_genotypes`` random genotypes
    that the calibration did not see; each is timed in ``repeats`` interleaved passes (the fastest
    counts, ``best_of``; ``repeat_noise`` says how reproducible that is). Backend, precision, threads and size
    default to the table's own."""
    meta = table.meta
    image_size = tuple(image_size or meta.get("image_size", (128, 128)))
    backend = backend or meta.get("backend", "torch")
    precision = precision or meta.get("precision", "f32")
    threads = threads or meta.get("threads", 2)
    fitted = [Genotype(space.name, tuple(ops))
              for ops in meta.get("calibration", {}).get("genotypes", [])]
    genotypes = random_genotypes(space, num_genotypes, seed=seed, stream=VALIDATE_STREAM,
                                 exclude=fitted)
    with _monitor("validation", backend=backend, threads=threads) as monitor:
        passes = measure_genotypes(genotypes, space=space, image_size=image_size, backend=backend,
                                   precision=precision, threads=threads, runs=runs,
                                   repeats=repeats, macro_config=macro_config, quiet=quiet,
                                   desc="validate")
    measured = best_of(passes)
    predicted = [table.predict(g) for g in genotypes]
    noise = repeat_noise(passes)
    return PredictorReport(predicted, measured, [list(g.ops) for g in genotypes],
                           spearman(predicted, measured), mape(predicted, measured), noise,
                           meta={"backend": backend, "precision": precision, "threads": threads,
                                 "image_size": list(image_size),
                                 "calibrated": bool(meta.get("calibrated")),
                                 "load": monitor.report.to_dict()})

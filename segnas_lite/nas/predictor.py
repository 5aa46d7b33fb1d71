"""The calibrated latency predictor: the in-place table fitted to end-to-end measurements, checked.

On OpenVINO the plain sum of in-place timings cannot even rank networks (fusion, layout changes and
per-call overhead do not add up), so ``build_predictor`` measures ``num_fit`` random subnets end to
end and refits the table to them (``calibrate.py``). It stays a table, so ``E[LAT]`` stays a
differentiable sum (ProxylessNAS, Cai et al., ICLR 2019, Sec. 3.3). ``validate`` checks a table on
subnets it was not fitted on: Spearman rank correlation, mean absolute percentage error, and the
repeat noise of the measurements themselves (the floor no predictor can beat).
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Sequence

from segnas_lite.deploy.target import Target
from segnas_lite.runio import stream_seed
from segnas_lite.nas.calibrate import Calibration, calibrate, mape
from segnas_lite.nas.latency import LatencyTable, build_table, cache_dir
from segnas_lite.nas.measure import best_of, load_monitor, measure_genotypes, repeat_noise
from segnas_lite.nas.space import Genotype, MacroConfig, SearchSpace

NUM_FIT = 60  # random subnets measured end to end for the fit (16 in a quick search)
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


def build_predictor(space: SearchSpace, *, target: Target, num_fit: int = NUM_FIT, seed: int = 0,
                    runs: int = 10, num_classes: int = 2,
                    macro_config: MacroConfig | dict | None = None, use_cache: bool = True,
                    refresh: bool = False, quiet: bool = False) -> LatencyTable:
    """The in-place table for ``target`` calibrated on ``num_fit`` random subnets measured end to end.

    Returns a ``LatencyTable`` of the same shape (so ``E[LAT]`` stays a differentiable sum), with
    ``meta["calibrated"] = True``, the in-place numbers under ``meta["in_place"]`` and the fit's
    details under ``meta["calibration"]``. Cached like tables, with the fit settings in the key.
    """
    macro_config = MacroConfig.coerce(macro_config)
    table = build_table(space, target=target, num_classes=num_classes, macro_config=macro_config,
                        use_cache=use_cache, refresh=refresh, quiet=quiet)
    key = table.meta["key"] + f"_cal{num_fit}s{seed}r{runs}"
    path = cache_dir() / f"{key}.json"
    if use_cache and not refresh and path.exists():
        return LatencyTable.load(path)
    fit = random_genotypes(space, num_fit, seed=seed, stream=FIT_STREAM)
    with load_monitor("calibration", target) as monitor:
        passes = measure_genotypes(fit, space=space, target=target, runs=runs,
                                   num_classes=num_classes, macro_config=macro_config,
                                   quiet=quiet, desc="calibrate")
        monitor.repeat_noise_pct = _finite(repeat_noise(passes))
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


def _finite(pct: float) -> float | None:
    """A repeat noise for ``LoadMonitor``: None where there was only one pass (NaN)."""
    return None if math.isnan(pct) else round(pct, 2)


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
             target: Target | None = None, runs: int = 10, repeats: int = 5,
             macro_config: MacroConfig | dict | None = None,
             quiet: bool = False) -> PredictorReport:
    """Compare ``table.predict`` with end-to-end measurements of ``num_genotypes`` random genotypes
    that the calibration did not see; each is timed in ``repeats`` interleaved passes (the fastest
    counts, ``best_of``; ``repeat_noise`` says how reproducible that is). ``target`` defaults to the
    table's own (``LatencyTable.target``)."""
    target = target or table.target
    fitted = [Genotype(space.name, tuple(ops))
              for ops in table.meta.get("calibration", {}).get("genotypes", [])]
    genotypes = random_genotypes(space, num_genotypes, seed=seed, stream=VALIDATE_STREAM,
                                 exclude=fitted)
    with load_monitor("validation", target) as monitor:
        passes = measure_genotypes(genotypes, space=space, target=target, runs=runs,
                                   repeats=repeats, macro_config=macro_config, quiet=quiet,
                                   desc="validate")
        monitor.repeat_noise_pct = _finite(repeat_noise(passes))
    measured = best_of(passes)
    predicted = [table.predict(g) for g in genotypes]
    noise = repeat_noise(passes)
    return PredictorReport(predicted, measured, [list(g.ops) for g in genotypes],
                           spearman(predicted, measured), mape(predicted, measured), noise,
                           meta={"backend": target.backend, "precision": target.precision,
                                 "threads": target.threads, "image_size": list(target.shape),
                                 "calibrated": bool(table.meta.get("calibrated")),
                                 "load": monitor.report.to_dict()})

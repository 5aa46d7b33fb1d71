"""Calibrating the latency table on end-to-end measurements: from a sum of parts to a predictor.

The table of ProxylessNAS (Sec. 3.3) times each (layer, op) alone and predicts a network as
``fixed + sum_l LAT(l, op_l)``. On PyTorch that is close; on OpenVINO it is not: the compiled graph
fuses convolutions with their activations and neighbours, one call carries a fixed cost that a
per-layer timing pays ten times over, and thread scheduling differs for a whole net. The sum then
ranks networks no better than chance.

The fix keeps the form, so ``E[LAT]`` stays linear in p and differentiable, and learns its numbers
from what we care about: whole networks. Measure ``n`` random subnets end to end, then choose the
per-(layer, op) costs ``theta`` and the fixed cost ``c`` by non-negative, regularised least squares::

    minimise  sum_g (c + sum_l theta[l, g_l] - y_g)^2  +  lam * sum_{l,i} (theta[l,i] - s * t[l,i])^2
    subject to theta >= 0, c >= 0

where ``t`` is the in-place table (the prior: what each op costs relative to the others) and ``s``
its global scale fitted first. ``lam`` is chosen by k-fold cross-validation on the measurements
themselves. An op never sampled keeps its scaled prior. Validate on subnets *not* used for fitting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from segnas_lite.errors import SegnasError
from segnas_lite.nas.space import Genotype

LAMBDAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # prior strengths tried, in units of one measurement


class CalibrationError(SegnasError, ValueError):
    """Too few or mismatched measurements to calibrate a table."""


def design_matrix(genotypes: Sequence[Genotype], ops: Sequence[Sequence[str]]) -> np.ndarray:
    """(n, sum_l K_l) one-hot matrix: row g has a 1 in each layer's block at the op it uses."""
    offsets = np.cumsum([0] + [len(names) for names in ops])
    x = np.zeros((len(genotypes), offsets[-1]))
    for row, genotype in enumerate(genotypes):
        for l, op in enumerate(genotype.ops):
            x[row, offsets[l] + list(ops[l]).index(op)] = 1.0
    return x


def nonnegative_quadratic(a: np.ndarray, b: np.ndarray, x0: np.ndarray, *, sweeps: int = 500,
                          tol: float = 1e-10) -> np.ndarray:
    """Minimise ``0.5 x^T A x - b^T x`` subject to ``x >= 0`` (A symmetric positive definite) by
    cyclic coordinate descent: each coordinate in turn jumps to its 1-D minimum, clipped at 0."""
    x = np.maximum(np.asarray(x0, dtype=np.float64).copy(), 0.0)
    diag = np.diag(a)
    for _ in range(sweeps):
        biggest = 0.0
        for j in range(len(x)):
            new = max(0.0, x[j] - (a[j] @ x - b[j]) / diag[j])
            biggest = max(biggest, abs(new - x[j]))
            x[j] = new
        if biggest < tol:
            break
    return x


def _prior_scale(x: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(c, s) >= 0 of the two-number fit ``y ~ c + s * (x @ t)``: the table's global correction."""
    summed = x @ t
    a = np.array([[len(y), summed.sum()], [summed.sum(), summed @ summed]]) + 1e-9 * np.eye(2)
    b = np.array([y.sum(), summed @ y])
    c, s = nonnegative_quadratic(a, b, np.linalg.lstsq(a, b, rcond=None)[0])
    return float(c), float(s)


def _solve(x: np.ndarray, y: np.ndarray, prior: np.ndarray, c_prior: float,
           lam: float) -> tuple[float, np.ndarray]:
    """The regularised non-negative least squares above, for one ``lam`` -> (c, theta)."""
    design = np.hstack([np.ones((len(y), 1)), x])  # column 0: the fixed cost c
    target = np.concatenate([[c_prior], prior])
    weight = np.full(len(target), lam)
    weight[0] = lam * 1e-3  # the fixed cost is free to move: it absorbs the per-call overhead
    a = design.T @ design + np.diag(weight)
    b = design.T @ y + weight * target
    solution = nonnegative_quadratic(a, b, target)
    return float(solution[0]), solution[1:]


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error, in percent."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    return float(100.0 * np.mean(np.abs(p - m) / m))


@dataclass
class Calibration:
    """The fitted numbers and how they were chosen."""

    fixed_ms: float
    ms: list[list[float]]
    scale: float       # the prior's global scale s
    lam: float         # the prior strength chosen by cross-validation
    cv_mape: float     # its cross-validated error on the fitting set, percent
    fit_mape: float    # error on the fitting set itself, percent
    num_fit: int

    def as_dict(self) -> dict:
        return {"scale": self.scale, "lam": self.lam, "cv_mape": self.cv_mape,
                "fit_mape": self.fit_mape, "num_fit": self.num_fit}


def calibrate(ops: Sequence[Sequence[str]], table_ms: Sequence[Sequence[float]], fixed_ms: float,
              genotypes: Sequence[Genotype], measured_ms: Sequence[float], *,
              lambdas: Sequence[float] = LAMBDAS, folds: int = 5, seed: int = 0) -> Calibration:
    """Fit per-(layer, op) costs and a fixed cost to end-to-end measurements (see module docstring).

    ``ops``/``table_ms``/``fixed_ms`` are the in-place table; ``genotypes`` and ``measured_ms`` the
    fitting set. Returns the calibrated numbers in the table's own layout.
    """
    y = np.asarray(measured_ms, dtype=np.float64)
    if len(genotypes) != len(y):
        raise CalibrationError(f"{len(genotypes)} genotypes but {len(y)} measurements")
    if len(y) < 2 * folds:
        raise CalibrationError(f"calibration needs at least {2 * folds} measured subnets, got {len(y)}")
    x = design_matrix(genotypes, ops)
    t = np.concatenate([np.asarray(row, dtype=np.float64) for row in table_ms])
    c0, s = _prior_scale(x, t, y)
    c_prior = c0 if c0 > 0 else float(fixed_ms) * s
    prior = s * t
    order = np.random.default_rng(seed).permutation(len(y))
    parts = np.array_split(order, folds)

    def cv_error(lam: float) -> float:
        errors = []
        for held in parts:
            keep = np.setdiff1d(order, held)
            c, theta = _solve(x[keep], y[keep], prior, c_prior, lam)
            errors.append(np.abs(c + x[held] @ theta - y[held]) / y[held])
        return float(100.0 * np.mean(np.concatenate(errors)))

    scores = {lam: cv_error(lam) for lam in lambdas}
    lam = min(scores, key=scores.get)
    c, theta = _solve(x, y, prior, c_prior, lam)
    rows, start = [], 0
    for names in ops:
        rows.append(theta[start:start + len(names)].tolist())
        start += len(names)
    return Calibration(fixed_ms=c, ms=rows, scale=s, lam=lam, cv_mape=scores[lam],
                       fit_mape=mape(c + x @ theta, y), num_fit=len(y))

"""Calibration of the latency table: recovers a known additive-plus-overhead cost."""
import random

import numpy as np
import pytest

from segnas_lite.nas.calibrate import (CalibrationError, calibrate, design_matrix, mape,
                                       nonnegative_quadratic)
from segnas_lite.nas.space import Genotype

OPS = [["a", "b", "c"], ["a", "b"], ["a", "b", "c", "d"], ["a", "b", "c"], ["a", "b"]]


def random_genotypes(n: int, seed: int) -> list[Genotype]:
    rng = random.Random(seed)
    return [Genotype("toy", tuple(rng.choice(names) for names in OPS)) for _ in range(n)]


def truth(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [list(rng.uniform(0.2, 2.0, len(names))) for names in OPS], 3.0


def cost(genotypes, theta, fixed, noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for g in genotypes:
        y = fixed + sum(theta[l][OPS[l].index(op)] for l, op in enumerate(g.ops))
        out.append(y * (1 + noise * rng.standard_normal()))
    return out


def test_design_matrix_is_one_hot_per_layer():
    x = design_matrix([Genotype("toy", ("b", "a", "d", "c", "b"))], OPS)
    assert x.shape == (1, 14) and x.sum() == 5
    assert x[0].tolist() == [0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1]


def test_nonnegative_quadratic_matches_the_clipped_optimum():
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    b = np.array([-1.0, 2.0])  # unconstrained optimum has x0 < 0
    x = nonnegative_quadratic(a, b, np.zeros(2))
    assert x[0] == 0.0 and x[1] == pytest.approx(2.0)  # with x0 = 0: minimise 0.5 x1^2 - 2 x1


def test_calibration_recovers_an_additive_cost_with_per_call_overhead():
    theta, fixed = truth()
    # the in-place table is wrong the way OpenVINO's is: each op timed alone pays a call overhead
    # (0.4 ms), fusion halves the real costs, and the fixed part is timed far too low
    table = [[0.5 * v + 0.4 for v in row] for row in theta]
    fit = random_genotypes(60, seed=0)
    held = random_genotypes(30, seed=99)
    result = calibrate(OPS, table, 0.1, fit, cost(fit, theta, fixed, noise=0.01))
    measured = cost(held, theta, fixed)
    before = [0.1 + sum(table[l][OPS[l].index(op)] for l, op in enumerate(g.ops)) for g in held]
    after = [result.fixed_ms + sum(result.ms[l][OPS[l].index(op)] for l, op in enumerate(g.ops))
             for g in held]
    assert mape(before, measured) > 20
    assert mape(after, measured) < 2.0
    # per-op differences within a layer are recovered (the split between c and the ops is not
    # identifiable from sums alone, so compare differences)
    for l, names in enumerate(OPS):
        true_diff = np.array(theta[l]) - theta[l][0]
        got_diff = np.array(result.ms[l]) - result.ms[l][0]
        assert np.allclose(got_diff, true_diff, atol=0.1)
    assert all(v >= 0 for row in result.ms for v in row) and result.fixed_ms >= 0
    assert result.num_fit == 60 and result.lam > 0


def test_too_few_measurements_is_a_named_error():
    theta, fixed = truth()
    fit = random_genotypes(5, seed=0)
    with pytest.raises(CalibrationError, match="at least"):
        calibrate(OPS, theta, fixed, fit, cost(fit, theta, fixed))
    with pytest.raises(CalibrationError, match="measurements"):
        calibrate(OPS, theta, fixed, fit, [1.0])

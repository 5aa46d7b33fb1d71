"""The report every answer key prints: ``python lessons/solutions/NN_*.py [--full]``.

Each key defines ``EXERCISES`` (its ``exercise_N`` functions in order) and a ``main`` that calls
:func:`run`: parse ``--full``, run every exercise, print its question (the docstring's first line),
its time and what it returned (a ``summary`` entry first, when there is one).
"""
from __future__ import annotations

import argparse
import math
import time
from fractions import Fraction
from typing import Callable, Sequence

from segnas_lite.deploy.target import Target
from segnas_lite.teaching.notebook_utils import quick_mode


def format_value(value) -> str:
    """A short, readable rendering: floats to 4 significant digits, fractions also as decimals."""
    if isinstance(value, Fraction):
        return f"{value} = {float(value):.4g}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def run(exercises: Sequence[Callable[..., dict]], *, lesson: str, argv=None) -> None:
    """Run every exercise (quick unless ``--full``; CI and SEGNAS_QUICK=1 force quick) and print."""
    parser = argparse.ArgumentParser(description=f"answer key for lesson {lesson}")
    parser.add_argument("--full", action="store_true",
                        help="the notebook's workshop-sized settings (slower)")
    quick = quick_mode(not parser.parse_args(argv).full)
    print(f"lesson {lesson}, {'quick' if quick else 'full'} settings")
    for number, exercise in enumerate(exercises, start=1):
        started = time.perf_counter()
        result = dict(exercise(quick=quick))
        question = exercise.__doc__.strip().splitlines()[0]
        print(f"\nexercise {number} ({time.perf_counter() - started:.1f} s): {question}")
        if "summary" in result:
            print(f"  -> {result.pop('summary')}")
        for key, value in result.items():
            print(f"  {key}: {format_value(value)}")


# --------------------------------------------------------------------------- shared settings
# The search of notebooks 06 and 07 (their parameters cell), used by the keys of lessons 06-08: one
# definition, so that the three keys ask the cache for the same search.
NOTEBOOK_SEARCH = dict(budget_ms=None, warmup_epochs=20, search_epochs=10, steps_per_epoch=40,
                       batch_size=8, arch_lr=5e-2, estimator="full_v2", schedule="decoupled",
                       num_fit=60, latency_form="hinge", warmup_sampling="fair", sandwich=0)
# its quick settings (64 px), predicted by the PyTorch table (no calibration, no closed loop)
QUICK_SEARCH = dict(budget_ms=None, warmup_epochs=1, search_epochs=1, steps_per_epoch=20,
                    batch_size=4, arch_lr=0.3, estimator="full_v2", schedule="decoupled",
                    latency_form="hinge", warmup_sampling="fair", sandwich=0,
                    target=Target(backend="torch", image_size=64), calibrate=False,
                    measure_child=False)

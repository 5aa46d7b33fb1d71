"""The answer key of lesson 09 runs in quick mode and shows what its answers say."""
import importlib.util
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "lessons" / "solutions" / "09_background.py"
    spec = importlib.util.spec_from_file_location("solution_09", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def key():
    return _load()


def test_every_exercise_has_a_function(key):
    lesson = (ROOT / "lessons" / "09_background.md").read_text()
    part = lesson.split("## Exercises", 1)[1].split("\n## ", 1)[0]
    count = len(re.findall(r"^\d+\. ", part, flags=re.M))
    assert count == 5
    assert all(callable(getattr(key, f"exercise_{n}", None)) for n in range(1, count + 1))


def test_radius_zero_is_the_hard_cut_and_the_default_radius_helps(key):
    out = key.exercise_1(quick=True)
    assert out["radius_0_is_the_hard_cut"]
    rows, best = out["rows"], out["default_radius"]
    assert rows[best]["boundary_f"] > rows[0]["boundary_f"]
    assert rows[best]["trimap_iou"] > rows[0]["trimap_iou"]
    assert rows[4 * best]["trimap_iou"] < rows[best]["trimap_iou"]  # too large blurs again


def test_large_eps_is_the_feather(key):
    gap = key.exercise_2(quick=True)["mean_abs_difference_to_feather"]
    assert gap[10.0] < 0.1 * gap[1e-3]
    assert gap[1e-1] < gap[1e-3]


def test_noisier_clip_flips_more_and_smoothing_brings_it_back(key):
    out = key.exercise_3(quick=True)
    assert out["raw_flip_rate_noise_0.06"] > out["raw_flip_rate_noise_0.02"]
    rates = out["flip_rate_by_momentum"]
    assert rates[0.9] < rates[0.0]
    m = out["smallest_momentum_back_to_old"]
    assert m is not None and rates[m] <= out["raw_flip_rate_noise_0.02"]


def test_lag_by_hand_library_and_simulation_agree(key):
    out = key.exercise_4(quick=True)
    assert out["by_hand"] == out["library"] == out["simulated"] == 14
    assert math.isclose(out["milliseconds_at_25_fps"], 560.0)


def test_fps_with_one_and_two_threads(key):
    out = key.exercise_5(quick=True)
    assert set(out["fps"]) == {(1, "sync"), (1, "async"), (2, "sync"), (2, "async")}
    assert all(row["fps"] > 0 and row["requests"] >= 1 for row in out["fps"].values())
    assert out["fps"][(1, "sync")]["requests"] == 1

"""benchmarks/peers.py's latency passes (the MediaPipe side needs its own environment; here a
stand-in runner of another backend takes its place): every row on one paced clock."""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

from segnas_lite.timing import Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(scope="module")
def peers():
    return importlib.import_module("peers")


def test_every_row_is_timed_on_one_paced_clock_mediapipe_included(peers):
    stand_in = Runner(lambda: time.sleep(0.002), "mediapipe", "tflite", None)  # another runtime
    ms, clock, load = peers.latencies([stand_in], runs=5, repeats=2, clock="paced")
    assert clock["clock"] == "paced" and clock["reference"] == peers.REFERENCE
    assert clock["cross_backend"] is True and clock["reference_ms"] > 0
    assert len(clock["passes"]) == 2 and ms[0] == min(p[0] for p in clock["passes"]) > 0
    assert load["paced"] is True and isinstance(load["busy"], bool)
    wall, clock, _ = peers.latencies([stand_in], runs=5, repeats=1, clock="wall")
    assert clock == {"clock": "wall", "passes": [[wall[0]]]} and wall[0] >= 2.0

"""The independent check of the timer: OpenVINO's own ``benchmark_app``, run as a program.

Nothing is compiled here: ``benchmark_app`` reads an IR from disk in its own process. Comparing it
with this package's timer on the same IR (``segnas_lite.deploy.bench.crosscheck``) tells whether
our loop measures what OpenVINO's tool measures.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from segnas_lite.errors import SegnasError


class BenchmarkAppError(SegnasError, RuntimeError):
    """OpenVINO's ``benchmark_app`` is missing, failed, or printed no latency we can read."""


def find_benchmark_app() -> str | None:
    """``benchmark_app`` (installed with openvino) on PATH or beside this Python, or None."""
    beside = Path(sys.executable).parent / "benchmark_app"
    return shutil.which("benchmark_app") or (str(beside) if beside.exists() else None)


def benchmark_app(xml_path: str | os.PathLike, *, threads: int, precision: str = "f32",
                  seconds: int = 10) -> dict:
    """Time an IR with OpenVINO's own ``benchmark_app`` under this package's settings (CPU, sync
    requests, LATENCY hint, ``threads`` threads, ``precision``) -> median/average/min/max ms.

    The independent check of this timer: both should agree within a few percent on a quiet machine.
    benchmark_app takes ``-nthreads`` only with ``-hint none``, so the settings go in a config file.
    """
    tool = find_benchmark_app()
    if tool is None:
        raise BenchmarkAppError("benchmark_app not found (it comes with the openvino package)")
    settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads)}
    if precision != "default":
        settings["INFERENCE_PRECISION_HINT"] = precision
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        config.write_text(json.dumps({"CPU": settings}))
        command = [tool, "-m", str(xml_path), "-d", "CPU", "-hint", "latency", "-api", "sync",
                   "-load_config", str(config), "-t", str(seconds)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    figures = {key.lower(): float(value) for key, value in
               re.findall(r"(Median|Average|Min|Max):\s+([\d.]+) ms", done.stdout)}
    if done.returncode != 0 or "median" not in figures:
        raise BenchmarkAppError(f"benchmark_app failed (exit {done.returncode}): "
                                f"{(done.stdout + done.stderr)[-800:]}")
    count = re.search(r"Count:\s+(\d+)", done.stdout)
    return {**{f"{k}_ms": v for k, v in figures.items()},
            "iterations": int(count.group(1)) if count else None}

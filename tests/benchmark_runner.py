"""Run one benchmark script in a subprocess, the way the slow end-to-end tests do: its own cache,
quiet progress, no windows; a failure shows the end of its output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script_runner(script: str, *, cache: Path, fixed: tuple[str, ...] = (), timeout: int = 1200):
    """A function ``run(*args) -> stdout`` that runs ``benchmarks/<script> *fixed *args`` and
    asserts it exits 0."""
    env = {**os.environ, "SEGNAS_CACHE": str(cache), "SEGNAS_QUIET": "1", "MPLBACKEND": "Agg"}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, str(BENCHMARKS / script), *fixed, *args],
                              capture_output=True, text=True, timeout=timeout, env=env)
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    return run

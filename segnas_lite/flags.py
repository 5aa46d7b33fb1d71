"""Process-wide switches read from the environment, in one place.

* ``CI``: set by CI services; any value but "", "0" or "false" counts as on.
* ``SEGNAS_QUICK=1``: every notebook runs its quick settings (the test suite sets it).
* ``SEGNAS_QUIET=1``: no progress bars (executed notebooks, CI logs).
* ``SEGNAS_CACHE``: where latency tables and cached notebook results live
  (default ``~/.cache/segnas_lite``).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path


def _on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false")


def in_ci() -> bool:
    """True when ``CI`` is set to anything but "", "0" or "false"."""
    return _on("CI")


def quick_forced() -> bool:
    """True under CI or with ``SEGNAS_QUICK=1``: no notebook may start a full-size run then."""
    return in_ci() or _on("SEGNAS_QUICK")


def quiet() -> bool:
    """True with ``SEGNAS_QUIET=1``: progress bars stay off."""
    return _on("SEGNAS_QUIET")


def cache_dir() -> Path:
    """``$SEGNAS_CACHE`` or ``~/.cache/segnas_lite`` (folders below it are created on first use)."""
    root = os.environ.get("SEGNAS_CACHE") or Path.home() / ".cache" / "segnas_lite"
    return Path(root)


def cpu_name() -> str:
    """The CPU model string (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")
"""The instruction-set flags that change how fast networks run relative to each other."""


def cpu_id() -> str:
    """The CPU model and its ``ISA_FLAGS``, e.g. ``"AMD EPYC [avx2 avx512f avx512_bf16]"``.

    A virtual machine often reports a generic model name ("AMD EPYC", "Intel(R) Xeon(R)
    Processor") for CPUs of several generations; the flags tell them apart (seen here: two "AMD
    EPYC" hosts, one with AVX-512 BF16 and one without). Milliseconds of two CPU ids are never
    compared."""
    try:
        line = next((l for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.lower().startswith("flags")), "")
    except OSError:
        line = ""
    present = set(line.split(":", 1)[-1].split())
    return f"{cpu_name()} [{' '.join(f for f in ISA_FLAGS if f in present)}]"

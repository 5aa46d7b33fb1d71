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

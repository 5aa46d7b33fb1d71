"""Test-session settings shared by the unit tests and the notebooks that nbval runs.

Notebook kernels inherit this process's environment, so setting variables here reaches them too:
- ``SEGNAS_QUICK=1``: every notebook runs its quick settings (never a full workshop-size run);
- ``SEGNAS_CACHE``: a fresh cache folder for this session, so tests neither read nor pollute the
  user's cached latency tables and notebook results (deleted when the session ends);
- ``MPLBACKEND=Agg``: no windows.
"""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SEGNAS_QUICK", "1")
if "SEGNAS_CACHE" not in os.environ:
    # removed when the session ends (a cache of every run left behind filled /tmp by gigabytes)
    os.environ["SEGNAS_CACHE"] = tempfile.mkdtemp(prefix="segnas-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SEGNAS_CACHE"], ignore_errors=True)
os.environ.setdefault("MPLBACKEND", "Agg")

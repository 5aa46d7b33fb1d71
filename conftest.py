"""Test-session settings shared by the unit tests and the notebooks that nbval runs.

Notebook kernels inherit this process's environment, so setting variables here reaches them too:
- ``SEGNAS_QUICK=1``: every notebook runs its quick settings (never a full workshop-size run);
- ``SEGNAS_CACHE``: a fresh cache folder for this session, so tests neither read nor pollute the
  user's cached latency tables and notebook results;
- ``MPLBACKEND=Agg``: no windows.
"""
import os
import tempfile

os.environ.setdefault("SEGNAS_QUICK", "1")
os.environ.setdefault("SEGNAS_CACHE", tempfile.mkdtemp(prefix="segnas-test-cache-"))
os.environ.setdefault("MPLBACKEND", "Agg")

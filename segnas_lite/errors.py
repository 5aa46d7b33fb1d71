"""The root of every named error in the package.

Each error keeps its own name where it is raised (``DatasetError``, ``TimingError``, ...) and
derives from :class:`SegnasError`, so a caller that wants "any problem this package explains"
catches one class: the ``segnas`` command does exactly that, once, and prints one line.
"""
from __future__ import annotations


class SegnasError(Exception):
    """A problem the package can explain in one line: what went wrong and what to do about it."""
